//! Reconciliation: what IAM holds against what jit-iam's grants say, the
//! drift found, and what was done about it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::text_enum;
use super::AwsErrorBody;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileTrigger {
    Scheduled,
    Manual,
}

text_enum!(ReconcileTrigger { Scheduled = "scheduled", Manual = "manual" });

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileStatus {
    Queued,
    Running,
    Succeeded,
    /// Some accounts could not be read or some repairs failed: see `error` and the findings.
    Partial,
    Failed,
}

text_enum!(ReconcileStatus {
    Queued = "queued",
    Running = "running",
    Succeeded = "succeeded",
    Partial = "partial",
    Failed = "failed",
});

/// The kinds of drift, with stable names (metrics, webhooks and alerts use them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// An active grant's policy was detached or deleted, or its membership removed.
    AccessMissing,
    /// The default version of a grant's policy is not the document jit-iam wrote.
    PolicyModified,
    /// Access of a grant that ended is there (again).
    AccessLeftAfterEnd,
    /// A policy jit-iam made that belongs to no grant it knows.
    OrphanedPolicy,
    /// The grant's principal was renamed, or deleted (and perhaps recreated under the name).
    PrincipalChanged,
    /// A policy or membership the grantee had before an active grant that
    /// shares it was removed. Repaired, it is the grant's own: it goes when
    /// the last grant holding it ends.
    PreexistingAccessRemoved,
}

text_enum!(FindingKind {
    AccessMissing = "access_missing",
    PolicyModified = "policy_modified",
    AccessLeftAfterEnd = "access_left_after_end",
    OrphanedPolicy = "orphaned_policy",
    PrincipalChanged = "principal_changed",
    PreexistingAccessRemoved = "preexisting_access_removed",
});

/// What the run did about a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingAction {
    /// Put back as the grant says (re-attached, restored, removed).
    Repaired,
    /// Only reported: repair is off, or the finding is not jit-iam's to change.
    Reported,
    /// An orphaned policy kept until `delete_orphans` or the grace period.
    Kept,
    /// The repair was tried and failed (see `detail`); the next run tries again.
    Failed,
    /// The grant was busy (being applied or revoked): left to its worker.
    Skipped,
}

text_enum!(FindingAction {
    Repaired = "repaired",
    Reported = "reported",
    Kept = "kept",
    Failed = "failed",
    Skipped = "skipped",
});

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
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

/// A reconciliation run, as `GET /v1/integrations/{id}/reconciliations` shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
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
