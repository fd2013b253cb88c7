//! Sync runs: when the inventory of an integration was refreshed, and how it went.

use super::text_enum;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::AwsErrorBody;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    /// Right after the integration was created.
    Created,
    /// After a change of the integration that changes what is listed.
    Updated,
    /// Every `JIT_IAM_SYNC_INTERVAL`.
    Scheduled,
    /// `POST /v1/integrations/{id}/sync`.
    Manual,
}

text_enum!(SyncTrigger { Created = "created", Updated = "updated", Scheduled = "scheduled", Manual = "manual" });

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Queued,
    Running,
    /// Every account synced.
    Succeeded,
    /// Some accounts failed; the others synced.
    Partial,
    /// Nothing could be synced.
    Failed,
}

text_enum!(SyncStatus { Queued = "queued", Running = "running", Succeeded = "succeeded", Partial = "partial", Failed = "failed" });

impl SyncStatus {
    /// The outcome of a run from its accounts' outcomes.
    pub fn from_accounts(succeeded: usize, failed: usize) -> Self {
        match (succeeded, failed) {
            (_, 0) => Self::Succeeded,
            (0, _) => Self::Failed,
            _ => Self::Partial,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountSyncStatus {
    Succeeded,
    Failed,
    /// Not synced: the account is not ACTIVE in the organization.
    Skipped,
}

text_enum!(AccountSyncStatus { Succeeded = "succeeded", Failed = "failed", Skipped = "skipped" });

/// Resources found, by type (`iam_user`, `ec2_instance`, ...).
pub type TypeCounts = BTreeMap<String, i64>;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SyncRun {
    pub id: Uuid,
    pub integration_id: Uuid,
    pub trigger: SyncTrigger,
    pub status: SyncStatus,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// AWS calls made (pages, tag lookups, role assumptions are not counted).
    pub aws_calls: i64,
    #[schema(value_type = BTreeMap<String, i64>, example = json!({"iam_role": 12, "s3_bucket": 3}))]
    pub counts: TypeCounts,
    /// What stopped the whole run, e.g. organizations:ListAccounts refused.
    pub error: Option<AwsErrorBody>,
    /// One entry per account, in the detail view only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<SyncAccountResult>>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SyncAccountResult {
    #[schema(example = "123456789012")]
    pub account_id: String,
    pub status: AccountSyncStatus,
    pub error: Option<AwsErrorBody>,
    #[schema(value_type = BTreeMap<String, i64>, example = json!({"iam_role": 12, "s3_bucket": 3}))]
    pub counts: TypeCounts,
    pub aws_calls: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// An account of an integration, as the browse API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Account {
    #[schema(example = "123456789012")]
    pub account_id: String,
    pub name: Option<String>,
    /// As Organizations reports it (`ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`).
    #[schema(example = "ACTIVE")]
    pub status: String,
    /// The integration's root account (the Organizations management account).
    pub is_root: bool,
    pub last_sync: Option<LastAccountSync>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LastAccountSync {
    pub sync_id: Uuid,
    pub status: AccountSyncStatus,
    pub error: Option<AwsErrorBody>,
    pub finished_at: DateTime<Utc>,
}
