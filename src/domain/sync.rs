//! Sync runs: when the inventory of an integration was refreshed, and how it went.

use super::wire_enum;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::AwsErrorBody;

wire_enum! {
    pub enum SyncTrigger {
        /// Right after the integration was created.
        Created = "created",
        /// After a change of the integration that changes what is listed.
        Updated = "updated",
        /// Every `JIT_IAM_SYNC_INTERVAL`.
        Scheduled = "scheduled",
        /// `POST /v1/integrations/{id}/sync`.
        Manual = "manual",
    }
}

wire_enum! {
    pub enum SyncStatus {
        Queued = "queued",
        Running = "running",
        /// Every account synced.
        Succeeded = "succeeded",
        /// Some accounts failed; the others synced.
        Partial = "partial",
        /// Nothing could be synced.
        Failed = "failed",
    }
}

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

wire_enum! {
    pub enum AccountSyncStatus {
        Succeeded = "succeeded",
        Failed = "failed",
        /// Not synced: the account is not ACTIVE in the organization.
        Skipped = "skipped",
    }
}

/// Resources found, by type (`iam_user`, `ec2_instance`, ...).
pub type TypeCounts = BTreeMap<String, i64>;

/// Why a run failed, at run level: what stopped it, or else its first failed
/// account's error (naming the account, and how many failed).
pub fn run_error(stopped_by: Option<AwsErrorBody>, accounts: &[SyncAccountResult]) -> Option<AwsErrorBody> {
    if stopped_by.is_some() {
        return stopped_by;
    }
    let failed: Vec<&SyncAccountResult> =
        accounts.iter().filter(|a| a.status == AccountSyncStatus::Failed && a.error.is_some()).collect();
    let first = failed.first()?;
    let mut error = first.error.clone()?;
    error.message = match failed.len() {
        1 => format!("account {}: {}", first.account_id, error.message),
        n => format!("account {} (and {} more failed): {}", first.account_id, n - 1, error.message),
    };
    Some(error)
}

#[derive(Clone, Debug, Serialize)]
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
    pub counts: TypeCounts,
    /// Why the run failed or was partial: what stopped it (e.g. organizations:ListAccounts
    /// refused), or else the first failed account's error, naming it.
    pub error: Option<AwsErrorBody>,
    /// One entry per account, in the detail view only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<SyncAccountResult>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SyncAccountResult {
    pub account_id: String,
    pub status: AccountSyncStatus,
    pub error: Option<AwsErrorBody>,
    pub counts: TypeCounts,
    pub aws_calls: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// An account of an integration, with its last sync.
#[derive(Clone, Debug, Serialize)]
pub struct Account {
    pub account_id: String,
    pub name: Option<String>,
    /// As Organizations reports it (`ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE` today; AWS's
    /// set, which may grow, hence a string).
    pub status: String,
    /// The integration's root account (the Organizations management account).
    pub is_root: bool,
    pub last_sync: Option<LastAccountSync>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LastAccountSync {
    pub sync_id: Uuid,
    pub status: AccountSyncStatus,
    pub error: Option<AwsErrorBody>,
    pub finished_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, error: Option<&str>) -> SyncAccountResult {
        SyncAccountResult {
            account_id: id.into(),
            status: if error.is_some() { AccountSyncStatus::Failed } else { AccountSyncStatus::Succeeded },
            error: error.map(|message| AwsErrorBody {
                code: Some("AccessDenied".into()),
                message: message.into(),
                operation: "sts:AssumeRole".into(),
                request_id: None,
                http_status: Some(403),
                permission: None,
            }),
            counts: TypeCounts::new(),
            aws_calls: 1,
            started_at: Utc::now(),
            finished_at: Utc::now(),
        }
    }

    #[test]
    fn a_failed_run_says_why_at_run_level() {
        assert!(run_error(None, &[account("111111111111", None)]).is_none());
        let one = run_error(None, &[account("111111111111", None), account("222222222222", Some("denied"))]).unwrap();
        assert_eq!(one.message, "account 222222222222: denied");
        assert_eq!(one.operation, "sts:AssumeRole");
        let two = [account("222222222222", Some("denied")), account("333333333333", Some("gone"))];
        assert_eq!(run_error(None, &two).unwrap().message, "account 222222222222 (and 1 more failed): denied");
        let stopped = account("0", Some("ListAccounts refused")).error;
        assert_eq!(run_error(stopped.clone(), &two), stopped);
    }
}
