//! Liveness and readiness, open to load balancers and orchestrators.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", operation_id = "get_health", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// Readiness: the database answers.
#[utoipa::path(
    get, path = "/readyz", operation_id = "get_readiness", tag = "health",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    let ping = sqlx::query("select 1").execute(&state.db);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Ok(Json(Health { status: "ready".into() })),
        _ => Err(ApiError::database_unavailable()),
    }
}
