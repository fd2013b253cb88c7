//! The queue the two kinds of background run share (inventory syncs,
//! reconciliations): at most one queued or running run per integration (a
//! partial unique index on each table), claimed with a lease, taken over when
//! its replica dies.

use std::time::Duration;

use sqlx::postgres::types::PgInterval;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{FromRow, PgExecutor, Postgres};
use uuid::Uuid;

/// A lease (or any span of time) as a Postgres `interval`.
pub fn interval(duration: Duration) -> PgInterval {
    PgInterval { months: 0, days: 0, microseconds: duration.as_micros() as i64 }
}

/// One table of runs, read as `T`.
pub struct RunQueue<T> {
    pub table: &'static str,
    /// The id column.
    pub id: &'static str,
    /// The columns a run is read with.
    pub columns: &'static str,
    /// The NOTIFY payload that wakes this queue's workers.
    pub wake: &'static str,
    /// Reads a run from a row of `columns`.
    pub decode: fn(&PgRow) -> Result<T, sqlx::Error>,
}

/// Reads a row as `Row`, then as `T`: for [`RunQueue::decode`].
pub fn decode<Row, T>(row: &PgRow) -> Result<T, sqlx::Error>
where
    Row: for<'r> FromRow<'r, PgRow> + Into<T>,
{
    Row::from_row(row).map(Into::into)
}

/// An insert into a queue, to bind the values of.
pub type Insert<'q> = Query<'q, Postgres, PgArguments>;

impl<T> RunQueue<T> {
    /// Queues a run, unless one of the integration is queued or running
    /// already: then that one is returned, and false. `values` are bound by
    /// `bind`, `$1` the integration.
    pub async fn enqueue(
        &self,
        db: &mut sqlx::PgConnection,
        integration_id: Uuid,
        columns: &str,
        values: &str,
        bind: impl for<'q> Fn(Insert<'q>) -> Insert<'q>,
    ) -> Result<(T, bool), sqlx::Error> {
        let RunQueue { table, columns: returning, .. } = self;
        // The active run may end between the insert and the read: then queue again.
        loop {
            let insert = format!(
                "insert into {table} ({columns}) values ({values})
             on conflict (integration_id) where status in ('queued', 'running') do nothing
             returning {returning}"
            );
            if let Some(row) = bind(sqlx::query(&insert)).fetch_optional(&mut *db).await? {
                self.notify(&mut *db).await?;
                return Ok(((self.decode)(&row)?, true));
            }
            let active = sqlx::query(&format!(
                "select {returning} from {table} where integration_id = $1 and status in ('queued', 'running')"
            ))
            .bind(integration_id)
            .fetch_optional(&mut *db)
            .await?;
            if let Some(row) = active {
                return Ok(((self.decode)(&row)?, false));
            }
        }
    }

    /// Wakes this queue's workers on every replica (delivered when the transaction commits).
    pub async fn notify(&self, db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("select pg_notify('jit_iam_work', '{}')", self.wake)).execute(db).await.map(|_| ())
    }

    /// Claims the oldest queued run, or a running one whose lease ran out.
    pub async fn claim(&self, db: impl PgExecutor<'_>, owner: &str, lease: Duration) -> Result<Option<T>, sqlx::Error> {
        let RunQueue { table, id, columns, .. } = self;
        let claimed = sqlx::query(&format!(
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
        ))
        .bind(owner)
        .bind(interval(lease))
        .fetch_optional(db)
        .await?;
        claimed.map(|row| (self.decode)(&row)).transpose()
    }

    /// Ends a run we still own, setting its status (`$3`) and `set` (which
    /// binds from `$4`); `$1` the run, `$2` the owner. Its query returns
    /// false when another replica took the run over.
    pub fn finish_sql(&self, set: &str) -> String {
        let RunQueue { table, id, .. } = self;
        format!(
            "update {table}
         set status = $3, finished_at = now(), {set},
             lease_owner = null, lease_expires_at = null
         where {id} = $1 and lease_owner = $2 and status = 'running'"
        )
    }

    /// Newest first, before `before` when given.
    pub async fn list(
        &self,
        db: impl PgExecutor<'_>,
        integration_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<T>, sqlx::Error> {
        let RunQueue { table, id, columns, .. } = self;
        let rows = sqlx::query(&format!(
            "select {columns} from {table}
         where integration_id = $1 and ($2::uuid is null or {id} < $2)
         order by {id} desc
         limit $3"
        ))
        .bind(integration_id)
        .bind(before)
        .bind(limit)
        .fetch_all(db)
        .await?;
        rows.iter().map(self.decode).collect()
    }

    pub async fn get(
        &self,
        db: impl PgExecutor<'_>,
        integration_id: Uuid,
        run_id: Uuid,
    ) -> Result<Option<T>, sqlx::Error> {
        let RunQueue { table, id, columns, .. } = self;
        let row = sqlx::query(&format!("select {columns} from {table} where integration_id = $1 and {id} = $2"))
            .bind(integration_id)
            .bind(run_id)
            .fetch_optional(db)
            .await?;
        row.map(|row| (self.decode)(&row)).transpose()
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
        let RunQueue { table, id, .. } = self;
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
