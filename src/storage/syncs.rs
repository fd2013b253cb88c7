//! Queries on `sync_runs` and `sync_run_accounts`: the queue of syncs, claimed
//! with a lease so that each runs on one replica, and taken over when that
//! replica dies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::types::PgInterval;
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::run_queue::SYNCS;
use crate::domain::sync::{AccountSyncStatus, SyncAccountResult, SyncRun, SyncStatus, SyncTrigger, TypeCounts};
use crate::domain::AwsErrorBody;

#[derive(sqlx::FromRow)]
struct SyncRunRow {
    sync_id: Uuid,
    integration_id: Uuid,
    trigger: String,
    status: String,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    aws_calls: i64,
    counts: Json<TypeCounts>,
    error: Option<Json<AwsErrorBody>>,
}

impl From<SyncRunRow> for SyncRun {
    fn from(row: SyncRunRow) -> Self {
        SyncRun {
            id: row.sync_id,
            integration_id: row.integration_id,
            trigger: SyncTrigger::parse(&row.trigger).expect("checked by the table"),
            status: SyncStatus::parse(&row.status).expect("checked by the table"),
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            aws_calls: row.aws_calls,
            counts: row.counts.0,
            error: row.error.map(|e| e.0),
            accounts: None,
        }
    }
}

const COLUMNS: &str = "sync_id, integration_id, trigger, status, created_at, started_at, finished_at, \
                       aws_calls, counts, error";

pub fn interval(duration: Duration) -> PgInterval {
    PgInterval { months: 0, days: 0, microseconds: duration.as_micros() as i64 }
}

/// Queues a sync, unless one is queued or running already: then that one is returned.
pub async fn enqueue(
    db: &mut sqlx::PgConnection,
    integration_id: Uuid,
    trigger: SyncTrigger,
) -> Result<SyncRun, sqlx::Error> {
    // The active sync may end between the insert and the read: then queue again.
    loop {
        let inserted = sqlx::query_as::<_, SyncRunRow>(&format!(
            "insert into sync_runs (integration_id, trigger) values ($1, $2)
             on conflict (integration_id) where status in ('queued', 'running') do nothing
             returning {COLUMNS}"
        ))
        .bind(integration_id)
        .bind(trigger.as_str())
        .fetch_optional(&mut *db)
        .await?;
        if let Some(row) = inserted {
            notify_sync(&mut *db).await?;
            return Ok(row.into());
        }
        let active = sqlx::query_as::<_, SyncRunRow>(&format!(
            "select {COLUMNS} from sync_runs where integration_id = $1 and status in ('queued', 'running')"
        ))
        .bind(integration_id)
        .fetch_optional(&mut *db)
        .await?;
        if let Some(row) = active {
            return Ok(row.into());
        }
    }
}

/// Wakes the sync workers of every replica (delivered when the transaction commits).
pub async fn notify_sync(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_notify('jit_iam_work', 'sync')").execute(db).await.map(|_| ())
}

/// Queues a scheduled sync of every active integration whose last sync began
/// more than `every` ago. Safe to run on every replica at once.
pub async fn enqueue_due(db: impl PgExecutor<'_>, every: Duration) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(&SYNCS.enqueue_due_sql("", "")).bind(interval(every)).execute(db).await?;
    Ok(result.rows_affected())
}

/// Claims the oldest queued sync, or a running one whose lease ran out.
pub async fn claim(db: impl PgExecutor<'_>, owner: &str, lease: Duration) -> Result<Option<SyncRun>, sqlx::Error> {
    sqlx::query_as::<_, SyncRunRow>(&SYNCS.claim_sql(COLUMNS))
        .bind(owner)
        .bind(interval(lease))
        .fetch_optional(db)
        .await
        .map(|row| row.map(Into::into))
}

/// Extends the lease; false when the run is no longer ours.
pub async fn extend_lease(
    db: impl PgExecutor<'_>,
    sync_id: Uuid,
    owner: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    SYNCS.extend_lease(db, sync_id, owner, lease).await
}

pub async fn record_account(
    db: impl PgExecutor<'_>,
    sync_id: Uuid,
    result: &SyncAccountResult,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into sync_run_accounts (sync_id, account_id, status, error, counts, aws_calls, started_at, finished_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (sync_id, account_id) do update
         set status = excluded.status, error = excluded.error, counts = excluded.counts,
             aws_calls = excluded.aws_calls, started_at = excluded.started_at, finished_at = excluded.finished_at",
    )
    .bind(sync_id)
    .bind(&result.account_id)
    .bind(result.status.as_str())
    .bind(result.error.as_ref().map(Json))
    .bind(Json(&result.counts))
    .bind(result.aws_calls)
    .bind(result.started_at)
    .bind(result.finished_at)
    .execute(db)
    .await
    .map(|_| ())
}

pub struct Outcome<'a> {
    pub status: SyncStatus,
    pub aws_calls: i64,
    pub counts: &'a TypeCounts,
    pub error: Option<&'a AwsErrorBody>,
}

/// Ends a run we still own; false when another replica took it over.
pub async fn finish(
    db: impl PgExecutor<'_>,
    sync_id: Uuid,
    owner: &str,
    outcome: Outcome<'_>,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "update sync_runs
         set status = $3, finished_at = now(), aws_calls = $4, counts = $5, error = $6,
             lease_owner = null, lease_expires_at = null
         where sync_id = $1 and lease_owner = $2 and status = 'running'",
    )
    .bind(sync_id)
    .bind(owner)
    .bind(outcome.status.as_str())
    .bind(outcome.aws_calls)
    .bind(Json(outcome.counts))
    .bind(outcome.error.map(Json))
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Newest first, before `before` when given.
pub async fn list(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<SyncRun>, sqlx::Error> {
    sqlx::query_as::<_, SyncRunRow>(&format!(
        "select {COLUMNS} from sync_runs
         where integration_id = $1 and ($2::uuid is null or sync_id < $2)
         order by sync_id desc
         limit $3"
    ))
    .bind(integration_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
    .map(|rows| rows.into_iter().map(Into::into).collect())
}

pub async fn get(db: impl PgExecutor<'_>, integration_id: Uuid, sync_id: Uuid) -> Result<Option<SyncRun>, sqlx::Error> {
    sqlx::query_as::<_, SyncRunRow>(&format!(
        "select {COLUMNS} from sync_runs where integration_id = $1 and sync_id = $2"
    ))
    .bind(integration_id)
    .bind(sync_id)
    .fetch_optional(db)
    .await
    .map(|row| row.map(Into::into))
}

#[derive(sqlx::FromRow)]
struct AccountResultRow {
    account_id: String,
    status: String,
    error: Option<Json<AwsErrorBody>>,
    counts: Json<TypeCounts>,
    aws_calls: i64,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
}

pub async fn account_results(db: impl PgExecutor<'_>, sync_id: Uuid) -> Result<Vec<SyncAccountResult>, sqlx::Error> {
    let rows = sqlx::query_as::<_, AccountResultRow>(
        "select account_id, status, error, counts, aws_calls, started_at, finished_at
         from sync_run_accounts where sync_id = $1 order by account_id",
    )
    .bind(sync_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| SyncAccountResult {
            account_id: row.account_id,
            status: AccountSyncStatus::parse(&row.status).expect("checked by the table"),
            error: row.error.map(|e| e.0),
            counts: row.counts.0,
            aws_calls: row.aws_calls,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
        .collect())
}
