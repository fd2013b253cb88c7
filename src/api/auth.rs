//! Bearer-token authentication of every `/v1` route.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::config::ApiTokens;
use crate::error::ApiError;

/// Who called: the name of the configured token, for logs and audit events.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
}

impl ApiTokens {
    /// The caller presenting `token`. Every configured token is compared, in
    /// constant time, so timing reveals neither which nor how much matched.
    pub fn identify(&self, token: &str) -> Option<Caller> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for candidate in &self.0 {
            if bool::from(candidate.sha256.ct_eq(&presented)) {
                found = Some(Caller { name: candidate.name.clone() });
            }
        }
        found
    }
}

pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(ApiError::unauthorized)?;
    let caller = state.tokens.identify(token).ok_or_else(ApiError::unauthorized)?;
    tracing::Span::current().record("caller", caller.name.as_str());
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}
