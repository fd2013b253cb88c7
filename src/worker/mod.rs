//! Background work inside `serve`: inventory syncs, applying and revoking
//! grants, reconciling grants with IAM, delivering webhooks, pruning what
//! the retention settings no longer keep, and refreshing the metrics gauges.
//!
//! Work lives in Postgres and is claimed with `FOR UPDATE SKIP LOCKED` and a
//! lease, so several replicas share it safely. LISTEN/NOTIFY wakes the workers
//! at once; polling is only the fallback (and how expired leases are found).

use std::future::Future;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::{AppState, GrantUpdate};

pub mod gauges;
pub mod grants;
pub mod jobs;
pub mod reconcile;
pub mod retention;
pub mod sync;
pub mod webhooks;

/// The channel every replica listens on; the payload says which worker to wake.
pub const CHANNEL: &str = "jit_iam_work";

/// Starts every worker; they stop when `shutdown` is cancelled.
pub fn spawn(state: AppState, shutdown: CancellationToken) -> JoinSet<()> {
    let mut workers = JoinSet::new();
    workers.spawn(listen(state.clone(), shutdown.clone()));
    workers.spawn(jobs::schedule::<sync::Syncs>(state.clone(), shutdown.clone()));
    workers.spawn(jobs::run::<sync::Syncs>(state.clone(), shutdown.clone()));
    workers.spawn(jobs::schedule::<reconcile::Reconciliations>(state.clone(), shutdown.clone()));
    workers.spawn(jobs::run::<reconcile::Reconciliations>(state.clone(), shutdown.clone()));
    workers.spawn(webhooks::run(state.clone(), shutdown.clone()));
    workers.spawn(webhooks::notice_expiring(state.clone(), shutdown.clone()));
    workers.spawn(retention::run(state.clone(), shutdown.clone()));
    workers.spawn(gauges::run(state.clone(), shutdown.clone()));
    workers.spawn(grants::run(state, shutdown));
    workers
}

/// Turns NOTIFYs into wake-ups; after a lost connection, wakes everyone to catch up.
async fn listen(state: AppState, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut listener = match PgListener::connect_with(&state.worker_db).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN; retrying");
                pause(&shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cannot LISTEN; retrying");
            pause(&shutdown, Duration::from_secs(1)).await;
            continue;
        }
        state.wake.wake_all();
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => match notification.payload() {
                    "sync" => state.wake.syncs.notify_one(),
                    "reconcile" => state.wake.reconciles.notify_one(),
                    "webhook" => state.wake.webhooks.notify_one(),
                    "grant" => {
                        state.wake.grants.notify_one();
                        state.wake.expiry_notices.notify_one();
                    }
                    changed => {
                        // A grant changed on some replica: wake whoever waits for it here.
                        if let Some(id) = changed.strip_prefix("grant_changed:").and_then(|id| id.parse().ok()) {
                            let _ = state.grant_updates.send(GrantUpdate { id, grant: None });
                            state.wake.expiry_notices.notify_one();
                        }
                    }
                },
                // The connection was lost and re-established: notifications may have been missed.
                Ok(None) => state.wake.wake_all(),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection failed; reconnecting");
                    pause(&shutdown, Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// Sleeps, unless shutdown comes first.
pub async fn pause(shutdown: &CancellationToken, duration: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(duration) => {}
    }
}

/// Waits for a wake-up, the poll interval, or shutdown.
pub async fn idle(shutdown: &CancellationToken, wake: &Notify, poll: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = wake.notified() => {}
        _ = tokio::time::sleep(poll) => {}
    }
}

/// What one lease renewal learnt.
pub enum Renewal {
    Renewed,
    /// Another replica holds the lease now.
    Lost,
    /// Postgres did not answer: the lease may or may not still be ours.
    Unknown,
}

/// Why a step stopped before it finished.
#[derive(Debug, PartialEq, Eq)]
pub enum LeaseEnd {
    /// Another replica took the work over.
    Lost,
    /// No renewal was confirmed for so long that the lease might run out: the
    /// step was stopped before it could, so that it never acts after another
    /// replica has taken over (fencing by a local deadline).
    Unconfirmed,
}

/// Runs `step` while its lease is held; `renew` renews it every third of the
/// lease (every tenth while Postgres does not answer).
///
/// A renewal confirmed at `t` holds the lease until `t + lease` by Postgres's
/// clock; this side stops the step a third of the lease sooner, by its own
/// monotonic clock (room for network delays and clock rates), unless a later
/// renewal is confirmed. The renewal runs beside the step, never instead of
/// it: a step in the middle of a transaction may hold the row lock the
/// renewal waits for.
pub async fn with_lease<T, S, R, RF>(lease: Duration, step: S, mut renew: R) -> Result<T, LeaseEnd>
where
    S: Future<Output = T>,
    R: FnMut() -> RF,
    RF: Future<Output = Renewal>,
{
    let keep_short = lease / 3;
    let renewals = async {
        let mut held_until = Instant::now() + (lease - keep_short);
        let mut renew_at = Instant::now() + lease / 3;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(held_until) => return LeaseEnd::Unconfirmed,
                () = tokio::time::sleep_until(renew_at) => {}
            }
            let sent = Instant::now();
            match tokio::time::timeout_at(held_until, renew()).await {
                Ok(Renewal::Renewed) => {
                    held_until = sent + (lease - keep_short);
                    renew_at = sent + lease / 3;
                }
                Ok(Renewal::Lost) => return LeaseEnd::Lost,
                Ok(Renewal::Unknown) => renew_at = Instant::now() + lease / 10,
                Err(_) => return LeaseEnd::Unconfirmed,
            }
        }
    };
    tokio::select! {
        result = step => Ok(result),
        end = renewals => Err(end),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    const LEASE: Duration = Duration::from_millis(300);

    async fn step_of(length: Duration) -> &'static str {
        tokio::time::sleep(length).await;
        "done"
    }

    #[tokio::test]
    async fn a_step_outlives_its_lease_only_while_renewals_are_confirmed() {
        let renewed = with_lease(LEASE, step_of(LEASE * 3), || async { Renewal::Renewed }).await;
        assert_eq!(renewed, Ok("done"));
        let lost = with_lease(LEASE, step_of(LEASE * 3), || async { Renewal::Lost }).await;
        assert_eq!(lost, Err(LeaseEnd::Lost));
    }

    /// Postgres gone: the step is stopped before the lease it last confirmed
    /// can run out, whether renewals fail at once or hang.
    #[tokio::test]
    async fn without_a_confirmed_renewal_the_step_stops_before_the_lease_runs_out() {
        for hangs in [false, true] {
            let started = Instant::now();
            let result = with_lease(LEASE, step_of(LEASE * 3), || async move {
                if hangs {
                    std::future::pending::<()>().await;
                }
                Renewal::Unknown
            })
            .await;
            let stopped_after = started.elapsed();
            assert_eq!(result, Err(LeaseEnd::Unconfirmed), "hangs: {hangs}");
            assert!(stopped_after < LEASE, "stopped after {stopped_after:?}, the lease is {LEASE:?}");
        }
    }
}
