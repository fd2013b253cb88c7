//! Queries on `sync_runs` and `sync_run_accounts`: the queue of syncs, claimed
//! with a lease so that each runs on one replica, and taken over when that
//! replica dies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::run_queue::{decode, interval, RunQueue};
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

/// The queue of syncs.
pub const QUEUE: RunQueue<SyncRun> = RunQueue {
    table: "sync_runs",
    id: "sync_id",
    columns: "sync_id, integration_id, trigger, status, created_at, started_at, finished_at, aws_calls, counts, error",
    wake: "sync",
    decode: decode::<SyncRunRow, SyncRun>,
};

/// Queues a sync, unless one is queued or running already: then that one is returned.
pub async fn enqueue(
    db: &mut sqlx::PgConnection,
    integration_id: Uuid,
    trigger: SyncTrigger,
) -> Result<SyncRun, sqlx::Error> {
    let enqueued = QUEUE.enqueue(db, integration_id, "integration_id, trigger", "$1, $2", |q| {
        q.bind(integration_id).bind(trigger.as_str())
    });
    Ok(enqueued.await?.0)
}

/// Queues a scheduled sync of every active integration whose last sync began
/// more than `every` ago. Safe to run on every replica at once.
pub async fn enqueue_due(db: impl PgExecutor<'_>, every: Duration) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(&QUEUE.enqueue_due_sql("", "")).bind(interval(every)).execute(db).await?;
    Ok(result.rows_affected())
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
    let result = sqlx::query(&QUEUE.finish_sql("aws_calls = $4, counts = $5, error = $6"))
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
