//! AWS errors, classified once so that every caller decides the same way
//! whether to retry, to fail, or to treat an error as "already done".

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;
use serde::{Deserialize, Serialize};

use crate::domain::AwsErrorBody;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsErrorKind {
    /// The caller lacks a permission, the trust policy or external id does not match.
    AccessDenied,
    NotFound,
    AlreadyExists,
    /// A quota (e.g. managed policies per user) is exhausted.
    LimitExceeded,
    MalformedPolicy,
    /// The entity is in use (e.g. a policy that is still attached).
    DeleteConflict,
    /// AWS asked jit-iam to slow down.
    Throttled,
    /// 5xx, timeouts, connection failures: worth retrying.
    Transient,
    /// Any other refusal: retrying will not help.
    Rejected,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    pub kind: AwsErrorKind,
    /// `service:Operation`: also the IAM action the call needs.
    pub operation: String,
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    pub http_status: Option<u16>,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AwsErrorKind::AccessDenied if self.operation == "sts:AssumeRole" => write!(
                f,
                "AWS denied sts:AssumeRole (check the role's trust policy and external id, and that jit-iam may call sts:AssumeRole)"
            )?,
            AwsErrorKind::AccessDenied => {
                write!(f, "AWS denied {} (needs {})", self.operation, super::permissions::permission_for(&self.operation))?
            }
            _ => write!(f, "{} failed", self.operation)?,
        }
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl StdError for AwsError {}

impl AwsError {
    pub fn new(kind: AwsErrorKind, operation: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            operation: operation.into(),
            code: None,
            message: message.into(),
            request_id: None,
            http_status: None,
        }
    }

    /// Classifies an SDK error of the call `operation` (`iam:CreatePolicy`).
    pub fn from_sdk<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        match err {
            SdkError::ServiceError(context) => {
                let raw = context.raw();
                let status = raw.status().as_u16();
                let (code, message) = match context.err().code() {
                    Some(code) => (Some(code.to_string()), context.err().message().unwrap_or_default().to_string()),
                    // Some endpoints answer errors the SDK cannot decode: read the body.
                    None => error_from_body(raw.body().bytes().unwrap_or_default()),
                };
                Self {
                    kind: classify(code.as_deref(), Some(status)),
                    operation: operation.to_string(),
                    code,
                    message,
                    request_id: err.request_id().map(str::to_string),
                    http_status: Some(status),
                }
            }
            SdkError::TimeoutError(_) => Self::new(AwsErrorKind::Transient, operation, "the call timed out"),
            SdkError::ResponseError(context) => {
                let status = context.raw().status().as_u16();
                let mut error =
                    Self::new(classify(None, Some(status)), operation, format!("unreadable response (HTTP {status})"));
                error.http_status = Some(status);
                error
            }
            SdkError::DispatchFailure(failure) => {
                // Credentials come from sts:AssumeRole: its refusal is what the caller must see.
                if let Some(assume_error) = find_assume_role_error(err) {
                    return Self::from_sdk("sts:AssumeRole", assume_error);
                }
                let message = match source_chain(err) {
                    chain if chain.is_empty() => "the request could not be sent".to_string(),
                    chain => chain,
                };
                let kind = if failure.is_user() { AwsErrorKind::Rejected } else { AwsErrorKind::Transient };
                Self::new(kind, operation, message)
            }
            _ => Self::new(AwsErrorKind::Rejected, operation, source_chain(err)),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, AwsErrorKind::Throttled | AwsErrorKind::Transient)
    }

    pub fn body(&self) -> AwsErrorBody {
        AwsErrorBody {
            code: self.code.clone(),
            message: self.to_string(),
            operation: self.operation.clone(),
            request_id: self.request_id.clone(),
            http_status: self.http_status,
            permission: (self.kind == AwsErrorKind::AccessDenied)
                .then(|| super::permissions::permission_for(&self.operation).to_string()),
        }
    }
}

fn classify(code: Option<&str>, status: Option<u16>) -> AwsErrorKind {
    use AwsErrorKind::*;
    match code.unwrap_or_default() {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthFailure"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId"
        | "AllAccessDisabled"
        | "AWSOrganizationsNotInUseException" => AccessDenied,
        "NoSuchEntity"
        | "NoSuchBucket"
        | "NoSuchTagSet"
        | "NoSuchTagSetError"
        | "AccountNotFoundException"
        | "ResourceNotFoundException"
        | "InvalidInstanceID.NotFound" => NotFound,
        "EntityAlreadyExists" => AlreadyExists,
        "LimitExceeded" | "LimitExceededException" => LimitExceeded,
        "MalformedPolicyDocument" => MalformedPolicy,
        "DeleteConflict" => DeleteConflict,
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "PriorRequestNotComplete" => Throttled,
        "ServiceFailure"
        | "ServiceFailureException"
        | "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "ConcurrentModification"
        | "ConcurrentModificationException"
        | "IDPCommunicationError"
        | "ExpiredToken"
        | "ExpiredTokenException"
        // Identity Center: another operation on the same assignment or
        // permission set is in progress (a create followed too soon by a delete).
        | "ConflictException" => Transient,
        _ => match status {
            Some(403) => AccessDenied,
            Some(429) => Throttled,
            Some(s) if s >= 500 => Transient,
            Some(404) if code.is_none() => NotFound,
            _ => Rejected,
        },
    }
}

/// Reads `<Code>` and `<Message>` (XML) or `__type`/`message` (JSON) from an error body.
fn error_from_body(body: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(body);
    let between = |open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let end = text[start..].find(close)? + start;
        Some(text[start..end].trim().to_string())
    };
    if let Some(code) = between("<Code>", "</Code>") {
        return (Some(code), between("<Message>", "</Message>").unwrap_or_default());
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
        let code = json.get("__type").and_then(|v| v.as_str()).map(|t| t.rsplit('#').next().unwrap_or(t).to_string());
        let message = ["message", "Message"]
            .iter()
            .find_map(|k| json.get(*k).and_then(|v| v.as_str()))
            .unwrap_or_default()
            .to_string();
        return (code, message);
    }
    (None, String::new())
}

fn find_assume_role_error<'a>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a SdkError<AssumeRoleError, HttpResponse>> {
    let mut current = err.source();
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

fn source_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts = Vec::new();
    let mut current = err.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_without_a_code_is_access_denied() {
        assert_eq!(classify(None, Some(403)), AwsErrorKind::AccessDenied);
        assert_eq!(classify(Some("Whatever"), Some(403)), AwsErrorKind::AccessDenied);
        assert_eq!(classify(Some("Throttling"), Some(400)), AwsErrorKind::Throttled);
        assert_eq!(classify(Some("NoSuchEntity"), Some(404)), AwsErrorKind::NotFound);
        assert_eq!(classify(None, Some(503)), AwsErrorKind::Transient);
        assert_eq!(classify(Some("ValidationError"), Some(400)), AwsErrorKind::Rejected);
    }

    #[test]
    fn codes_are_read_from_undecoded_bodies() {
        let xml = b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: x is not authorized</Message></Error></ErrorResponse>";
        assert_eq!(error_from_body(xml), (Some("AccessDenied".into()), "User: x is not authorized".into()));
        let json = br#"{"__type": "com.amazon#AccessDeniedException", "message": "no"}"#;
        assert_eq!(error_from_body(json), (Some("AccessDeniedException".into()), "no".into()));
        assert_eq!(error_from_body(b"<html>oops</html>"), (None, String::new()));
    }
}
