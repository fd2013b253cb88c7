//! Reconciliation runs of an integration: ask for one, list them, read one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::audit::Actor;
use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, OptionalJson, QueryParams};
use super::integrations::{ensure_active, find};
use super::pagination::{page, PageParams, PageRequest};
use super::views::reconcile::ReconcileRun;
use crate::app::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::reconcile::ReconcileTrigger;
use crate::storage;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_reconcile))
        .routes(routes!(list_reconciliations))
        .routes(routes!(get_reconciliation))
}

/// Options of a run asked for (the body may be left out).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartReconcile {
    /// Put drift back (default: `JIT_IAM_RECONCILE_REPAIR`, true unless set); false only reports it.
    pub repair: Option<bool>,
    /// Delete orphaned policies now rather than after `JIT_IAM_ORPHAN_GRACE`.
    #[serde(default)]
    pub delete_orphans: bool,
}

page!(ReconcileRunPage of ReconcileRun);

/// Reconcile the integration's grants with IAM now.
///
/// Answers 202 with the queued run, or with the run already queued or running
/// (whose options then stand): one integration never has two at once, across
/// all replicas.
#[utoipa::path(
    post, path = "/v1/integrations/{id}/reconcile", operation_id = "start_reconciliation", tag = "reconciliation",
    params(("id" = Uuid, Path, description = "Integration id")),
    request_body = Option<StartReconcile>,
    responses(
        (status = 202, description = "Queued (or already queued or running)", body = ReconcileRun),
    ),
)]
pub async fn start_reconcile(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
    OptionalJson(input): OptionalJson<StartReconcile>,
) -> ApiResult<(StatusCode, Json<ReconcileRun>)> {
    let integration = find(&state, id).await?;
    ensure_active(&integration)?;
    let repair = input.repair.unwrap_or(state.config.reconcile.reconcile_repair);
    let mut tx = state.db.begin().await?;
    let (run, created) =
        storage::reconciles::enqueue(&mut tx, id, ReconcileTrigger::Manual, repair, input.delete_orphans).await?;
    let record = actor
        .record(AuditAction::ReconcileRequested, id)
        .change("run_id", Value::Null, run.id)
        .change("repair", Value::Null, run.repair)
        .change("delete_orphans", Value::Null, run.delete_orphans)
        .change("queued", Value::Null, created);
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    state.wake.reconciles.notify_one();
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

/// List the reconciliation runs of an integration, newest first, with their findings.
#[utoipa::path(
    get, path = "/v1/integrations/{id}/reconciliations", operation_id = "list_reconciliations", tag = "reconciliation",
    params(
        ("id" = Uuid, Path, description = "Integration id"),
        PageParams,
    ),
    responses(
        (status = 200, body = ReconcileRunPage),
    ),
)]
pub async fn list_reconciliations(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    mut params: QueryParams,
) -> ApiResult<Json<ReconcileRunPage>> {
    let page = PageRequest::from_query(&mut params)?;
    params.finish()?;
    find(&state, id).await?;
    let rows = storage::reconciles::QUEUE.list(&state.db, id, page.after_id(), page.fetch_limit()).await?;
    let (items, next_cursor) = page.finish(rows, |run| run.id);
    Ok(Json(ReconcileRunPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}

/// One reconciliation run, with its findings and what was done about each.
#[utoipa::path(
    get, path = "/v1/integrations/{id}/reconciliations/{run_id}", operation_id = "get_reconciliation", tag = "reconciliation",
    params(
        ("id" = Uuid, Path, description = "Integration id"),
        ("run_id" = Uuid, Path, description = "Run id"),
    ),
    responses(
        (status = 200, body = ReconcileRun),
    ),
)]
pub async fn get_reconciliation(
    State(state): State<AppState>,
    ApiPath((id, run_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<ReconcileRun>> {
    let run = storage::reconciles::QUEUE.get(&state.db, id, run_id).await?;
    run.map(|run| Json(run.into())).ok_or_else(|| ApiError::not_found("reconciliation run", run_id))
}
