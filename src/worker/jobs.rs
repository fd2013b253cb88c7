//! The one runner of the background runs kept in a [`RunQueue`] (inventory
//! syncs, reconciliations): a kind of run is one [`Job`] impl; [`schedule`]
//! queues it when due, and [`run`] claims it, keeps its lease renewed while it
//! executes, and logs how it ended, for every kind alike.
//!
//! Grants and webhook deliveries keep loops of their own: grants are claimed
//! in batches by due time and handed off at submission, and a webhook delivery
//! is one attempt bounded by its timeout, claimed with per-endpoint slots and
//! never renewed. Both still use [`with_lease`](super::with_lease) or
//! [`pause`](super::pause) from the worker module.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{idle, pause, with_lease, LeaseEnd, Renewal};
use crate::app::AppState;
use crate::storage::run_queue::RunQueue;

/// The field a run's id is logged under.
#[derive(Clone, Copy)]
pub enum IdField {
    SyncId,
    RunId,
}

/// A kind of background run, claimed from Postgres with a lease.
pub trait Job: 'static {
    /// Names the kind in logs: "cannot claim {NAME}s", "{NAME} failed", …
    const NAME: &'static str;
    /// Logged when another replica took a run over.
    const LEASE_LOST: &'static str;
    const ID_FIELD: IdField;
    /// Runs one replica carries out at once. With one, the claim loop itself
    /// carries it out (and shutdown waits for it); with more, each runs in a
    /// task of its own.
    const SLOTS: usize;
    /// Where runs are claimed from, and their leases renewed.
    const QUEUE: RunQueue<Self::Run>;

    type Run: Send + Sync + 'static;

    fn id(run: &Self::Run) -> Uuid;

    /// Where NOTIFY (and a freed slot) wakes the claim loop.
    fn wake(state: &AppState) -> &Notify;

    /// How often runs are scheduled; None when only on demand.
    fn every(state: &AppState) -> Option<Duration>;

    /// Queues a scheduled run of every integration due one; how many.
    fn enqueue_due(state: &AppState, every: Duration) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Carries the run out, recording its outcome.
    fn execute(state: &AppState, run: &Self::Run) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// Logs with the run's id under the job's field.
macro_rules! log_run {
    ($level:ident, $job:ty, $id:expr, $($rest:tt)+) => {
        match <$job>::ID_FIELD {
            IdField::SyncId => tracing::$level!(sync_id = %$id, $($rest)+),
            IdField::RunId => tracing::$level!(run_id = %$id, $($rest)+),
        }
    };
}

/// Queues scheduled runs. Every replica runs it; the database keeps it to one run per integration.
pub async fn schedule<J: Job>(state: AppState, shutdown: CancellationToken) {
    let Some(every) = J::every(&state) else { return };
    let tick = (every / 10).clamp(Duration::from_secs(1), Duration::from_secs(30));
    while !shutdown.is_cancelled() {
        match J::enqueue_due(&state, every).await {
            Ok(0) => {}
            Ok(queued) => {
                tracing::info!(queued, "scheduled {}s", J::NAME);
                J::wake(&state).notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "cannot schedule {}s", J::NAME),
        }
        pause(&shutdown, tick).await;
    }
}

/// Claims queued runs (and runs whose replica died) and carries them out.
pub async fn run<J: Job>(state: AppState, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(J::SLOTS));
    let lease = state.config.worker.worker_lease;
    while !shutdown.is_cancelled() {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        match J::QUEUE.claim(&state.worker_db, &state.instance_id, lease).await {
            Ok(Some(run)) if J::SLOTS == 1 => {
                run_leased::<J>(&state, run).await;
                drop(slot);
            }
            Ok(Some(run)) => {
                let state = state.clone();
                tokio::spawn(async move {
                    run_leased::<J>(&state, run).await;
                    drop(slot);
                    // A slot is free: look for more work at once.
                    J::wake(&state).notify_one();
                });
            }
            Ok(None) => {
                drop(slot);
                idle(&shutdown, J::wake(&state), lease / 2).await;
            }
            Err(e) => {
                drop(slot);
                tracing::warn!(error = %e, "cannot claim {}s", J::NAME);
                pause(&shutdown, Duration::from_secs(1)).await;
            }
        }
    }
}

/// Executes one run while its lease is held, and logs how it ended.
async fn run_leased<J: Job>(state: &AppState, run: J::Run) {
    let lease = state.config.worker.worker_lease;
    let id = J::id(&run);
    let renew = || async move {
        match J::QUEUE.extend_lease(&state.worker_db, id, &state.instance_id, lease).await {
            Ok(true) => Renewal::Renewed,
            Ok(false) => Renewal::Lost,
            Err(e) => {
                log_run!(warn, J, id, error = %e, "cannot extend the {} lease", J::NAME);
                Renewal::Unknown
            }
        }
    };
    match with_lease(lease, J::execute(state, &run), renew).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log_run!(error, J, id, error = %e, "{} failed", J::NAME),
        Err(LeaseEnd::Lost) => log_run!(warn, J, id, "{}", J::LEASE_LOST),
        Err(LeaseEnd::Unconfirmed) => {
            log_run!(warn, J, id, "{} lease not renewed in time; stopped before it could run out", J::NAME)
        }
    }
}
