//! Background work inside `serve`: inventory syncs, and applying and revoking grants.
//!
//! Work lives in Postgres and is claimed with `FOR UPDATE SKIP LOCKED` and a
//! lease, so several replicas share it safely. LISTEN/NOTIFY wakes the workers
//! at once; polling is only the fallback (and how expired leases are found).

use std::future::Future;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::{AppState, GrantUpdate};

pub mod grants;
pub mod sync;

/// The channel every replica listens on; the payload says which worker to wake.
pub const CHANNEL: &str = "jit_iam_work";

/// Starts every worker; they stop when `shutdown` is cancelled.
pub fn spawn(state: AppState, shutdown: CancellationToken) -> JoinSet<()> {
    let mut workers = JoinSet::new();
    workers.spawn(listen(state.clone(), shutdown.clone()));
    workers.spawn(sync::schedule(state.clone(), shutdown.clone()));
    workers.spawn(sync::run(state.clone(), shutdown.clone()));
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
                    "grant" => state.wake.grants.notify_one(),
                    changed => {
                        // A grant changed on some replica: wake whoever waits for it here.
                        if let Some(id) = changed.strip_prefix("grant_changed:").and_then(|id| id.parse().ok()) {
                            let _ = state.grant_updates.send(GrantUpdate { id, grant: None });
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

/// Runs `step` while the lease must be kept; `extend` renews it every third of
/// the lease. Returns None when the lease was lost (another replica took over).
///
/// The renewal runs beside the step, never instead of it: a step in the middle
/// of a transaction may hold the row lock the renewal waits for.
pub async fn with_lease<T, S, E, EF>(lease: Duration, step: S, mut extend: E) -> Option<T>
where
    S: Future<Output = T>,
    E: FnMut() -> EF,
    EF: Future<Output = bool>,
{
    let renewals = async {
        let mut renew = tokio::time::interval(lease / 3);
        renew.tick().await;
        loop {
            renew.tick().await;
            if !extend().await {
                return;
            }
        }
    };
    tokio::select! {
        result = step => Some(result),
        () = renewals => None,
    }
}
