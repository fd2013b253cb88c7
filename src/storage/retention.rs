//! Deleting what the retention settings no longer keep. One call deletes one
//! batch in one short statement, so no lock is held for long; rows another
//! replica is deleting at the same moment are skipped, not waited for, which
//! makes the same pruning on every replica harmless. The audit trail is never
//! pruned.

use std::time::Duration;

use sqlx::PgExecutor;

use super::run_queue::interval;

/// What one kind of pruning deletes, and how.
#[derive(Clone, Copy, Debug)]
pub struct Prune {
    /// The table whose rows the batch counts: fewer than asked means done.
    pub table: &'static str,
    /// Binds `$1`, the retention (an interval), and `$2`, the batch size;
    /// returns `(table, rows deleted)` for every table it deletes from.
    sql: &'static str,
}

/// Events of grants that ended (revoked or failed) longer ago than the
/// retention, themselves older than it. The grant's row stays.
pub const GRANT_EVENTS: Prune =
    Prune { table: "grant_events", sql: "select 'grant_events', prune_grant_events(now() - $1, $2)" };

/// Deliveries finished (succeeded or failed) longer ago than the retention,
/// with their attempts.
pub const WEBHOOK_DELIVERIES: Prune = Prune {
    table: "webhook_deliveries",
    sql: "with doomed as (
              select delivery_id from webhook_deliveries
              where status <> 'pending' and finished_at < now() - $1
              order by finished_at limit $2
              for update skip locked),
          attempts as (
              delete from webhook_attempts a using doomed where a.delivery_id = doomed.delivery_id returning 1),
          deliveries as (
              delete from webhook_deliveries d using doomed where d.delivery_id = doomed.delivery_id returning 1)
          select 'webhook_deliveries', count(*) from deliveries
          union all select 'webhook_attempts', count(*) from attempts",
};

/// Messages older than the retention that no delivery is left of.
pub const WEBHOOK_MESSAGES: Prune = Prune {
    table: "webhook_messages",
    sql: "with pruned as (
              delete from webhook_messages where message_id in (
                  select m.message_id from webhook_messages m
                  where m.occurred_at < now() - $1
                    and not exists (select 1 from webhook_deliveries d where d.message_id = m.message_id)
                  order by m.occurred_at limit $2
                  for update skip locked)
              returning 1)
          select 'webhook_messages', count(*) from pruned",
};

/// Syncs finished longer ago than the retention, with their per-account
/// results, except each integration's latest finished sync and any an
/// account shows as its last.
pub const SYNC_RUNS: Prune = Prune {
    table: "sync_runs",
    sql: "with doomed as (
              select r.sync_id from sync_runs r
              where r.status not in ('queued', 'running') and r.finished_at < now() - $1
                and r.sync_id not in (select last_sync_id from accounts where last_sync_id is not null)
                and exists (select 1 from sync_runs n
                            where n.integration_id = r.integration_id and n.sync_id > r.sync_id
                              and n.status not in ('queued', 'running'))
              order by r.finished_at limit $2
              for update of r skip locked),
          accounts as (
              delete from sync_run_accounts a using doomed where a.sync_id = doomed.sync_id returning 1),
          runs as (
              delete from sync_runs r using doomed where r.sync_id = doomed.sync_id returning 1)
          select 'sync_runs', count(*) from runs
          union all select 'sync_run_accounts', count(*) from accounts",
};

/// Reconciliations finished longer ago than the retention, except each
/// integration's latest finished one.
pub const RECONCILE_RUNS: Prune = Prune {
    table: "reconcile_runs",
    sql: "with pruned as (
              delete from reconcile_runs where run_id in (
                  select r.run_id from reconcile_runs r
                  where r.status not in ('queued', 'running') and r.finished_at < now() - $1
                    and exists (select 1 from reconcile_runs n
                                where n.integration_id = r.integration_id and n.run_id > r.run_id
                                  and n.status not in ('queued', 'running'))
                  order by r.finished_at limit $2
                  for update of r skip locked)
              returning 1)
          select 'reconcile_runs', count(*) from pruned",
};

impl Prune {
    /// Deletes one batch of at most `batch` rows of [`Prune::table`];
    /// returns the rows deleted from each table.
    pub async fn batch(
        &self,
        db: impl PgExecutor<'_>,
        retention: Duration,
        batch: i64,
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        sqlx::query_as(self.sql).bind(interval(retention)).bind(batch).fetch_all(db).await
    }
}
