//! The one error type every handler returns, and the one JSON shape every error
//! response has: `{"error": {"code", "message", "field"?, "aws"?}}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::views;
use crate::aws::check::AccessCheck;
use crate::aws::error::{AwsError, AwsErrorKind};
use crate::domain::{AwsErrorBody, FieldError};

/// Stable, documented error codes. Clients switch on these, never on messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON.
    MalformedJson,
    /// A query or path parameter is missing, unknown or malformed.
    InvalidParameter,
    /// The body is JSON but a field is missing, unknown, of the wrong type or breaks a rule.
    ValidationFailed,
    /// No bearer token, or one that is not configured.
    Unauthorized,
    /// The token is valid but its role may not do this (the message names the role needed).
    Forbidden,
    NotFound,
    MethodNotAllowed,
    /// Another integration has this name.
    NameTaken,
    /// The same `request_id` was submitted with a different body.
    RequestIdConflict,
    /// The object is in a state that does not allow this operation.
    InvalidState,
    /// The integration still has live grants.
    IntegrationHasLiveGrants,
    /// A new connection (role, external id, member role) failed its check while
    /// grants are live; `checks` has the report and nothing was stored.
    ConnectionCheckFailed,
    /// An IAM quota would be exceeded.
    QuotaExceeded,
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// AWS refused jit-iam (access denied, wrong external id).
    AwsAccessDenied,
    /// AWS kept throttling jit-iam past its retries.
    AwsThrottled,
    /// AWS could not be reached or failed.
    AwsUnavailable,
    /// AWS rejected the call for another reason (see `aws.code`).
    AwsError,
    /// Postgres cannot be reached; retry later.
    DatabaseUnavailable,
    Internal,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "validation_failed", "message": "an AWS account id is exactly 12 digits", "field": "root_account.account_id"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// The body field or parameter at fault, as a path such as `root_account.account_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// What AWS answered, when the error comes from AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub aws: Option<views::aws_error::AwsErrorBody>,
    /// The connection checks that failed a connection change (`connection_check_failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub checks: Option<Vec<views::check::AccessCheck>>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub aws: Option<AwsErrorBody>,
    pub checks: Option<Vec<AccessCheck>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, aws: None, checks: None }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationFailed, message).with_field(field)
    }

    pub fn invalid_parameter(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidParameter, message).with_field(name)
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no {what} with id {id}"))
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send a configured API token as `Authorization: Bearer <token>`",
        )
    }

    /// A connection change refused because the new connection failed `checks`.
    pub fn connection_check_failed(checks: Vec<AccessCheck>) -> Self {
        let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.account_id.as_str()).collect();
        let message = format!(
            "the new connection failed its check in account {} while grants are live; nothing was changed",
            failed.join(", ")
        );
        Self { checks: Some(checks), ..Self::conflict(ErrorCode::ConnectionCheckFailed, message) }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        // Logged with its detail; the client only learns that it happened.
        tracing::error!(error = %error, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error; see the service logs")
    }

    pub fn database_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable; retry shortly",
        )
    }

    /// The JSON shape for a bare status produced outside the handlers
    /// (routing, timeouts, body limits, panics).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "method not allowed on this route"),
            StatusCode::REQUEST_TIMEOUT => (ErrorCode::RequestTimeout, "the request took too long"),
            StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "the request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (ErrorCode::UnsupportedMediaType, "send the body as application/json")
            }
            StatusCode::UNAUTHORIZED => return Self::unauthorized(),
            StatusCode::SERVICE_UNAVAILABLE => return Self::database_unavailable(),
            s if s.is_client_error() => (ErrorCode::InvalidParameter, "the request is not valid"),
            _ => (ErrorCode::Internal, "internal error; see the service logs"),
        };
        Self::new(status, code, message)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
                field: self.field.clone(),
                aws: self.aws.clone().map(Into::into),
                checks: self.checks.clone().map(|checks| checks.into_iter().map(Into::into).collect()),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::validation(e.field, e.message)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if crate::storage::is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable");
            Self::database_unavailable()
        } else {
            Self::internal(e)
        }
    }
}

impl From<AwsError> for ApiError {
    fn from(e: AwsError) -> Self {
        let code = match e.kind {
            AwsErrorKind::AccessDenied => ErrorCode::AwsAccessDenied,
            AwsErrorKind::Throttled => ErrorCode::AwsThrottled,
            AwsErrorKind::Transient => ErrorCode::AwsUnavailable,
            _ => ErrorCode::AwsError,
        };
        Self { aws: Some(e.body()), ..Self::new(StatusCode::BAD_GATEWAY, code, e.to_string()) }
    }
}
