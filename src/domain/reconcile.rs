//! Reconciliation: what IAM holds against what jit-iam's grants say, the
//! drift found, and what was done about it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::wire_enum;
use super::AwsErrorBody;

wire_enum! {
    pub enum ReconcileTrigger {
        Scheduled = "scheduled",
        Manual = "manual",
    }
}

wire_enum! {
    pub enum ReconcileStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        /// Some accounts could not be read or some repairs failed: see `error` and the findings.
        Partial = "partial",
        Failed = "failed",
    }
}

wire_enum! {
    /// The kinds of drift, with stable names (metrics, webhooks and alerts use them).
    #[derive(Hash)]
    pub enum FindingKind {
        /// An active grant's policy was detached or deleted, or its membership removed.
        AccessMissing = "access_missing",
        /// The default version of a grant's policy is not the document jit-iam wrote.
        PolicyModified = "policy_modified",
        /// Access of a grant that ended is there (again).
        AccessLeftAfterEnd = "access_left_after_end",
        /// A policy jit-iam made that belongs to no grant it knows.
        OrphanedPolicy = "orphaned_policy",
        /// The grant's principal was renamed, or deleted (and perhaps recreated under the name).
        PrincipalChanged = "principal_changed",
        /// A policy or membership the grantee had before an active grant that
        /// shares it was removed. Repaired, it is the grant's own: it goes when
        /// the last grant holding it ends.
        PreexistingAccessRemoved = "preexisting_access_removed",
    }
}

wire_enum! {
    /// What the run did about a finding.
    pub enum FindingAction {
        /// Put back as the grant says (re-attached, restored, removed).
        Repaired = "repaired",
        /// Only reported: repair is off, or the finding is not jit-iam's to change.
        Reported = "reported",
        /// An orphaned policy kept until `delete_orphans` or the grace period.
        Kept = "kept",
        /// The repair was tried and failed (see `detail`); the next run tries again.
        Failed = "failed",
        /// The grant was busy (being applied or revoked): left to its worker.
        Skipped = "skipped",
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The grant concerned, when there is one (an orphan has none).
    pub grant_id: Option<Uuid>,
    pub account_id: String,
    /// The policy ARN or group concerned.
    pub target: String,
    /// What IAM shows against what jit-iam expects.
    pub evidence: String,
    pub action: FindingAction,
    /// What was done, or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A reconciliation run and its findings.
#[derive(Clone, Debug, Serialize)]
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
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// AWS calls made: the pages read, tag lookups, and the repairs.
    pub aws_calls: i64,
    pub findings: Vec<Finding>,
    /// What stopped an account from being reconciled.
    pub error: Option<AwsErrorBody>,
}
