//! Bearer-token authentication and role authorization of every `/v1` route,
//! and the optional token of `/metrics`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::app::AppState;
use crate::config::{ApiTokens, MetricsToken};
use crate::domain::caller::{Caller, Role};

impl ApiTokens {
    /// The caller presenting `token`. Every configured token is compared, in
    /// constant time, so timing reveals neither which nor how much matched.
    pub fn identify(&self, token: &str) -> Option<Caller> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for candidate in &self.0 {
            if bool::from(candidate.sha256.ct_eq(&presented)) {
                found = Some(Caller { name: candidate.name.clone(), role: candidate.role });
            }
        }
        found
    }
}

impl MetricsToken {
    /// Whether `token` is the `/metrics` token, compared in constant time.
    pub fn matches(&self, token: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.0.ct_eq(&presented).into()
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

const ANY_ROLE: &[Role] = &[Role::Admin, Role::Portal, Role::Auditor];
const ADMIN_OR_PORTAL: &[Role] = &[Role::Admin, Role::Portal];
const ADMIN_OR_AUDITOR: &[Role] = &[Role::Admin, Role::Auditor];
const ADMIN: &[Role] = &[Role::Admin];

/// The roles allowed to call each `/v1` operation: the one table the
/// middleware enforces, the OpenAPI document states and docs/tour.md repeats.
/// An operation missing here is admin-only (and a test fails).
pub fn allowed_roles(method: &Method, path: &str) -> &'static [Role] {
    // axum answers HEAD with the GET route.
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    match (method, path) {
        ("GET", "/v1/resources" | "/v1/resources/{id}") => ANY_ROLE,
        ("GET", "/v1/integrations" | "/v1/integrations/{id}" | "/v1/integrations/{id}/accounts") => ANY_ROLE,
        ("GET", "/v1/integrations/{id}/syncs" | "/v1/integrations/{id}/syncs/{sync_id}") => ADMIN_OR_AUDITOR,
        ("GET", "/v1/integrations/{id}/reconciliations" | "/v1/integrations/{id}/reconciliations/{run_id}") => {
            ADMIN_OR_AUDITOR
        }
        // The setup documents carry the external id.
        ("GET", "/v1/integrations/{id}/setup") => ADMIN,
        ("GET", "/v1/grants" | "/v1/grants/{id}" | "/v1/grants/{id}/events") => ANY_ROLE,
        ("GET", "/v1/audit-events") => ADMIN_OR_AUDITOR,
        ("POST", "/v1/grants" | "/v1/grants/preview" | "/v1/grants/{id}/revoke" | "/v1/grants/{id}/extend") => {
            ADMIN_OR_PORTAL
        }
        _ => ADMIN,
    }
}

/// "admin", "admin or portal", "admin, portal or auditor".
pub fn describe_roles(roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer_token(request.headers()).ok_or_else(ApiError::unauthorized)?;
    let caller = state.tokens.identify(token).ok_or_else(ApiError::unauthorized)?;
    tracing::Span::current().record("caller", caller.name.as_str());
    let path = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or_default();
    let allowed = allowed_roles(request.method(), path);
    if !allowed.contains(&caller.role) {
        return Err(ApiError::forbidden(format!(
            "the token `{}` has the role {}; this operation needs {}",
            caller.name,
            caller.role.as_str(),
            describe_roles(allowed)
        )));
    }
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}
