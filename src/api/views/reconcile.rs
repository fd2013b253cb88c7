//! Reconciliation runs and their findings.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::aws_error::AwsErrorBody;
use super::enum_schema;
use crate::domain::reconcile::{self, FindingAction, FindingKind, ReconcileStatus, ReconcileTrigger};

enum_schema!(ReconcileTrigger);
enum_schema!(ReconcileStatus);
enum_schema!(FindingKind, "The kinds of drift, with stable names (metrics, webhooks and alerts use them).");
enum_schema!(FindingAction, "What the run did about a finding.");

#[derive(Debug, Serialize, ToSchema)]
pub struct Finding {
    pub kind: FindingKind,
    /// The grant concerned, when there is one (an orphan has none).
    #[schema(required = true)]
    pub grant_id: Option<Uuid>,
    #[schema(example = "123456789012")]
    pub account_id: String,
    /// The policy ARN or group concerned.
    pub target: String,
    /// What IAM shows against what jit-iam expects.
    pub evidence: String,
    pub action: FindingAction,
    /// What was done, or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub detail: Option<String>,
}

impl From<reconcile::Finding> for Finding {
    fn from(value: reconcile::Finding) -> Self {
        Self {
            kind: value.kind,
            grant_id: value.grant_id,
            account_id: value.account_id,
            target: value.target,
            evidence: value.evidence,
            action: value.action,
            detail: value.detail,
        }
    }
}

/// A reconciliation run, as `GET /v1/integrations/{id}/reconciliations` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileRun {
    pub id: Uuid,
    pub integration_id: Uuid,
    pub trigger: ReconcileTrigger,
    pub status: ReconcileStatus,
    /// Whether drift was put back, or only reported.
    pub repair: bool,
    /// Whether orphaned policies were deleted without waiting for the grace period.
    pub delete_orphans: bool,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    /// AWS calls made: the pages read, tag lookups, and the repairs.
    pub aws_calls: i64,
    pub findings: Vec<Finding>,
    /// What stopped an account from being reconciled.
    #[schema(required = true)]
    pub error: Option<AwsErrorBody>,
}

impl From<reconcile::ReconcileRun> for ReconcileRun {
    fn from(value: reconcile::ReconcileRun) -> Self {
        Self {
            id: value.id,
            integration_id: value.integration_id,
            trigger: value.trigger,
            status: value.status,
            repair: value.repair,
            delete_orphans: value.delete_orphans,
            created_at: value.created_at,
            started_at: value.started_at,
            finished_at: value.finished_at,
            aws_calls: value.aws_calls,
            findings: value.findings.into_iter().map(Into::into).collect(),
            error: value.error.map(Into::into),
        }
    }
}
