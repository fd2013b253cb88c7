//! The HTTP API: routes, middleware, and the OpenAPI document generated from them.

use std::time::Duration;

use axum::http::{header, HeaderName, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::server::ServerBuilder;
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, Ref, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use error::{ApiError, ErrorBody};
use views::webhook::GrantEventData;

pub mod audit;
pub mod auth;
mod document;
pub mod error;
pub mod extract;
pub mod grants;
pub mod health;
pub mod integrations;
mod links;
pub mod metrics;
pub mod openapi30;
pub mod pagination;
pub mod reconcile;
mod reference;
pub mod resources;
pub mod views;
pub mod webhooks;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jit-iam",
        description = "Just-in-time access for AWS IAM. Every `/v1` route needs `Authorization: Bearer <token>`. \
                       Errors always have the shape `{\"error\": {\"code\", \"message\", \"field\"?, \"aws\"?}}`."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, GrantEventData)),
    tags(
        (name = "integrations", description = "AWS accounts jit-iam reaches through a role"),
        (name = "inventory", description = "What the accounts hold, synced from AWS and browsed from Postgres"),
        (name = "grants", description = "Approved, time-bound access: applied in IAM, revoked at expiry"),
        (name = "reconciliation", description = "Drift between grants and IAM: found, repaired, reported"),
        (name = "audit", description = "Every change made through the API: who, when, what"),
        (name = "webhooks", description = "Events POSTed to the approval portal (Standard Webhooks 1.0). \
            Body: `{\"type\", \"timestamp\", \"data\"}`; for `grant.*` events `data` is `GrantEventData`, \
            the grant as `GET /v1/grants/{id}` returned it at the event, plus `event_sequence`. \
            Headers: `webhook-id` (the same on every retry), `webhook-timestamp`, `webhook-signature` \
            (`v1,<base64 HMAC-SHA256>`, space-separated while a rotated secret still signs). \
            A 2xx answer is success; 410 disables the endpoint; anything else is retried."),
        (name = "health", description = "Liveness, readiness and metrics (no API token; `/metrics` needs `JIT_IAM_METRICS_TOKEN` when it is set)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        openapi.components.get_or_insert_with(Default::default).add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The `/v1` routes (behind the token) and the open routes, with the document describing both.
fn documented_routes() -> (Router<AppState>, Router<AppState>, serde_json::Value) {
    let (v1, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(integrations::router())
        .merge(resources::router())
        .merge(grants::router())
        .merge(reconcile::router())
        .merge(audit::router())
        .merge(webhooks::router())
        .split_for_parts();
    let (open, open_doc) = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .split_for_parts();
    doc.merge(open_doc);
    document_v1_defaults(&mut doc);
    let mut doc = document::apply_rules(
        &doc,
        &[("SubmitGrant", grants::SubmitGrant::EXACTLY_ONE_OF), ("ExtendGrant", grants::ExtendGrant::EXACTLY_ONE_OF)],
    );
    links::add(&mut doc);
    (v1, open, doc)
}

/// What every `/v1` operation has in common, written once instead of on each
/// route: the bearer token, the roles allowed to call it, and error answers of the one `ErrorBody` shape
/// (a route's own description of its 4XX or 5XX takes precedence).
fn document_v1_defaults(doc: &mut OpenApiDoc) {
    let error = |description: &str| {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
    };
    // Every operation needs the token unless it says otherwise (the open routes do).
    doc.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    doc.servers = Some(vec![ServerBuilder::new()
        .url("http://127.0.0.1:8080")
        .description(Some("JIT_IAM_LISTEN's default; put your deployment's address here"))
        .build()]);
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
        let methods = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
        for (method, operation) in methods.iter().zip(operations) {
            let Some(operation) = operation else { continue };
            describe_responses(operation);
            if !path.starts_with("/v1/") {
                // Open, unless the route documents an optional token of its own (`/metrics`).
                operation.security.get_or_insert_with(Vec::new);
                continue;
            }
            let roles = format!("Roles: {}.", auth::describe_roles(auth::allowed_roles(method, path)));
            operation.description = Some(match operation.description.take() {
                Some(description) => format!("{description}\n\n{roles}"),
                None => roles,
            });
            operation.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
            let responses = &mut operation.responses.responses;
            responses
                .entry("4XX".into())
                .or_insert_with(|| error("Refused: `error.code` says why, `error.field` names the input at fault"));
            responses.entry("5XX".into()).or_insert_with(|| error("jit-iam or a service it needs failed; retry later"));
        }
    }
}

/// Gives each response without a description one named for its status.
fn describe_responses(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if response.description.is_empty() {
            let reason = status.parse::<u16>().ok().and_then(|s| StatusCode::from_u16(s).ok());
            response.description = reason.and_then(|s| s.canonical_reason()).unwrap_or("Success").to_string();
        }
    }
}

/// The OpenAPI document, as served at `/openapi.json` and committed in `openapi/`.
pub fn openapi() -> serde_json::Value {
    documented_routes().2
}

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let (v1, open, doc) = documented_routes();
    let v1 = v1.route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    let spec = doc.to_string();
    // Rendered once: the document does not change while the process runs.
    let reference_page = axum::body::Bytes::from(reference::page(&doc));
    let config = &state.config;
    let max_body = config.max_body_bytes as usize;
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id =
                        request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(),
                                        request_id, caller = tracing::field::Empty)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("a handler panicked").into_response()))
        .layer(middleware::map_response(json_errors))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.request_timeout))
        .layer(middleware::from_fn(move |request, next| refuse_announced_oversize(max_body, request, next)))
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(10)))
        .layer(axum::extract::DefaultBodyLimit::max(max_body));
    Router::new()
        .merge(v1)
        .merge(open)
        .route("/openapi.json", get(move || async move { ([(header::CONTENT_TYPE, "application/json")], spec) }))
        .route("/docs", get(move || std::future::ready(reference::page_response(reference_page.clone()))))
        .route(reference::STYLESHEET_PATH, get(|| async { reference::stylesheet_response() }))
        .fallback(|| async { ApiError::from_status(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async { ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED) })
        .layer(middleware)
        .with_state(state)
}

/// A body announced far larger than the limit is refused at once, without
/// waiting for it (DefaultBodyLimit only counts bytes as they arrive). Bodies
/// a little over the limit are still read up to it and refused then: answering
/// before the client has sent its body makes most HTTP clients report a broken
/// pipe instead of the 413.
async fn refuse_announced_oversize(max: usize, request: axum::extract::Request, next: middleware::Next) -> Response {
    let announced =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > 4 * max as u64) {
        return ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).into_response();
    }
    next.run(request).await
}

/// Gives bare error statuses from outside the handlers (timeouts, body limits) the API's JSON shape.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        return ApiError::from_status(status).into_response();
    }
    response
}
