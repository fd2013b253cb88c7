//! The gauges read from Postgres, refreshed by one task on the worker's pool:
//! a scrape only renders memory, so its cost depends neither on the history
//! in the database nor on how often `/metrics` is called.

use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::domain::grant::GrantStatus;

/// The statuses `jit_iam_grants` counts: finished grants only grow with
/// history (`jit_iam_grant_transitions_total` counts them instead).
const LIVE: [GrantStatus; 3] = [GrantStatus::Pending, GrantStatus::Active, GrantStatus::Revoking];

/// Refreshes the gauges every `JIT_IAM_METRICS_REFRESH` until shutdown.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        super::pause(&shutdown, state.config.metrics.metrics_refresh).await;
        refresh(&state).await;
    }
}

/// Reads the gauges once; without the database they keep their last values
/// (`jit_iam_gauges_refreshed_timestamp_seconds` tells how old they are).
pub async fn refresh(state: &AppState) {
    let grants = match crate::storage::grants::gauges(&state.worker_db).await {
        Ok(grants) => grants,
        Err(e) => return tracing::warn!(error = %e, "cannot refresh the metrics gauges"),
    };
    let webhooks = match crate::storage::webhooks::queue_depth(&state.worker_db).await {
        Ok(webhooks) => webhooks,
        Err(e) => return tracing::warn!(error = %e, "cannot refresh the metrics gauges"),
    };
    for status in LIVE {
        let count = grants.by_status.iter().find(|(s, _)| s == status.as_str()).map_or(0, |(_, n)| *n);
        metrics::gauge!("jit_iam_grants", "status" => status.as_str()).set(count as f64);
    }
    metrics::gauge!("jit_iam_worker_queue_depth", "queue" => "grants").set(grants.grants_due as f64);
    metrics::gauge!("jit_iam_worker_queue_depth", "queue" => "syncs").set(grants.syncs_queued as f64);
    metrics::gauge!("jit_iam_grants_revoke_failing").set(grants.revoke_failing as f64);
    let (due, retrying) = webhooks;
    metrics::gauge!("jit_iam_webhook_queue_depth", "state" => "due").set(due as f64);
    metrics::gauge!("jit_iam_webhook_queue_depth", "state" => "retrying").set(retrying as f64);
    metrics::gauge!("jit_iam_gauges_refreshed_timestamp_seconds")
        .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
}
