//! Grants: approved access, applied in IAM for a limited time.
//!
//! Lifecycle: `pending` → `active` → `revoking` → `revoked`, or `failed`.

use super::wire_enum;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::policy::PolicyDocument;
use super::resource::ResourceType;
use crate::domain::AwsErrorBody;

wire_enum! {
    pub enum GrantStatus {
        /// Accepted; the IAM change is not made yet.
        Pending = "pending",
        /// The access is in place until `expires_at`.
        Active = "active",
        /// Being taken away (retried until it succeeds).
        Revoking = "revoking",
        Revoked = "revoked",
        /// Could not be applied; whatever was done was undone.
        Failed = "failed",
    }
}

wire_enum! {
    pub enum RevokeReason {
        /// `expires_at` was reached.
        Expired = "expired",
        /// `POST /v1/grants/{id}/revoke`.
        Revoked = "revoked",
        /// The integration is being deleted.
        IntegrationDeleted = "integration_deleted",
    }
}

wire_enum! {
    /// Who receives a grant's access.
    #[derive(Hash)]
    pub enum PrincipalType {
        /// A person (or a service) with an IAM user.
        IamUser = "iam_user",
        /// A workload acting through an IAM role (pods, CI runners, functions, instance profiles).
        IamRole = "iam_role",
        /// A person signing in through IAM Identity Center (its user name).
        IdentityCenterUser = "identity_center_user",
        /// The members of an IAM Identity Center group (its display name).
        IdentityCenterGroup = "identity_center_group",
    }
}

impl PrincipalType {
    /// The inventory keeps principals as resources of the same-named type.
    pub fn resource_type(self) -> ResourceType {
        match self {
            Self::IamUser => ResourceType::IamUser,
            Self::IamRole => ResourceType::IamRole,
            Self::IdentityCenterUser => ResourceType::IdentityCenterUser,
            Self::IdentityCenterGroup => ResourceType::IdentityCenterGroup,
        }
    }

    /// "user" or "role" (an IAM principal's), for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::IamUser => "user",
            Self::IamRole => "role",
            Self::IdentityCenterUser => "Identity Center user",
            Self::IdentityCenterGroup => "Identity Center group",
        }
    }

    /// "IAM user", "IAM role" or "Identity Center user", for messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::IamUser => "IAM user",
            Self::IamRole => "IAM role",
            Self::IdentityCenterUser => "Identity Center user",
            Self::IdentityCenterGroup => "Identity Center group",
        }
    }

    /// Whether it is an Identity Center principal (found by its identity store id, never holding IAM policies).
    pub fn is_identity_center(self) -> bool {
        matches!(self, Self::IdentityCenterUser | Self::IdentityCenterGroup)
    }
}

/// The principal a grant is for, in its account: every lock, count and
/// attachment record is keyed by all three, so a user and a role with the
/// same name never share one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grantee {
    pub principal_type: PrincipalType,
    pub name: String,
    pub account_id: String,
}

impl Grantee {
    /// The key of the advisory lock that serializes changes to this principal across replicas.
    pub fn lock_key(&self) -> String {
        format!("jit-iam-principal/{}/{}/{}", self.account_id, self.principal_type.as_str(), self.name)
    }
}

impl std::fmt::Display for Grantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.principal_type.noun(), self.name)
    }
}

/// A grant as stored, with what the worker needs. Also read from the row a
/// webhook event keeps (`to_jsonb` of the row, migration 0011).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Grant {
    pub grant_id: Uuid,
    pub integration_id: Option<Uuid>,
    pub account_id: String,
    pub resource_id: Uuid,
    pub resource_type: String,
    pub resource_arn: String,
    pub resource_name: String,
    pub access_level: String,
    pub principal_type: String,
    pub principal_name: String,
    pub principal_arn: String,
    /// The principal's IAM unique id when the grant was submitted (None for older grants).
    pub principal_id: Option<String>,
    pub request_id: String,
    pub request_fingerprint: String,
    pub approved_by: String,
    pub reason: Option<String>,
    pub requested_by: String,
    pub status: String,
    pub revoke_reason: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub policy_name: Option<String>,
    pub policy_arn: Option<String>,
    pub policy_document: Option<PolicyDocument>,
    pub holds_attachment: bool,
    pub attempts: i32,
    pub next_run_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub last_error: Option<GrantError>,
    pub activated_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The installation whose policy this is (None for grants from before installation ids).
    #[serde(default)]
    pub installation_id: Option<Uuid>,
    /// Until when the sessions an ended `assume` grant gave are denied.
    #[serde(default)]
    pub sessions_denied_until: Option<DateTime<Utc>>,
    /// The account a permission set is assigned in (permission_set grants).
    #[serde(default)]
    pub target_account_id: Option<String>,
    /// The assigned permission set's session duration, as last read.
    #[serde(default)]
    pub session_duration_seconds: Option<i32>,
    /// The integration's revision and status, as the worker's claim read them.
    #[serde(default)]
    pub integration_revision: Option<i64>,
    #[serde(default)]
    pub integration_status: Option<String>,
    /// Postgres's clock when the row was read: the one clock expiry is decided
    /// by (set by every query the worker reads grants with).
    #[serde(default)]
    pub db_now: Option<DateTime<Utc>>,
}

impl Grant {
    /// Postgres's clock when the row was read (see `db_now`).
    pub fn read_at(&self) -> DateTime<Utc> {
        self.db_now.expect("the worker reads grants with queries that return Postgres's clock")
    }

    pub fn status(&self) -> GrantStatus {
        GrantStatus::parse(&self.status).expect("checked by the table")
    }

    pub fn resource_type(&self) -> ResourceType {
        ResourceType::parse(&self.resource_type).expect("checked by the table")
    }

    pub fn grantee(&self) -> Grantee {
        Grantee {
            principal_type: PrincipalType::parse(&self.principal_type).expect("checked by the table"),
            name: self.principal_name.clone(),
            account_id: self.account_id.clone(),
        }
    }

    /// The latest a session this grant gave can last, when its end does not end
    /// them (assignments of existing permission sets): its end, plus the
    /// permission set's session duration.
    pub fn sessions_valid_until(&self) -> Option<DateTime<Utc>> {
        self.activated_at?;
        let duration = chrono::Duration::seconds(self.session_duration_seconds?.into());
        Some(self.finished_at.unwrap_or(self.expires_at) + duration)
    }
}

/// The account a permission set grant assigns it in, as the inventory has it.
#[derive(Clone, Debug)]
pub struct TargetAccount {
    /// As Organizations reports it (`ACTIVE`, `SUSPENDED`, ...).
    pub status: String,
    /// Permission sets provisioned to the account, as of the last sync.
    pub provisioned: usize,
    /// Whether the granted permission set is one of them.
    pub provisioned_here: bool,
}

/// Room for one more permission set, as the inventory and live grants count:
/// in the Identity Center instance, and provisioned to the resource's account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PermissionSetRoom {
    pub in_instance: usize,
    pub in_account: usize,
}

/// The session name an `assume` grant's policy requires: the grant's alone,
/// so that its end can deny exactly its sessions.
pub fn session_name(grant_id: Uuid) -> String {
    format!("jit-iam-{grant_id}")
}

/// What preview shows for it: the grant id is known only once the grant is submitted.
pub const SESSION_NAME_PLACEHOLDER: &str = "jit-iam-<grant id>";

/// Why a grant step failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantError {
    pub code: GrantErrorCode,
    pub message: String,
    pub aws: Option<AwsErrorBody>,
}

wire_enum! {
    /// The codes a grant's `last_error` carries (stored with the grant: add, never rename).
    pub enum GrantErrorCode {
        /// AWS refused jit-iam (`aws.permission` names the missing permission).
        AwsAccessDenied = "aws_access_denied",
        /// AWS kept throttling past the retries.
        AwsThrottled = "aws_throttled",
        /// AWS could not be reached or failed.
        AwsUnavailable = "aws_unavailable",
        /// AWS rejected the call for another reason (see `aws.code`).
        AwsError = "aws_error",
        /// An IAM quota would be exceeded.
        QuotaExceeded = "quota_exceeded",
        /// The grant expired before it could be applied.
        Expired = "expired",
        /// The integration is gone.
        NotFound = "not_found",
        /// The principal of that name is not the one the grant was approved for
        /// (deleted and recreated: its IAM unique id differs); nothing was changed.
        PrincipalChanged = "principal_changed",
        /// A policy of the grant's name exists and is not the grant's own, or its
        /// document is not the one jit-iam writes: it is never adopted.
        PolicyConflict = "policy_conflict",
        /// IAM Identity Center could not provision the account assignment (its reason in the message).
        ProvisioningFailed = "provisioning_failed",
        /// IAM Identity Center is still provisioning the account assignment: looked at again with backoff.
        ProvisioningInProgress = "provisioning_in_progress",
    }
}

wire_enum! {
    pub enum EventKind {
        Transition = "transition",
        AwsCall = "aws_call",
        Extended = "extended",
        /// Reconciliation found IAM not as the grant says (the message tells how).
        DriftDetected = "drift_detected",
        /// Reconciliation put it back.
        DriftRepaired = "drift_repaired",
    }
}

wire_enum! {
    pub enum CallOutcome {
        Success = "success",
        /// The change was already in place (or already gone): nothing to do.
        AlreadyDone = "already_done",
        Failed = "failed",
    }
}

/// One entry of a grant's history.
#[derive(Clone, Debug, Serialize)]
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
    /// AWS's error code of a failed call (`NoSuchEntity`, `Throttling`, ...): AWS's
    /// open set, hence a string.
    pub error_code: Option<String>,
    pub message: Option<String>,
    /// The API token's name, or the jit-iam instance that acted.
    pub actor: String,
    /// HTTP attempts the SDK made for the call; more than one means retries.
    pub attempts: Option<i32>,
    pub created_at: DateTime<Utc>,
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
}
