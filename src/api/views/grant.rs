//! Grants and their history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::aws_error::AwsErrorBody;
use super::enum_schema;
use super::policy::PolicyDocument;
use crate::domain::grant::{self, CallOutcome, EventKind, GrantErrorCode, GrantStatus, PrincipalType, RevokeReason};
use crate::domain::resource::{AccessLevel, ResourceType};
use crate::grants;

enum_schema!(GrantStatus);
enum_schema!(RevokeReason);
enum_schema!(PrincipalType, "Who receives a grant's access.");
enum_schema!(GrantErrorCode, "The codes a grant's `last_error` carries (stored with the grant: add, never rename).");
enum_schema!(EventKind);
enum_schema!(CallOutcome);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    #[serde(rename = "type")]
    pub principal_type: PrincipalType,
    #[schema(example = "alice")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantResource {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    pub arn: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantPrincipal {
    #[serde(rename = "type")]
    pub principal_type: PrincipalType,
    pub name: String,
    pub arn: String,
}

/// The policy jit-iam created for the grant (EC2, S3 and role grants): an
/// IAM managed policy for IAM principals; for Identity Center users and
/// groups, the temporary permission set (`jit-` and 28 hex digits of the grant
/// id) whose inline policy is `document` (present once the permission set is made).
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantPolicy {
    #[schema(example = "jit-iam-01a21e4b-1bed-7280-8135-27a363c171b4")]
    pub name: String,
    pub arn: String,
    pub document: PolicyDocument,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Grant {
    pub id: Uuid,
    /// Null once the integration is deleted (the grant stays for the audit trail).
    #[schema(required = true)]
    pub integration_id: Option<Uuid>,
    #[schema(example = "123456789012")]
    pub account_id: String,
    pub resource: GrantResource,
    pub access_level: AccessLevel,
    pub principal: GrantPrincipal,
    /// The portal's id of the approved request (unique).
    pub request_id: String,
    pub approved_by: String,
    #[schema(required = true)]
    pub reason: Option<String>,
    /// The API token that submitted it.
    pub requested_by: String,
    pub status: GrantStatus,
    #[schema(required = true)]
    pub revoke_reason: Option<RevokeReason>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub activated_at: Option<DateTime<Utc>>,
    /// When it reached `revoked` or `failed`.
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub policy: Option<GrantPolicy>,
    /// Tries so far of the current step (apply or revoke).
    pub attempts: i32,
    /// True while a revocation keeps failing; it is retried until it succeeds.
    pub revoke_failing: bool,
    /// The last failure: why it failed, or why the current step is being retried.
    #[schema(required = true)]
    pub last_error: Option<GrantError>,
    /// `iam_role` grants: the session name the grant's policy requires
    /// (`aws sts assume-role --role-session-name <this>`); any other name is denied.
    #[schema(required = true, example = "jit-iam-01938f4e-7b7a-7c3e-9f0a-1d2c3b4a5e6f")]
    pub session_name: Option<String>,
    /// An `iam_role` grant that ended: the sessions it gave are denied on the
    /// role until then (past the role's longest session), when jit-iam removes the deny.
    #[schema(required = true)]
    pub sessions_denied_until: Option<DateTime<Utc>>,
    /// `permission_set` grants: the account the permission set is assigned in.
    #[schema(required = true, example = "210987654321")]
    pub target_account_id: Option<String>,
    /// `permission_set` grants, once applied: the latest a session it gave can
    /// last. Deleting an assignment does not end the sessions already issued:
    /// they last the permission set's session duration past the grant's end
    /// (past `expires_at` while active; past `finished_at` once ended).
    #[schema(required = true)]
    pub sessions_valid_until: Option<DateTime<Utc>>,
}

/// Why a grant step failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantError {
    pub code: GrantErrorCode,
    pub message: String,
    #[schema(required = true)]
    pub aws: Option<AwsErrorBody>,
}

impl From<grant::GrantError> for GrantError {
    fn from(value: grant::GrantError) -> Self {
        Self { code: value.code, message: value.message, aws: value.aws.map(Into::into) }
    }
}

/// One entry of a grant's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantEvent {
    pub id: i64,
    pub kind: EventKind,
    #[schema(required = true)]
    pub from_status: Option<GrantStatus>,
    #[schema(required = true)]
    pub to_status: Option<GrantStatus>,
    /// The AWS call, e.g. `iam:CreatePolicy`.
    #[schema(required = true)]
    pub operation: Option<String>,
    /// What the call acted on (policy ARN, user, group).
    #[schema(required = true)]
    pub target: Option<String>,
    #[schema(required = true)]
    pub outcome: Option<CallOutcome>,
    #[schema(required = true)]
    pub aws_request_id: Option<String>,
    /// AWS's error code of a failed call (`NoSuchEntity`, `Throttling`, ...): AWS's
    /// open set, hence a string.
    #[schema(required = true)]
    pub error_code: Option<String>,
    #[schema(required = true)]
    pub message: Option<String>,
    /// The API token's name, or the jit-iam instance that acted.
    pub actor: String,
    /// HTTP attempts the SDK made for the call; more than one means retries.
    #[schema(required = true)]
    pub attempts: Option<i32>,
    pub created_at: DateTime<Utc>,
}

impl From<grant::GrantEvent> for GrantEvent {
    fn from(value: grant::GrantEvent) -> Self {
        Self {
            id: value.id,
            kind: value.kind,
            from_status: value.from_status,
            to_status: value.to_status,
            operation: value.operation,
            target: value.target,
            outcome: value.outcome,
            aws_request_id: value.aws_request_id,
            error_code: value.error_code,
            message: value.message,
            actor: value.actor,
            attempts: value.attempts,
            created_at: value.created_at,
        }
    }
}

/// Managed policies the grantee has (as far as jit-iam knows) and its quota.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyQuota {
    pub attached: usize,
    pub after_grant: usize,
    pub limit: usize,
}

impl From<grants::PolicyQuota> for PolicyQuota {
    fn from(value: grants::PolicyQuota) -> Self {
        Self { attached: value.attached, after_grant: value.after_grant, limit: value.limit }
    }
}

/// One AWS call a grant makes.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedCall {
    #[schema(example = "iam:CreatePolicy")]
    pub operation: String,
    pub target: String,
    /// When the call is made, if not always.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub condition: Option<String>,
}

impl From<grants::PlannedCall> for PlannedCall {
    fn from(value: grants::PlannedCall) -> Self {
        Self { operation: value.operation, target: value.target, condition: value.condition }
    }
}

/// The grant as the API shows it (and webhooks send it).
impl grant::Grant {
    pub fn view(&self) -> Grant {
        let status = self.status();
        Grant {
            id: self.grant_id,
            integration_id: self.integration_id,
            account_id: self.account_id.clone(),
            resource: GrantResource {
                id: self.resource_id,
                resource_type: self.resource_type(),
                arn: self.resource_arn.clone(),
                name: self.resource_name.clone(),
            },
            access_level: AccessLevel::parse(&self.access_level).expect("stored from the enum"),
            principal: GrantPrincipal {
                principal_type: self.grantee().principal_type,
                name: self.principal_name.clone(),
                arn: self.principal_arn.clone(),
            },
            request_id: self.request_id.clone(),
            approved_by: self.approved_by.clone(),
            reason: self.reason.clone(),
            requested_by: self.requested_by.clone(),
            status,
            revoke_reason: self.revoke_reason.as_deref().and_then(RevokeReason::parse),
            expires_at: self.expires_at,
            created_at: self.created_at,
            activated_at: self.activated_at,
            finished_at: self.finished_at,
            policy: match (&self.policy_name, &self.policy_arn, &self.policy_document) {
                (Some(name), Some(arn), Some(document)) => {
                    Some(GrantPolicy { name: name.clone(), arn: arn.clone(), document: document.clone().into() })
                }
                _ => None,
            },
            attempts: self.attempts,
            revoke_failing: status == GrantStatus::Revoking && self.last_error.is_some(),
            session_name: (self.resource_type() == ResourceType::IamRole).then(|| grant::session_name(self.grant_id)),
            sessions_denied_until: self.sessions_denied_until,
            target_account_id: self.target_account_id.clone(),
            sessions_valid_until: self.sessions_valid_until(),
            last_error: self.last_error.clone().map(Into::into),
        }
    }
}
