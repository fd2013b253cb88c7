//! AWS's errors, as answers and runs carry them.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain;

/// An AWS error as the API reports it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AwsErrorBody {
    /// The AWS error code, e.g. `AccessDenied`, `NoSuchEntity`.
    #[schema(example = "AccessDenied", required = true)]
    pub code: Option<String>,
    pub message: String,
    /// The AWS call, e.g. `sts:AssumeRole`; for access denied, the permission that is missing.
    #[schema(example = "sts:AssumeRole")]
    pub operation: String,
    #[schema(required = true)]
    pub request_id: Option<String>,
    #[schema(required = true)]
    pub http_status: Option<u16>,
    /// For access denied: the IAM permission the call needs, to add to the role's policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "iam:CreatePolicy", nullable = false)]
    pub permission: Option<String>,
}

impl From<domain::AwsErrorBody> for AwsErrorBody {
    fn from(value: domain::AwsErrorBody) -> Self {
        Self {
            code: value.code,
            message: value.message,
            operation: value.operation,
            request_id: value.request_id,
            http_status: value.http_status,
            permission: value.permission,
        }
    }
}
