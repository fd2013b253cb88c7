//! The queue the two kinds of background run share (inventory syncs,
//! reconciliations): at most one queued or running run per integration (a
//! partial unique index on each table), claimed with a lease, taken over when
//! its replica dies.

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

use super::syncs::interval;

pub struct RunQueue {
    pub table: &'static str,
    pub id: &'static str,
}

pub const SYNCS: RunQueue = RunQueue { table: "sync_runs", id: "sync_id" };
pub const RECONCILIATIONS: RunQueue = RunQueue { table: "reconcile_runs", id: "run_id" };

impl RunQueue {
    /// Claims the oldest queued run, or a running one whose lease ran out,
    /// returning `columns`. Binds `$1` the owner, `$2` the lease.
    pub fn claim_sql(&self, columns: &str) -> String {
        let RunQueue { table, id } = self;
        format!(
            "update {table}
             set status = 'running', lease_owner = $1, lease_expires_at = now() + $2,
                 started_at = now(), attempts = attempts + 1
             where {id} = (
                 select {id} from {table}
                 where status = 'queued' or (status = 'running' and lease_expires_at < now())
                 order by created_at
                 limit 1
                 for update skip locked)
             returning {columns}"
        )
    }

    /// Queues a scheduled run of every active integration whose last run
    /// began more than `$1` ago; `columns` and `values` add to the row (the
    /// values may bind from `$2`). Safe to run on every replica at once.
    pub fn enqueue_due_sql(&self, columns: &str, values: &str) -> String {
        let table = self.table;
        format!(
            "insert into {table} (integration_id, trigger{columns})
             select i.integration_id, 'scheduled'{values} from integrations i
             where i.status = 'active'
               and not exists (select 1 from {table} r
                               where r.integration_id = i.integration_id
                                 and (r.status in ('queued', 'running') or r.created_at > now() - $1))
             on conflict (integration_id) where status in ('queued', 'running') do nothing"
        )
    }

    /// Extends the lease; false when the run is no longer ours.
    pub async fn extend_lease(
        &self,
        db: impl PgExecutor<'_>,
        run_id: Uuid,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, sqlx::Error> {
        let RunQueue { table, id } = self;
        let result = sqlx::query(&format!(
            "update {table} set lease_expires_at = now() + $3
             where {id} = $1 and lease_owner = $2 and status = 'running'"
        ))
        .bind(run_id)
        .bind(owner)
        .bind(interval(lease))
        .execute(db)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
