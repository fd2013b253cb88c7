//! Inventory sync runs and accounts.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::aws_error::AwsErrorBody;
use super::enum_schema;
use crate::domain::sync::{self, AccountSyncStatus, SyncStatus, SyncTrigger, TypeCounts};

enum_schema!(SyncTrigger);
enum_schema!(SyncStatus);
enum_schema!(AccountSyncStatus);

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRun {
    pub id: Uuid,
    pub integration_id: Uuid,
    pub trigger: SyncTrigger,
    pub status: SyncStatus,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    /// AWS calls made (pages, tag lookups, role assumptions are not counted).
    pub aws_calls: i64,
    #[schema(value_type = BTreeMap<String, i64>, example = json!({"iam_role": 12, "s3_bucket": 3}))]
    pub counts: TypeCounts,
    /// Why the run failed or was partial: what stopped it (e.g. organizations:ListAccounts
    /// refused), or else the first failed account's error, naming it.
    #[schema(required = true)]
    pub error: Option<AwsErrorBody>,
    /// One entry per account, in the detail view only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub accounts: Option<Vec<SyncAccountResult>>,
}

impl From<sync::SyncRun> for SyncRun {
    fn from(value: sync::SyncRun) -> Self {
        Self {
            id: value.id,
            integration_id: value.integration_id,
            trigger: value.trigger,
            status: value.status,
            created_at: value.created_at,
            started_at: value.started_at,
            finished_at: value.finished_at,
            aws_calls: value.aws_calls,
            counts: value.counts,
            error: value.error.map(Into::into),
            accounts: value.accounts.map(|items| items.into_iter().map(Into::into).collect()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncAccountResult {
    #[schema(example = "123456789012")]
    pub account_id: String,
    pub status: AccountSyncStatus,
    #[schema(required = true)]
    pub error: Option<AwsErrorBody>,
    #[schema(value_type = BTreeMap<String, i64>, example = json!({"iam_role": 12, "s3_bucket": 3}))]
    pub counts: TypeCounts,
    pub aws_calls: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl From<sync::SyncAccountResult> for SyncAccountResult {
    fn from(value: sync::SyncAccountResult) -> Self {
        Self {
            account_id: value.account_id,
            status: value.status,
            error: value.error.map(Into::into),
            counts: value.counts,
            aws_calls: value.aws_calls,
            started_at: value.started_at,
            finished_at: value.finished_at,
        }
    }
}

/// An account of an integration, as the browse API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    #[schema(example = "123456789012")]
    pub account_id: String,
    #[schema(required = true)]
    pub name: Option<String>,
    /// As Organizations reports it (`ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE` today; AWS's
    /// set, which may grow, hence a string).
    #[schema(example = "ACTIVE")]
    pub status: String,
    /// The integration's root account (the Organizations management account).
    pub is_root: bool,
    #[schema(required = true)]
    pub last_sync: Option<LastAccountSync>,
}

impl From<sync::Account> for Account {
    fn from(value: sync::Account) -> Self {
        Self {
            account_id: value.account_id,
            name: value.name,
            status: value.status,
            is_root: value.is_root,
            last_sync: value.last_sync.map(Into::into),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastAccountSync {
    pub sync_id: Uuid,
    pub status: AccountSyncStatus,
    #[schema(required = true)]
    pub error: Option<AwsErrorBody>,
    pub finished_at: DateTime<Utc>,
}

impl From<sync::LastAccountSync> for LastAccountSync {
    fn from(value: sync::LastAccountSync) -> Self {
        Self {
            sync_id: value.sync_id,
            status: value.status,
            error: value.error.map(Into::into),
            finished_at: value.finished_at,
        }
    }
}
