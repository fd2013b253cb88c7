//! Webhook endpoints of the approval portal: register, change, rotate the
//! secret, send a test, and read and retry deliveries.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{Postgres, Transaction};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::audit::Actor;
use super::error::{ApiError, ApiResult, ErrorCode};
use super::extract::{present, ApiPath, QueryParams, ValidJson};
use super::pagination::{page, PageParams, PageRequest};
use super::views::webhook::{Delivery, WebhookEndpoint, WebhookEndpointWithSecret};
use crate::app::AppState;
use crate::domain::audit::{AuditAction, SECRET};
use crate::domain::webhook::{DeliveryStatus, DisabledReason, EventType};
use crate::storage;
use crate::storage::webhooks::{EndpointRow, RetryOutcome};
use crate::webhooks::signing::WebhookSecret;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(test_webhook))
        .routes(routes!(list_webhook_deliveries))
        .routes(routes!(retry_webhook_delivery))
}

const MAX_DESCRIPTION: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed: `https`, to a public address (see `JIT_IAM_WEBHOOK_ALLOW_HTTP`
    /// and `JIT_IAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS`). At most 2,048 characters, of the form
    /// `https://<DNS name or IPv4 address>[:<port>][/<path>]` (the pattern; with
    /// `JIT_IAM_WEBHOOK_ALLOW_HTTP`, `http://` as well). Whether the host's addresses
    /// are public is checked by resolving it.
    #[schema(
        example = "https://portal.example.com/hooks/jit-iam",
        max_length = 2048,
        pattern = "^https://((([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)|(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])))(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[^\\u0000-\\u0020\\u007f#]*)?$"
    )]
    pub url: String,
    /// The event types to send; left out or null: all of them.
    #[schema(min_items = 1)]
    pub event_types: Option<Vec<EventType>>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// As at creation.
    #[schema(
        max_length = 2048,
        pattern = "^https://((([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)|(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])))(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[^\\u0000-\\u0020\\u007f#]*)?$"
    )]
    pub url: Option<String>,
    /// `null`: all event types.
    #[serde(default, deserialize_with = "present")]
    #[schema(min_items = 1)]
    pub event_types: Option<Option<Vec<EventType>>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 500)]
    pub description: Option<Option<String>>,
    /// `true` enables a disabled endpoint again (its waiting deliveries go out);
    /// `false` disables it (events meanwhile are not recorded for it).
    pub enabled: Option<bool>,
}

page!(WebhookEndpointPage of WebhookEndpoint);
page!(DeliveryPage of Delivery);

/// Checks a URL as a delivery would: scheme, address rules, DNS.
async fn checked_url(state: &AppState, url: &str) -> ApiResult<String> {
    state.webhook_sender.check_destination(url).await.map_err(|message| ApiError::validation("url", message))?;
    Ok(url.to_string())
}

/// A non-empty list without repeats; None stays None (all types).
fn checked_types(types: Option<Vec<EventType>>) -> ApiResult<Option<Vec<EventType>>> {
    let Some(types) = types else { return Ok(None) };
    if types.is_empty() {
        return Err(ApiError::validation(
            "event_types",
            "give at least one event type, or leave `event_types` out (or null) for all of them",
        ));
    }
    let mut unique = Vec::with_capacity(types.len());
    for event_type in types {
        if !unique.contains(&event_type) {
            unique.push(event_type);
        }
    }
    Ok(Some(unique))
}

fn checked_description(description: Option<String>) -> ApiResult<Option<String>> {
    match description {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => {
            Err(ApiError::validation("description", format!("a description has at most {MAX_DESCRIPTION} characters")))
        }
        other => Ok(other),
    }
}

fn with_secret(row: &EndpointRow) -> WebhookEndpointWithSecret {
    WebhookEndpointWithSecret {
        endpoint: WebhookEndpoint::from(row),
        secret: WebhookSecret(row.secret.clone()).encoded(),
    }
}

/// What the audit trail records of an endpoint (never its secret).
fn audit_view(endpoint: &WebhookEndpoint) -> Value {
    json!({
        "url": redacted_url(&endpoint.url),
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
    })
}

/// A URL as the audit trail shows it: a query string (where portals put
/// tokens) and credentials are secrets; what they are is never recorded.
fn redacted_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else { return SECRET.into() };
    let had_query = parsed.query().is_some();
    if !had_query && parsed.username().is_empty() && parsed.password().is_none() {
        return url.to_string();
    }
    parsed.set_query(None);
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    match had_query {
        true => format!("{parsed}?{SECRET}"),
        false => parsed.to_string(),
    }
}

/// The endpoint, locked for the rest of the transaction.
async fn lock(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> ApiResult<EndpointRow> {
    storage::webhooks::get_endpoint_for_update(&mut **tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint", id))
}

async fn find(state: &AppState, id: Uuid) -> ApiResult<EndpointRow> {
    storage::webhooks::get_endpoint(&state.db, id).await?.ok_or_else(|| ApiError::not_found("webhook endpoint", id))
}

/// Register a webhook endpoint.
///
/// The answer carries the signing secret (`whsec_...`), shown only here and
/// on rotation. Every event is POSTed with the Standard Webhooks headers
/// `webhook-id`, `webhook-timestamp` and `webhook-signature`.
#[utoipa::path(
    post, path = "/v1/webhooks", operation_id = "create_webhook", tag = "webhooks",
    request_body = CreateWebhook,
    responses((status = 201, description = "Registered; keep the secret", body = WebhookEndpointWithSecret)),
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    actor: Actor,
    ValidJson(input): ValidJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookEndpointWithSecret>)> {
    let event_types = checked_types(input.event_types)?;
    let description = checked_description(input.description)?;
    let url = checked_url(&state, &input.url).await?;
    let secret = WebhookSecret::generate();
    let mut tx = state.db.begin().await?;
    let row =
        storage::webhooks::insert_endpoint(&mut *tx, &url, description.as_deref(), event_types.as_deref(), &secret)
            .await?;
    let record = actor.record(AuditAction::WebhookCreated, row.endpoint_id).changes(
        &Value::Null,
        &audit_view(&WebhookEndpoint::from(&row)),
        &[],
    );
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(with_secret(&row))))
}

/// List webhook endpoints, oldest first.
#[utoipa::path(
    get, path = "/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    params(PageParams),
    responses((status = 200, body = WebhookEndpointPage)),
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> ApiResult<Json<WebhookEndpointPage>> {
    let page = PageRequest::from_query(&mut params)?;
    params.finish()?;
    let rows = storage::webhooks::list_endpoints(&state.db, page.after_id(), page.fetch_limit()).await?;
    let (rows, next_cursor) = page.finish(rows, |row| row.endpoint_id);
    Ok(Json(WebhookEndpointPage { items: rows.iter().map(WebhookEndpoint::from).collect(), next_cursor }))
}

/// One webhook endpoint (without its secret).
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    responses((status = 200, body = WebhookEndpoint)),
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WebhookEndpoint>> {
    Ok(Json(WebhookEndpoint::from(&find(&state, id).await?)))
}

/// Change a webhook endpoint: `url`, `event_types`, `description`, `enabled`.
#[utoipa::path(
    patch, path = "/v1/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    request_body = UpdateWebhook,
    responses((status = 200, body = WebhookEndpoint)),
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
    ValidJson(patch): ValidJson<UpdateWebhook>,
) -> ApiResult<Json<WebhookEndpoint>> {
    let event_types = patch.event_types.map(checked_types).transpose()?;
    let description = patch.description.map(checked_description).transpose()?;
    // Resolved before the transaction: no row lock is held across DNS.
    let url = match &patch.url {
        Some(url) => Some(checked_url(&state, url).await?),
        None => None,
    };
    let mut tx = state.db.begin().await?;
    let mut row = lock(&mut tx, id).await?;
    let before = WebhookEndpoint::from(&row);
    if let Some(url) = url {
        row.url = url;
    }
    if let Some(types) = event_types {
        row.event_types = types.map(|types| types.iter().map(|t| t.as_str().to_string()).collect());
    }
    if let Some(description) = description {
        row.description = description;
    }
    match patch.enabled {
        Some(true) if !row.enabled => {
            row.enabled = true;
            row.disabled_reason = None;
            row.failing_since = None;
        }
        Some(false) if row.enabled => {
            row.enabled = false;
            row.disabled_reason = Some(DisabledReason::Manual.as_str().to_string());
        }
        _ => {}
    }
    let updated = storage::webhooks::update_endpoint(&mut *tx, &row).await?;
    let record = actor.record(AuditAction::WebhookUpdated, id).changes(
        &audit_view(&before),
        &audit_view(&WebhookEndpoint::from(&updated)),
        &[],
    );
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    state.wake.webhooks.notify_one();
    Ok(Json(WebhookEndpoint::from(&updated)))
}

/// Delete a webhook endpoint, with its deliveries.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    responses((status = 204, description = "Deleted")),
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let row = lock(&mut tx, id).await?;
    storage::webhooks::delete_endpoint(&mut *tx, id).await?;
    let record = actor.record(AuditAction::WebhookDeleted, id).changes(
        &audit_view(&WebhookEndpoint::from(&row)),
        &Value::Null,
        &[],
    );
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the signing secret.
///
/// The new secret is answered (only now). For `JIT_IAM_WEBHOOK_SECRET_OVERLAP`
/// (24 h by default) deliveries carry signatures made with both secrets, so
/// the receiver can switch without losing an event.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate-secret", operation_id = "rotate_webhook_secret", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    responses((status = 200, description = "Rotated; keep the new secret", body = WebhookEndpointWithSecret)),
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WebhookEndpointWithSecret>> {
    let overlap = state.config.webhooks.webhook_secret_overlap;
    let mut tx = state.db.begin().await?;
    let row = storage::webhooks::rotate_secret(&mut *tx, id, &WebhookSecret::generate(), overlap)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint", id))?;
    let record = actor.record(AuditAction::WebhookSecretRotated, id).change("secret", SECRET, SECRET).change(
        "previous_secret_expires_at",
        Value::Null,
        row.previous_secret_expires_at,
    );
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    Ok(Json(with_secret(&row)))
}

/// Send a `webhook.test` event to this endpoint, whatever its event types.
///
/// Answers 202 with the delivery; its attempts show at
/// `GET /v1/webhooks/{id}/deliveries`.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/test", operation_id = "test_webhook", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    responses((status = 202, description = "Queued", body = Delivery)),
)]
pub async fn test_webhook(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let mut tx = state.db.begin().await?;
    let row = lock(&mut tx, id).await?;
    if !row.enabled {
        return Err(ApiError::conflict(
            ErrorCode::InvalidState,
            "the endpoint is disabled; enable it (PATCH `enabled: true`) to send it a test",
        ));
    }
    let data = json!({"endpoint_id": id, "message": "a test event from jit-iam", "requested_by": actor.caller.name});
    let delivery_id = storage::webhooks::enqueue_test(&mut *tx, id, &data).await?;
    let record = actor.record(AuditAction::WebhookTestSent, id).change("delivery_id", Value::Null, delivery_id);
    storage::audit::record(&mut *tx, &record).await?;
    let delivery = storage::webhooks::get_delivery(&mut *tx, id, delivery_id).await?;
    tx.commit().await?;
    state.wake.webhooks.notify_one();
    delivery
        .map(|d| (StatusCode::ACCEPTED, Json(d.into())))
        .ok_or_else(|| ApiError::internal("the test delivery vanished"))
}

/// List an endpoint's deliveries, newest first, each with every attempt.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks",
    params(
        ("id" = Uuid, Path, description = "Webhook endpoint id"),
        ("status" = Option<DeliveryStatus>, Query, description = "Only deliveries in this status"),
        PageParams,
    ),
    responses((status = 200, body = DeliveryPage)),
)]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    mut params: QueryParams,
) -> ApiResult<Json<DeliveryPage>> {
    let page = PageRequest::from_query(&mut params)?;
    let status =
        match params.one("status")? {
            None => None,
            Some(raw) => Some(DeliveryStatus::parse(&raw).ok_or_else(|| {
                ApiError::invalid_parameter("status", "`status` must be pending, succeeded or failed")
            })?),
        };
    params.finish()?;
    find(&state, id).await?;
    let rows = storage::webhooks::list_deliveries(&state.db, id, status, page.after_id(), page.fetch_limit()).await?;
    let (items, next_cursor) = page.finish(rows, |delivery| delivery.id);
    Ok(Json(DeliveryPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}

/// Attempt a delivery again now, whatever its status (a failed one gets one
/// more attempt; a succeeded one is sent again, with the same `webhook-id`).
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", operation_id = "retry_webhook_delivery", tag = "webhooks",
    params(
        ("id" = Uuid, Path, description = "Webhook endpoint id"),
        ("delivery_id" = Uuid, Path, description = "Delivery id"),
    ),
    responses((status = 202, description = "Queued", body = Delivery)),
)]
pub async fn retry_webhook_delivery(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath((id, delivery_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let mut tx = state.db.begin().await?;
    match storage::webhooks::retry_delivery(&mut *tx, id, delivery_id).await? {
        RetryOutcome::NotFound => return Err(ApiError::not_found("delivery", delivery_id)),
        RetryOutcome::InFlight => {
            return Err(ApiError::conflict(ErrorCode::InvalidState, "an attempt is under way; retry after it"))
        }
        RetryOutcome::Queued => {}
    }
    let record = actor.record(AuditAction::WebhookDeliveryRetried, id).change("delivery_id", Value::Null, delivery_id);
    storage::audit::record(&mut *tx, &record).await?;
    let delivery = storage::webhooks::get_delivery(&mut *tx, id, delivery_id).await?;
    tx.commit().await?;
    state.wake.webhooks.notify_one();
    delivery.map(|d| (StatusCode::ACCEPTED, Json(d.into()))).ok_or_else(|| ApiError::internal("the delivery vanished"))
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn the_trail_never_holds_a_urls_query_or_credentials() {
        assert_eq!(redacted_url("https://portal.example.com/hooks"), "https://portal.example.com/hooks");
        assert_eq!(
            redacted_url("https://portal.example.com/hooks?token=s3cr3t&x=1"),
            "https://portal.example.com/hooks?(secret)"
        );
        assert_eq!(redacted_url("https://user:pw@portal.example.com/h"), "https://portal.example.com/h");
    }
}
