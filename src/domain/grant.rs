//! Grants: approved access, applied in IAM for a limited time.
//!
//! Lifecycle: `pending` → `active` → `revoking` → `revoked`, or `failed`.

use super::text_enum;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::policy::PolicyDocument;
use super::resource::{AccessLevel, ResourceType};
use crate::error::AwsErrorBody;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    /// Accepted; the IAM change is not made yet.
    Pending,
    /// The access is in place until `expires_at`.
    Active,
    /// Being taken away (retried until it succeeds).
    Revoking,
    Revoked,
    /// Could not be applied; whatever was done was undone.
    Failed,
}

text_enum!(GrantStatus { Pending = "pending", Active = "active", Revoking = "revoking", Revoked = "revoked", Failed = "failed" });

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// `expires_at` was reached.
    Expired,
    /// `POST /v1/grants/{id}/revoke`.
    Revoked,
    /// The integration is being deleted.
    IntegrationDeleted,
}

text_enum!(RevokeReason { Expired = "expired", Revoked = "revoked", IntegrationDeleted = "integration_deleted" });

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalType {
    IamUser,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    #[serde(rename = "type")]
    pub principal_type: PrincipalType,
    #[schema(example = "alice")]
    pub name: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GrantResource {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    pub arn: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GrantPrincipal {
    #[serde(rename = "type")]
    pub principal_type: PrincipalType,
    pub name: String,
    pub arn: String,
}

/// The policy jit-iam created for the grant (EC2, S3 and role grants).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GrantPolicy {
    #[schema(example = "jit-iam-01a21e4b-1bed-7280-8135-27a363c171b4")]
    pub name: String,
    pub arn: String,
    pub document: PolicyDocument,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Grant {
    pub id: Uuid,
    /// Null once the integration is deleted (the grant stays for the audit trail).
    pub integration_id: Option<Uuid>,
    #[schema(example = "123456789012")]
    pub account_id: String,
    pub resource: GrantResource,
    pub access_level: AccessLevel,
    pub principal: GrantPrincipal,
    /// The portal's id of the approved request (unique).
    pub request_id: String,
    pub approved_by: String,
    pub reason: Option<String>,
    /// The API token that submitted it.
    pub requested_by: String,
    pub status: GrantStatus,
    pub revoke_reason: Option<RevokeReason>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    /// When it reached `revoked` or `failed`.
    pub finished_at: Option<DateTime<Utc>>,
    pub policy: Option<GrantPolicy>,
    /// Tries so far of the current step (apply or revoke).
    pub attempts: i32,
    /// True while a revocation keeps failing; it is retried until it succeeds.
    pub revoke_failing: bool,
    /// The last failure: why it failed, or why the current step is being retried.
    pub last_error: Option<GrantError>,
}

/// Why a grant step failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GrantError {
    /// `aws_access_denied`, `aws_error`, `aws_throttled`, `aws_unavailable`, `quota_exceeded`, `expired`.
    #[schema(example = "aws_access_denied")]
    pub code: String,
    pub message: String,
    pub aws: Option<AwsErrorBody>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Transition,
    AwsCall,
    Extended,
}

text_enum!(EventKind { Transition = "transition", AwsCall = "aws_call", Extended = "extended" });

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Success,
    /// The change was already in place (or already gone): nothing to do.
    AlreadyDone,
    Failed,
}

text_enum!(CallOutcome { Success = "success", AlreadyDone = "already_done", Failed = "failed" });

/// One entry of a grant's history.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GrantEvent {
    pub id: i64,
    pub kind: EventKind,
    pub from_status: Option<GrantStatus>,
    pub to_status: Option<GrantStatus>,
    /// The AWS call, e.g. `iam:CreatePolicy`.
    pub operation: Option<String>,
    /// What the call acted on (policy ARN, user, group).
    pub target: Option<String>,
    pub outcome: Option<CallOutcome>,
    pub aws_request_id: Option<String>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    /// The API token's name, or the jit-iam instance that acted.
    pub actor: String,
    /// HTTP attempts the SDK made for the call; more than one means retries.
    pub attempts: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// `jit-iam-<grant id>`: the policy's name follows from the grant, so a retried
/// CreatePolicy finds the policy an interrupted attempt created.
pub fn policy_name(grant_id: Uuid) -> String {
    format!("jit-iam-{grant_id}")
}

/// Capped exponential backoff with jitter: the delay before try `attempt + 1`.
pub fn backoff(attempt: i32, cap: Duration) -> Duration {
    let exponent = attempt.clamp(0, 16) as u32;
    let base = Duration::from_millis(500).saturating_mul(1 << exponent).min(cap);
    // Full jitter on the upper half: spreads retries without ever retrying at once.
    base.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let cap = Duration::from_secs(60);
        assert!(backoff(0, cap) <= Duration::from_millis(500));
        assert!(backoff(0, cap) >= Duration::from_millis(250));
        assert!(backoff(3, cap) >= Duration::from_secs(2));
        for attempt in [10, 20, 1000] {
            assert!(backoff(attempt, cap) <= cap);
            assert!(backoff(attempt, cap) >= cap / 2);
        }
    }

    #[test]
    fn policy_names_fit_iam_limits() {
        let name = policy_name(Uuid::now_v7());
        assert!(name.len() <= 128);
        assert!(crate::domain::arn::is_iam_name(&name, 128));
    }
}
