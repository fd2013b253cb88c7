//! Queries on `accounts`: the accounts of each integration and their last sync.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::grant::TargetAccount;
use crate::domain::sync::{Account, AccountSyncStatus, LastAccountSync};
use crate::domain::AwsErrorBody;

/// An account as the last listing found it.
pub struct ListedAccount {
    pub account_id: String,
    pub name: Option<String>,
    pub status: String,
    pub is_root: bool,
}

/// Records the listed accounts. When the listing is `complete`, accounts that
/// left the organization are removed, with their resources.
pub async fn replace(
    tx: &mut sqlx::PgConnection,
    integration_id: Uuid,
    listed: &[ListedAccount],
    complete: bool,
) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = listed.iter().map(|a| a.account_id.as_str()).collect();
    let names: Vec<Option<&str>> = listed.iter().map(|a| a.name.as_deref()).collect();
    let statuses: Vec<&str> = listed.iter().map(|a| a.status.as_str()).collect();
    let roots: Vec<bool> = listed.iter().map(|a| a.is_root).collect();
    sqlx::query(
        "insert into accounts (integration_id, account_id, name, status, is_root)
         select $1, t.account_id, t.name, t.status, t.is_root
         from unnest($2::text[], $3::text[], $4::text[], $5::bool[]) as t(account_id, name, status, is_root)
         on conflict (integration_id, account_id) do update
         set name = excluded.name, status = excluded.status, is_root = excluded.is_root",
    )
    .bind(integration_id)
    .bind(&ids)
    .bind(&names)
    .bind(&statuses)
    .bind(&roots)
    .execute(&mut *tx)
    .await?;
    if !complete {
        return Ok(());
    }
    let removed = sqlx::query("delete from resources where integration_id = $1 and not (account_id = any($2))")
        .bind(integration_id)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    if removed.rows_affected() > 0 {
        super::resources::mark_changed(tx).await?;
    }
    sqlx::query("delete from accounts where integration_id = $1 and not (account_id = any($2))")
        .bind(integration_id)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub async fn record_sync(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    account_id: &str,
    sync_id: Uuid,
    status: AccountSyncStatus,
    error: Option<&AwsErrorBody>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update accounts set last_sync_id = $3, last_sync_status = $4, last_sync_error = $5, last_synced_at = now()
         where integration_id = $1 and account_id = $2",
    )
    .bind(integration_id)
    .bind(account_id)
    .bind(sync_id)
    .bind(status.as_str())
    .bind(error.map(Json))
    .execute(db)
    .await
    .map(|_| ())
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    account_id: String,
    name: Option<String>,
    status: String,
    is_root: bool,
    last_sync_id: Option<Uuid>,
    last_sync_status: Option<String>,
    last_sync_error: Option<Json<AwsErrorBody>>,
    last_synced_at: Option<DateTime<Utc>>,
}

/// In account id order, after `after` when given.
pub async fn list(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Account>, sqlx::Error> {
    let rows = sqlx::query_as::<_, AccountRow>(
        "select account_id, name, status, is_root, last_sync_id, last_sync_status, last_sync_error, last_synced_at
         from accounts
         where integration_id = $1 and ($2::text is null or account_id > $2)
         order by account_id
         limit $3",
    )
    .bind(integration_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let last_sync = match (row.last_sync_id, row.last_sync_status, row.last_synced_at) {
                (Some(sync_id), Some(status), Some(finished_at)) => Some(LastAccountSync {
                    sync_id,
                    status: AccountSyncStatus::parse(&status).expect("checked by the table"),
                    error: row.last_sync_error.map(|e| e.0),
                    finished_at,
                }),
                _ => None,
            };
            Account { account_id: row.account_id, name: row.name, status: row.status, is_root: row.is_root, last_sync }
        })
        .collect())
}

/// The account a permission set grant names, with the permission sets
/// provisioned to it as of the last sync (and whether the one granted, given
/// by id or ARN, is one of them). None when it is not the integration's.
pub async fn target(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    account_id: &str,
    resource_id: Option<Uuid>,
    resource_arn: Option<&str>,
) -> Result<Option<TargetAccount>, sqlx::Error> {
    let row: Option<(String, i64, bool)> = sqlx::query_as(
        "select a.status,
                (select count(*) from resources r
                 where r.integration_id = $1 and r.type = 'permission_set' and r.details -> 'account_ids' ? $2),
                exists (select 1 from resources r
                        where r.integration_id = $1 and r.type = 'permission_set'
                          and (r.resource_id = $3 or r.arn = $4) and r.details -> 'account_ids' ? $2)
         from accounts a
         where a.integration_id = $1 and a.account_id = $2",
    )
    .bind(integration_id)
    .bind(account_id)
    .bind(resource_id)
    .bind(resource_arn)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(status, provisioned, provisioned_here)| TargetAccount {
        status,
        provisioned: provisioned as usize,
        provisioned_here,
    }))
}
