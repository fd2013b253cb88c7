//! Liveness and readiness, open to load balancers and orchestrators.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ApiResult, ErrorBody};
use crate::app::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: String,
    /// This installation (its database): every policy jit-iam creates carries
    /// it in the tag `jit-iam:installation-id`, and only this installation
    /// deletes such a policy as an orphan.
    pub installation_id: Uuid,
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
        (status = 200, body = Readiness),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Readiness>> {
    let ping = sqlx::query("select 1").execute(&state.db);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Ok(Json(Readiness { status: "ready".into(), installation_id: state.installation_id })),
        _ => Err(ApiError::database_unavailable()),
    }
}
