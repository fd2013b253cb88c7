//! The audit trail: who acts (`Actor`), and `GET /v1/audit-events`.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::QueryParams;
use super::pagination::{page, PageParams, PageRequest};
use super::views::audit::AuditEvent;
use super::REQUEST_ID;
use crate::app::AppState;
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::caller::Caller;
use crate::grants::Requester;
use crate::storage;
use crate::storage::audit::AuditFilter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_events))
}

/// Who makes a change: the caller and the request's id, for the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    pub caller: Caller,
    pub request_id: Option<String>,
}

impl Actor {
    /// A record of `action` on `target_id` by this actor; add what changed.
    pub fn record(&self, action: AuditAction, target_id: Uuid) -> AuditRecord {
        self.requester().record(action, target_id)
    }

    /// This actor, as the grants' use cases know who asks.
    pub fn requester(&self) -> Requester<'_> {
        Requester { caller: &self.caller, request_id: self.request_id.as_deref() }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("an audited route is not behind the token check"))?;
        let request_id = parts.headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok(Actor { caller, request_id })
    }
}

page!(AuditEventPage of AuditEvent);

/// List the audit trail, newest first.
///
/// Every change made through the API, recorded in the transaction that made
/// it: who (token name and role), which request, what, and the before and
/// after of each changed field (secrets show as `"(secret)"`). Nothing changes
/// or deletes these records.
#[utoipa::path(
    get, path = "/v1/audit-events", operation_id = "list_audit_events", tag = "audit",
    params(
        ("action" = Option<AuditAction>, Query, description = "Only this action"),
        ("actor" = Option<String>, Query, description = "Only changes by this token name"),
        ("target_id" = Option<Uuid>, Query, description = "Only changes to this integration or grant"),
        ("since" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Only changes at or after this time (RFC 3339)"),
        PageParams,
    ),
    responses(
        (status = 200, body = AuditEventPage),
    ),
)]
pub async fn list_audit_events(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> ApiResult<Json<AuditEventPage>> {
    let page = PageRequest::from_query(&mut params)?;
    let actions = AuditAction::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ");
    let filter = AuditFilter {
        action: params
            .one("action")?
            .map(|a| {
                AuditAction::parse(&a)
                    .ok_or_else(|| ApiError::invalid_parameter("action", format!("`action` must be one of {actions}")))
            })
            .transpose()?,
        actor: params.one("actor")?,
        target_id: params.parse("target_id", "a UUID")?,
        since: params.parse("since", "an RFC 3339 time, e.g. 2026-12-01T10:00:00Z")?,
    };
    params.finish()?;
    let rows = storage::audit::list(&state.db, &filter, page.after_id(), page.fetch_limit()).await?;
    let (items, next_cursor) = page.finish(rows, |event| event.id);
    Ok(Json(AuditEventPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}
