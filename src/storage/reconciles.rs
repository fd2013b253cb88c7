//! Queries on `reconcile_runs` and `orphan_sightings`: the queue of
//! reconciliation runs, claimed with a lease like syncs, and when each orphaned
//! policy was first seen.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::run_queue::{decode, interval, RunQueue};
use crate::domain::reconcile::{Finding, ReconcileRun, ReconcileStatus, ReconcileTrigger};
use crate::domain::AwsErrorBody;

#[derive(sqlx::FromRow)]
struct RunRow {
    run_id: Uuid,
    integration_id: Uuid,
    trigger: String,
    status: String,
    repair: bool,
    delete_orphans: bool,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    aws_calls: i64,
    findings: Json<Vec<Finding>>,
    error: Option<Json<AwsErrorBody>>,
}

impl From<RunRow> for ReconcileRun {
    fn from(row: RunRow) -> Self {
        ReconcileRun {
            id: row.run_id,
            integration_id: row.integration_id,
            trigger: ReconcileTrigger::parse(&row.trigger).expect("checked by the table"),
            status: ReconcileStatus::parse(&row.status).expect("checked by the table"),
            repair: row.repair,
            delete_orphans: row.delete_orphans,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            aws_calls: row.aws_calls,
            findings: row.findings.0,
            error: row.error.map(|e| e.0),
        }
    }
}

/// The queue of reconciliations.
pub const QUEUE: RunQueue<ReconcileRun> = RunQueue {
    table: "reconcile_runs",
    id: "run_id",
    columns: "run_id, integration_id, trigger, status, repair, delete_orphans, created_at, started_at, finished_at, \
              aws_calls, findings, error",
    wake: "reconcile",
    decode: decode::<RunRow, ReconcileRun>,
};

/// Queues a run, unless one is queued or running already: then that one is
/// returned (and `created` is false).
pub async fn enqueue(
    db: &mut sqlx::PgConnection,
    integration_id: Uuid,
    trigger: ReconcileTrigger,
    repair: bool,
    delete_orphans: bool,
) -> Result<(ReconcileRun, bool), sqlx::Error> {
    let columns = "integration_id, trigger, repair, delete_orphans";
    QUEUE
        .enqueue(db, integration_id, columns, "$1, $2, $3, $4", |q| {
            q.bind(integration_id).bind(trigger.as_str()).bind(repair).bind(delete_orphans)
        })
        .await
}

/// Queues a scheduled run of every active integration whose last run began
/// more than `every` ago. Safe to run on every replica at once.
pub async fn enqueue_due(db: impl PgExecutor<'_>, every: Duration, repair: bool) -> Result<u64, sqlx::Error> {
    let result =
        sqlx::query(&QUEUE.enqueue_due_sql(", repair", ", $2")).bind(interval(every)).bind(repair).execute(db).await?;
    Ok(result.rows_affected())
}

/// Records the end of a run we hold.
pub async fn finish(
    db: impl PgExecutor<'_>,
    run_id: Uuid,
    owner: &str,
    status: ReconcileStatus,
    findings: &[Finding],
    aws_calls: i64,
    error: Option<&AwsErrorBody>,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(&QUEUE.finish_sql("findings = $4, aws_calls = $5, error = $6"))
        .bind(run_id)
        .bind(owner)
        .bind(status.as_str())
        .bind(Json(findings))
        .bind(aws_calls)
        .bind(error.map(Json))
        .execute(db)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// When jit-iam first saw this orphaned policy (now, the first time).
pub async fn orphan_seen(db: impl PgExecutor<'_>, account_id: &str, arn: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into orphan_sightings (account_id, policy_arn) values ($1, $2)
         on conflict (account_id, policy_arn) do update set account_id = excluded.account_id
         returning first_seen_at",
    )
    .bind(account_id)
    .bind(arn)
    .fetch_one(db)
    .await
}

pub async fn forget_orphan(db: impl PgExecutor<'_>, account_id: &str, arn: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from orphan_sightings where account_id = $1 and policy_arn = $2")
        .bind(account_id)
        .bind(arn)
        .execute(db)
        .await
        .map(|_| ())
}
