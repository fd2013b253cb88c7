//! Reconciliation runs and their findings.

use super::enum_schema;
use crate::domain::reconcile::{FindingAction, FindingKind, ReconcileStatus, ReconcileTrigger};

enum_schema!(ReconcileTrigger);
enum_schema!(ReconcileStatus);
enum_schema!(FindingKind, "The kinds of drift, with stable names (metrics, webhooks and alerts use them).");
enum_schema!(FindingAction, "What the run did about a finding.");
