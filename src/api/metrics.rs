//! `/metrics`: Prometheus metrics, open like the health routes unless
//! `JIT_IAM_METRICS_TOKEN` is set.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::auth::bearer_token;
use super::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::app::AppState;

/// Prometheus metrics (text exposition format).
///
/// Counters and histograms of this process, and gauges of the shared database
/// (live grants by status, work waiting), refreshed every `JIT_IAM_METRICS_REFRESH`
/// by a background task: a scrape never queries the database. Open unless
/// `JIT_IAM_METRICS_TOKEN` is set; then it needs `Authorization: Bearer <that token>`.
#[utoipa::path(
    get, path = "/metrics", operation_id = "get_metrics", tag = "health",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "`JIT_IAM_METRICS_TOKEN` is set and the request does not carry it", body = ErrorBody),
    )
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<impl IntoResponse> {
    if let Some(expected) = &state.config.metrics.metrics_token {
        if !bearer_token(&headers).is_some_and(|token| expected.matches(token)) {
            let message = "send the metrics token (JIT_IAM_METRICS_TOKEN) as `Authorization: Bearer <token>`";
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message));
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()))
}
