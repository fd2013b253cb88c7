//! The connection check of an integration.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::aws_error::AwsErrorBody;
use super::enum_schema;
use crate::aws::check::{self, CheckStepName, StepStatus};

enum_schema!(CheckStepName);
enum_schema!(StepStatus);

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessCheck {
    pub integration_id: Uuid,
    /// The account whose role was assumed (the root account, or a member of an organization).
    #[schema(example = "123456789012")]
    pub account_id: String,
    /// True when every step passed.
    pub ok: bool,
    #[schema(example = "arn:aws:iam::123456789012:role/jit-iam-access")]
    pub role_arn: String,
    pub checked_at: DateTime<Utc>,
    pub steps: Vec<CheckStep>,
}

impl From<check::AccessCheck> for AccessCheck {
    fn from(value: check::AccessCheck) -> Self {
        Self {
            integration_id: value.integration_id,
            account_id: value.account_id,
            ok: value.ok,
            role_arn: value.role_arn,
            checked_at: value.checked_at,
            steps: value.steps.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckStep {
    pub name: CheckStepName,
    pub status: StepStatus,
    /// What was found, in a sentence.
    pub detail: String,
    /// AWS's answer when the step failed on an AWS error.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<AwsErrorBody>,
}

impl From<check::CheckStep> for CheckStep {
    fn from(value: check::CheckStep) -> Self {
        Self { name: value.name, status: value.status, detail: value.detail, error: value.error.map(Into::into) }
    }
}
