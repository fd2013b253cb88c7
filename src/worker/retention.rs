//! Pruning: every `JIT_IAM_PRUNE_INTERVAL`, deletes what the retention
//! settings no longer keep, batch after batch until none is left.
//!
//! Every replica prunes: each batch is one short statement that skips rows
//! another replica has locked, so two replicas pruning at once split the
//! work instead of waiting on each other, and a round that finds nothing old
//! reads only the index entries of what is kept.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::pause;
use crate::app::AppState;
use crate::storage::retention::{Prune, GRANT_EVENTS, RECONCILE_RUNS, SYNC_RUNS, WEBHOOK_DELIVERIES, WEBHOOK_MESSAGES};

/// Rows of one table deleted per statement: row locks held a fraction of a second.
const BATCH: i64 = 1000;

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let retention = &state.config.retention;
    // Deliveries before messages: a message goes once no delivery is left of it.
    let kinds = [
        (GRANT_EVENTS, retention.retain_grant_events),
        (WEBHOOK_DELIVERIES, retention.retain_webhook_deliveries),
        (WEBHOOK_MESSAGES, retention.retain_webhook_deliveries),
        (SYNC_RUNS, retention.retain_runs),
        (RECONCILE_RUNS, retention.retain_runs),
    ];
    while !shutdown.is_cancelled() {
        for (kind, retain) in kinds {
            if !retain.is_zero() {
                prune(&state, &shutdown, kind, retain).await;
            }
        }
        pause(&shutdown, retention.prune_interval).await;
    }
}

/// Deletes batches of `kind` older than `retain` until a batch comes back short.
async fn prune(state: &AppState, shutdown: &CancellationToken, kind: Prune, retain: Duration) {
    while !shutdown.is_cancelled() {
        let pruned = match kind.batch(&state.worker_db, retain, BATCH).await {
            Ok(pruned) => pruned,
            Err(e) => {
                tracing::warn!(error = %e, table = kind.table, "cannot prune");
                return;
            }
        };
        let mut full = false;
        for (table, rows) in pruned.into_iter().filter(|(_, rows)| *rows > 0) {
            full |= table == kind.table && rows >= BATCH;
            metrics::counter!("jit_iam_pruned_rows_total", "table" => table.clone()).increment(rows as u64);
            tracing::info!(table, rows, "pruned rows older than the retention");
        }
        if !full {
            return;
        }
    }
}
