//! `/metrics`: Prometheus metrics, open like the health routes.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::domain::grant::GrantStatus;

/// Prometheus metrics (text exposition format).
///
/// Counters and histograms of this process, and gauges of the shared database
/// (grants by status, work waiting), read at each scrape.
#[utoipa::path(
    get, path = "/metrics", operation_id = "get_metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Without the database the process's own metrics are still worth serving.
    if let Ok(gauges) = crate::storage::grants::gauges(&state.db).await {
        for status in GrantStatus::ALL {
            let count = gauges.by_status.iter().find(|(s, _)| s == status.as_str()).map_or(0, |(_, n)| *n);
            metrics::gauge!("jit_iam_grants", "status" => status.as_str()).set(count as f64);
        }
        metrics::gauge!("jit_iam_worker_queue_depth", "queue" => "grants").set(gauges.grants_due as f64);
        metrics::gauge!("jit_iam_worker_queue_depth", "queue" => "syncs").set(gauges.syncs_queued as f64);
        metrics::gauge!("jit_iam_grants_revoke_failing").set(gauges.revoke_failing as f64);
    }
    if let Ok((due, retrying)) = crate::storage::webhooks::queue_depth(&state.db).await {
        metrics::gauge!("jit_iam_webhook_queue_depth", "state" => "due").set(due as f64);
        metrics::gauge!("jit_iam_webhook_queue_depth", "state" => "retrying").set(retrying as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
