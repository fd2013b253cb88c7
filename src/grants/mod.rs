//! The rules of a grant, one home per mechanism: what is checked before a
//! grant is accepted, the AWS calls it plans (what preview shows), how it is
//! applied and revoked, and how access that existed before is recognised.
//!
//! | mechanism | resources | checked before | apply | revoke | access held before |
//! |---|---|---|---|---|---|
//! | [`generated_policy`] | EC2 instance, S3 bucket, IAM role | policy size; managed-policy quota | CreatePolicy, Attach{User,Role}Policy | Detach{User,Role}Policy, DeletePolicy; an active `assume` grant: GetRole, PutRolePolicy (the deny of its sessions, [`sessions`]), DeleteRolePolicy later | none: the policy is the grant's own |
//! | [`shared`] policy | IAM policy | managed-policy quota | ListAttached{User,Role}Policies, then Attach{User,Role}Policy unless held | Detach{User,Role}Policy when the last holder ends | attached before any grant: never removed |
//! | [`shared`] group | IAM group (users only) | groups-per-user quota | ListGroupsForUser, then AddUserToGroup unless a member | RemoveUserFromGroup when the last holder ends | a member before any grant: never removed |
//! | [`shared`] Identity Center group | Identity Center group (Identity Center users only) | none | GetGroupMembershipId, then CreateGroupMembership unless a member | GetGroupMembershipId, DeleteGroupMembership when the last holder ends | a member before any grant: never removed |
//! | [`temporary_permission_set`] | EC2 instance, S3 bucket, IAM role (Identity Center users and groups) | inline policy size; permission sets per instance and per account | CreatePermissionSet (session duration: the grant's remaining time, 1 to 12 h), PutInlinePolicyToPermissionSet, CreateAccountAssignment in the resource's account, its status polled | DeleteAccountAssignment, its status polled, DeletePermissionSet (its role in the account goes, and the sessions it gave) | none: the permission set is the grant's own |
//! | [`shared`] assignment | permission set, in a target account (Identity Center users and groups) | target account of the integration; permission sets provisioned per account | ListAccountAssignments, then CreateAccountAssignment unless assigned, its status polled until final; DescribePermissionSet (session duration) | DeleteAccountAssignment when the last holder ends, its status polled | assigned before any grant: never removed |
//!
//! Which mechanism carries a grant is [`mechanism`]'s table, of the resource
//! type and the principal type; every dispatch goes through it.
//!
//! The lifecycle's use cases are here too: [`submission::submit`] (with the
//! idempotent replay of a request id), [`submission::extend`] and
//! [`revocation::request`], handing grants to the worker through
//! [`Handoff`]. The HTTP handlers parse, authorize, call them and answer; the
//! worker claims, leases, retries and records. Neither holds grant rules:
//! they call the use cases, [`apply`] and [`revoke`]. IAM is reached through the narrow
//! [`IamChanges`] trait and jit-iam's own records through [`Ledger`], so the
//! orderings (crash between steps, retries, adoption, not-found) are unit
//! tested in memory as well as against moto.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::aws::iam_changes::IamChanges;
use crate::aws::{AwsError, AwsErrorKind};
use crate::config::GrantConfig;
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::caller::Caller;
use crate::domain::grant::Grant;
use crate::domain::grant::{
    session_name, GrantError, GrantErrorCode, Grantee, PermissionSetRoom, PrincipalType, TargetAccount,
    SESSION_NAME_PLACEHOLDER,
};
use crate::domain::integration::Integration;
use crate::domain::policy::{GeneratedPolicy, PolicyDocument};
use crate::domain::resource::{AccessLevel, Resource, ResourceType};
use crate::storage::grants::{AttachmentKey, SharedAttachment};

pub mod drift;
pub mod generated_policy;
pub mod ledger;
pub mod revocation;
pub mod sessions;
pub mod shared;
pub mod submission;
pub mod temporary_permission_set;
#[cfg(test)]
mod tests;

pub use ledger::{Ledger, PgLedger};

/// How a grant is carried out in IAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// A policy made for the grant, naming its one resource.
    GeneratedPolicy,
    /// An existing managed policy, shared with other grants and with what the grantee had.
    AttachPolicy,
    /// Membership of a group, shared likewise (users only).
    GroupMembership,
    /// Membership of an Identity Center group, shared likewise (Identity
    /// Center users only; made and found by the user's and group's ids).
    IdentityCenterMembership,
    /// An assignment of an existing permission set in a target account to an
    /// Identity Center user or group, shared likewise (by ids).
    PermissionSetAssignment,
    /// A permission set made for the grant (its inline policy naming its one
    /// resource), assigned to an Identity Center user or group in the
    /// resource's account.
    TemporaryPermissionSet,
}

/// The registration of mechanisms: which one carries a grant of a resource
/// type to a principal type. None: never granted. A new principal family or
/// a new mechanism is a module and its lines here; every dispatch (plan,
/// apply, revoke, preview, drift) goes through this table.
pub fn mechanism(resource_type: ResourceType, principal_type: PrincipalType) -> Option<Mechanism> {
    use PrincipalType as To;
    use ResourceType as Of;
    match (resource_type, principal_type) {
        (Of::Ec2Instance | Of::S3Bucket | Of::IamRole, To::IamUser | To::IamRole) => Some(Mechanism::GeneratedPolicy),
        (Of::IamPolicy, To::IamUser | To::IamRole) => Some(Mechanism::AttachPolicy),
        (Of::IamGroup, To::IamUser) => Some(Mechanism::GroupMembership),
        (Of::IdentityCenterGroup, To::IdentityCenterUser) => Some(Mechanism::IdentityCenterMembership),
        (Of::PermissionSet, To::IdentityCenterUser | To::IdentityCenterGroup) => {
            Some(Mechanism::PermissionSetAssignment)
        }
        // Groups have users as members, never roles nor groups; each directory's groups its own users.
        (Of::IamGroup, To::IamRole | To::IdentityCenterUser | To::IdentityCenterGroup)
        | (Of::IdentityCenterGroup, To::IamUser | To::IamRole | To::IdentityCenterGroup) => None,
        // Permission sets are assigned to Identity Center principals only.
        (Of::PermissionSet, To::IamUser | To::IamRole) => None,
        (Of::Ec2Instance | Of::S3Bucket | Of::IamRole, To::IdentityCenterUser | To::IdentityCenterGroup) => {
            Some(Mechanism::TemporaryPermissionSet)
        }
        // An IAM policy is attached to IAM principals; Identity Center's are given permission sets.
        (Of::IamPolicy, To::IdentityCenterUser | To::IdentityCenterGroup) => None,
        // Users receive access; they are not granted.
        (Of::IamUser | Of::IdentityCenterUser, _) => None,
    }
}

/// Whether some principal may be granted access to a resource of this type.
pub fn is_grantable(resource_type: ResourceType) -> bool {
    PrincipalType::ALL.iter().any(|principal_type| mechanism(resource_type, *principal_type).is_some())
}

impl Mechanism {
    /// Whether grants share the change, so that changes to one grantee are
    /// serialized (a Postgres advisory lock held for the step).
    pub fn is_shared(self) -> bool {
        !matches!(self, Self::GeneratedPolicy | Self::TemporaryPermissionSet)
    }
}

/// IAM's quotas that jit-iam checks itself (AWS checks them too, but only after a change has begun).
#[derive(Clone, Copy, Debug)]
pub struct Quotas {
    pub max_policies_per_user: usize,
    pub max_policies_per_role: usize,
    /// Identity Center's: permission sets provisioned to one account, in one
    /// instance, and the size of a permission set's inline policy.
    pub max_permission_sets_per_account: usize,
    pub max_permission_sets_per_instance: usize,
    pub max_permission_set_inline_policy: usize,
}

/// IAM's fixed limit of groups per user.
pub const MAX_GROUPS_PER_USER: usize = 10;

impl From<&GrantConfig> for Quotas {
    fn from(config: &GrantConfig) -> Self {
        Self {
            max_policies_per_user: config.max_policies_per_user as usize,
            max_policies_per_role: config.max_policies_per_role as usize,
            max_permission_sets_per_account: config.max_permission_sets_per_account as usize,
            max_permission_sets_per_instance: config.max_permission_sets_per_instance as usize,
            max_permission_set_inline_policy: config.max_permission_set_inline_policy as usize,
        }
    }
}

impl Quotas {
    fn max_policies(&self, principal_type: PrincipalType) -> usize {
        match principal_type {
            PrincipalType::IamUser => self.max_policies_per_user,
            PrincipalType::IamRole => self.max_policies_per_role,
            // No managed policies: nothing is attached to an Identity Center principal.
            PrincipalType::IdentityCenterUser | PrincipalType::IdentityCenterGroup => 0,
        }
    }

    /// The refusal of one more managed policy for `grantee`, which has `held`.
    fn policies_exceeded(&self, grantee: &Grantee, held: usize) -> String {
        let setting = match grantee.principal_type {
            PrincipalType::IamUser => "JIT_IAM_MAX_POLICIES_PER_USER",
            PrincipalType::IamRole => "JIT_IAM_MAX_POLICIES_PER_ROLE",
            PrincipalType::IdentityCenterUser | PrincipalType::IdentityCenterGroup => {
                "no setting: Identity Center principals hold no IAM policies"
            }
        };
        format!(
            "{grantee} has {held} managed policies attached and IAM allows {} ({setting})",
            self.max_policies(grantee.principal_type)
        )
    }
}

/// Managed policies the grantee has (as far as jit-iam knows) and its quota.
#[derive(Debug, Clone)]
pub struct PolicyQuota {
    pub attached: usize,
    pub after_grant: usize,
    pub limit: usize,
}

/// One AWS call a grant makes.
#[derive(Debug, Clone)]
pub struct PlannedCall {
    pub operation: String,
    pub target: String,
    /// When the call is made, if not always.
    pub condition: Option<String>,
}

impl PlannedCall {
    fn new(operation: &str, target: &str, condition: Option<&str>) -> Self {
        Self { operation: operation.into(), target: target.into(), condition: condition.map(str::to_string) }
    }
}

/// Why a grant is not accepted; nothing is stored, nothing changed in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request breaks a rule (422).
    Invalid { field: &'static str, message: String },
    /// An IAM quota would be exceeded (409).
    Quota { field: &'static str, message: String },
    /// What the request names does not exist, or is not offered (404).
    NotFound { field: Option<&'static str>, message: String },
    /// Not now: the integration is being deleted, the resource no longer offered (409).
    InvalidState { field: Option<&'static str>, message: String },
    /// The request id was submitted before with another body (409).
    RequestIdConflict { message: String },
}

/// Why a use case (submission, extension, revocation) did not go through.
#[derive(Debug)]
pub enum Failure {
    /// Refused: nothing stored, nothing changed.
    Refused(Refusal),
    /// The database failed; nothing was committed.
    Database(sqlx::Error),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

/// Who asks for a change to a grant: the caller, and the id of their HTTP
/// request, for the grant's events and the audit trail.
#[derive(Clone, Copy, Debug)]
pub struct Requester<'a> {
    pub caller: &'a Caller,
    pub request_id: Option<&'a str>,
}

impl Requester<'_> {
    /// A record of `action` on `target_id` by this requester; add what changed.
    pub fn record(self, action: AuditAction, target_id: Uuid) -> AuditRecord {
        AuditRecord::new(self.caller, self.request_id.map(str::to_string), action, target_id)
    }
}

/// The worker, as the use cases hand grants to it. `worker` implements it:
/// it depends on `grants`, so `grants` cannot name it.
pub trait Handoff {
    /// Just before a new grant is stored: a lease for this process's worker
    /// (owner, length) when it takes the grant at once, needing no claim.
    fn reserve(&mut self) -> Option<(&str, std::time::Duration)>;
    /// The new grant is stored, leased when [`reserve`](Self::reserve) gave a lease.
    fn submitted(self, grant: &Grant);
    /// A grant changed (extended, revocation requested): its next step may be due sooner.
    fn changed(self);
}

/// What a grant will do, checked before it is accepted.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mechanism: Mechanism,
    /// The policy to create, for generated-policy grants.
    pub policy: Option<PolicyDocument>,
    /// Managed policies before and after, for the mechanisms that attach one.
    pub quota: Option<PolicyQuota>,
}

/// A grant as submitted, with what the inventory says of it.
pub struct Request<'a> {
    pub integration: &'a Integration,
    pub resource: &'a Resource,
    pub level: AccessLevel,
    pub grantee: &'a Grantee,
    /// The grantee as the inventory has it.
    pub principal: &'a Resource,
    /// The managed policies the grantee holds, as far as jit-iam knows.
    pub held: &'a [String],
    /// The request field that chose the resource (`resource_id` or `resource_arn`).
    pub resource_field: &'static str,
    /// The grant's id; None in a preview.
    pub grant_id: Option<Uuid>,
    /// The account the request names (`account_id`: permission set grants),
    /// and what the inventory has of it (None: not an account of the integration).
    pub target_account: Option<(&'a str, Option<&'a TargetAccount>)>,
    /// Room for a temporary permission set (grants to Identity Center principals).
    pub permission_set_room: Option<&'a PermissionSetRoom>,
}

/// Checks a grant before it is accepted: every rule of its mechanism.
pub fn plan(request: &Request<'_>, quotas: &Quotas) -> Result<Plan, Refusal> {
    let Request {
        integration,
        resource,
        level,
        grantee,
        principal,
        held,
        resource_field,
        grant_id,
        target_account,
        permission_set_room,
    } = *request;
    let invalid = |field, message: String| Refusal::Invalid { field, message };
    if !is_grantable(resource.resource_type) {
        let message = match resource.resource_type {
            ResourceType::IamUser => "IAM users receive access; they are not granted".to_string(),
            ResourceType::IdentityCenterUser => {
                "Identity Center users receive access; they are not granted".to_string()
            }
            other => format!("grants on {} resources are not available yet", other.as_str()),
        };
        return Err(invalid(resource_field, message));
    }
    if !resource.resource_type.access_levels().contains(&level) {
        let offered: Vec<&str> = resource.resource_type.access_levels().iter().map(|l| l.as_str()).collect();
        return Err(invalid(
            "access_level",
            format!("a {} offers {}", resource.resource_type.as_str(), offered.join(", ")),
        ));
    }
    if target_account.is_some() && resource.resource_type != ResourceType::PermissionSet {
        return Err(invalid(
            "account_id",
            format!(
                "only permission_set grants name an account; a {} grant's account is its resource's",
                resource.resource_type.as_str()
            ),
        ));
    }
    check_grantee(integration, grantee, principal)?;
    let jit_iam_role = integration.role_arn_for(&resource.account_id);
    if resource.resource_type == ResourceType::IamRole && resource.name == jit_iam_role.name {
        let message =
            format!("{} is the role jit-iam assumes in account {}: never granted", resource.name, resource.account_id);
        return Err(invalid(resource_field, message));
    }
    let Some(mechanism) = mechanism(resource.resource_type, grantee.principal_type) else {
        return Err(invalid("principal.type", not_for(resource.resource_type, grantee.principal_type)));
    };
    match mechanism {
        Mechanism::GeneratedPolicy => {
            let session_name = grant_id.map_or(SESSION_NAME_PLACEHOLDER.to_string(), session_name);
            generated_policy::plan(resource, level, grantee, held, quotas, resource_field, &session_name)
        }
        Mechanism::AttachPolicy => shared::plan_policy(resource, grantee, held, quotas),
        Mechanism::GroupMembership | Mechanism::IdentityCenterMembership => {
            Ok(Plan { mechanism, policy: None, quota: None })
        }
        Mechanism::PermissionSetAssignment => {
            check_target_account(resource, target_account, quotas)?;
            Ok(Plan { mechanism, policy: None, quota: None })
        }
        Mechanism::TemporaryPermissionSet => {
            let session_name = grant_id.map_or(SESSION_NAME_PLACEHOLDER.to_string(), session_name);
            temporary_permission_set::plan(resource, level, permission_set_room, quotas, resource_field, &session_name)
        }
    }
}

/// A permission set is assigned in an account of the integration that is
/// active and has room for it (permission sets provisioned per account).
fn check_target_account(
    resource: &Resource,
    target_account: Option<(&str, Option<&TargetAccount>)>,
    quotas: &Quotas,
) -> Result<(), Refusal> {
    let invalid = |message: String| Refusal::Invalid { field: "account_id", message };
    let Some((account_id, found)) = target_account else {
        return Err(invalid("a permission_set grant names the account to assign it in (`account_id`)".into()));
    };
    let Some(account) = found else {
        return Err(invalid(format!(
            "account {account_id} is not an account of this integration (as of the last sync)"
        )));
    };
    if account.status != "ACTIVE" {
        return Err(invalid(format!("account {account_id} is {}, not ACTIVE", account.status)));
    }
    let max = quotas.max_permission_sets_per_account;
    if !account.provisioned_here && account.provisioned >= max {
        return Err(Refusal::Quota {
            field: "account_id",
            message: format!(
                "account {account_id} has {} permission sets provisioned and Identity Center allows {max} \
                 (JIT_IAM_MAX_PERMISSION_SETS_PER_ACCOUNT); {} is not one of them",
                account.provisioned, resource.name
            ),
        });
    }
    Ok(())
}

/// Why a resource some principals may be granted is not for this principal type.
fn not_for(resource_type: ResourceType, principal_type: PrincipalType) -> String {
    match (resource_type, principal_type) {
        (ResourceType::IamGroup, PrincipalType::IamRole) => {
            "an IAM group grant needs an IAM user: a role cannot be a group member".into()
        }
        (ResourceType::IdentityCenterGroup, _) => {
            "an identity_center_group grant needs an Identity Center user (`identity_center_user`)".into()
        }
        (ResourceType::PermissionSet, _) => {
            "a permission_set is assigned to an Identity Center user or group (`identity_center_user`, `identity_center_group`)"
                .into()
        }
        (ResourceType::IamGroup, PrincipalType::IdentityCenterUser) => {
            "an IAM group grant needs an IAM user: an Identity Center user cannot be an IAM group member".into()
        }
        (ResourceType::IamPolicy, PrincipalType::IdentityCenterUser | PrincipalType::IdentityCenterGroup) => {
            "an iam_policy is attached to IAM users and roles; an Identity Center principal is given a permission_set"
                .into()
        }
        _ => format!("a {} is not granted to an {}", resource_type.as_str(), principal_type.label()),
    }
}

/// Roles that may not receive grants: AWS's service-linked roles (AWS owns
/// them), and the roles jit-iam itself assumes in the account (a grant would
/// widen jit-iam's own access).
fn check_grantee(integration: &Integration, grantee: &Grantee, principal: &Resource) -> Result<(), Refusal> {
    if grantee.principal_type != PrincipalType::IamRole {
        return Ok(());
    }
    let refuse = |message: String| Err(Refusal::Invalid { field: "principal.name", message });
    if principal.arn.contains(":role/aws-service-role/") {
        return refuse(format!("{grantee} is a service-linked role; AWS manages its permissions"));
    }
    if integration.role_arn_for(&grantee.account_id).name == grantee.name {
        return refuse(format!("{grantee} is the role jit-iam assumes in account {}", grantee.account_id));
    }
    Ok(())
}

/// The AWS calls applying and revoking a grant make, in order (what preview shows).
pub fn planned_calls(
    plan: &Plan,
    grantee: &Grantee,
    resource: &Resource,
    policy: Option<&GeneratedPolicy>,
) -> (Vec<PlannedCall>, Vec<PlannedCall>) {
    match (plan.mechanism, policy) {
        (Mechanism::GeneratedPolicy, Some(policy)) => generated_policy::planned_calls(grantee, resource, policy),
        (Mechanism::TemporaryPermissionSet, _) => {
            temporary_permission_set::planned_calls(grantee, resource, temporary_permission_set::PLACEHOLDER_NAME)
        }
        _ => shared::planned_calls(plan.mechanism, grantee, resource),
    }
}

/// A step that did not go through.
#[derive(Debug)]
pub enum StepError {
    Aws(AwsError),
    Quota(String),
    /// The principal of the grant's name is someone else now.
    PrincipalChanged(String),
    /// A policy of the grant's name is not the grant's own.
    PolicyConflict(String),
    /// Identity Center could not provision an assignment (its reason).
    ProvisioningFailed(String),
    /// Identity Center is still provisioning an assignment: looked at again.
    ProvisioningInProgress(String),
}

impl StepError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Aws(e) if e.is_retryable()) || matches!(self, Self::ProvisioningInProgress(_))
    }

    /// As an AWS error, for the callers that report one (reconciliation's repairs).
    pub fn into_aws_error(self) -> AwsError {
        match self {
            Self::Aws(e) => e,
            other => {
                let error = other.into_grant_error();
                AwsError::new(AwsErrorKind::Rejected, "jit-iam", error.message)
            }
        }
    }

    pub fn into_grant_error(self) -> GrantError {
        match self {
            Self::Aws(e) => {
                let code = match e.kind {
                    AwsErrorKind::AccessDenied => GrantErrorCode::AwsAccessDenied,
                    AwsErrorKind::Throttled => GrantErrorCode::AwsThrottled,
                    AwsErrorKind::Transient => GrantErrorCode::AwsUnavailable,
                    _ => GrantErrorCode::AwsError,
                };
                GrantError { code, message: e.to_string(), aws: Some(e.body()) }
            }
            Self::Quota(message) => GrantError { code: GrantErrorCode::QuotaExceeded, message, aws: None },
            Self::PrincipalChanged(message) => {
                GrantError { code: GrantErrorCode::PrincipalChanged, message, aws: None }
            }
            Self::PolicyConflict(message) => GrantError { code: GrantErrorCode::PolicyConflict, message, aws: None },
            Self::ProvisioningFailed(message) => {
                GrantError { code: GrantErrorCode::ProvisioningFailed, message, aws: None }
            }
            Self::ProvisioningInProgress(message) => {
                GrantError { code: GrantErrorCode::ProvisioningInProgress, message, aws: None }
            }
        }
    }
}

impl From<AwsError> for StepError {
    fn from(e: AwsError) -> Self {
        Self::Aws(e)
    }
}

/// The outcome of a step: the database failing is the worker's to retry (the
/// lease runs out); a step error is the grant's.
pub type StepResult<T> = Result<Result<T, StepError>, sqlx::Error>;

/// Makes the IAM change of a pending grant. Ok(true) when the grant holds a
/// shared attachment.
pub async fn apply(
    iam: &impl IamChanges,
    ledger: &mut impl Ledger,
    grant: &Grant,
    quotas: &Quotas,
) -> StepResult<bool> {
    match mechanism_of(grant) {
        Some(Mechanism::GeneratedPolicy) => {
            Ok(generated_policy::apply(iam, ledger, grant, quotas).await?.map(|()| false))
        }
        Some(Mechanism::TemporaryPermissionSet) => {
            Ok(temporary_permission_set::apply(iam, ledger, grant).await?.map(|()| false))
        }
        Some(mechanism) => shared::apply(iam, ledger, grant, mechanism, quotas).await,
        None => Ok(Err(StepError::Aws(AwsError::new(AwsErrorKind::Rejected, "jit-iam", unregistered(grant))))),
    }
}

/// Takes a grant's access away (or undoes a failed apply); removes nothing
/// the grantee had before and nothing another live grant still holds. The
/// answer: until when the sessions the grant gave are denied, if it gave any.
pub async fn revoke(
    iam: &impl IamChanges,
    ledger: &mut impl Ledger,
    grant: &Grant,
) -> StepResult<Option<DateTime<Utc>>> {
    match mechanism_of(grant) {
        Some(Mechanism::GeneratedPolicy) => Ok(generated_policy::revoke(iam, grant).await),
        Some(Mechanism::TemporaryPermissionSet) => {
            Ok(temporary_permission_set::revoke(iam, grant).await.map(|()| None))
        }
        Some(mechanism) => Ok(shared::revoke(iam, ledger, grant, mechanism).await?.map(|()| None)),
        // Never applied: nothing to take away.
        None => Ok(Ok(None)),
    }
}

/// The session duration of the permission set a grant assigns, read after
/// the grant is applied or revoked: sessions issued before the end last that
/// long (deleting an assignment does not end them). None for other grants,
/// and when it cannot be read (the failed call is in the grant's events).
pub async fn session_duration(iam: &impl IamChanges, grant: &Grant) -> Option<i32> {
    if mechanism_of(grant) != Some(Mechanism::PermissionSetAssignment) {
        return None;
    }
    iam.session_duration(&grant.resource_arn).await.ok().flatten()
}

/// The grant's mechanism, from [`mechanism`]. Submission stores only grants
/// that have one; None for a row that does not (nothing is applied).
pub fn mechanism_of(grant: &Grant) -> Option<Mechanism> {
    mechanism(grant.resource_type(), grant.grantee().principal_type)
}

fn unregistered(grant: &Grant) -> String {
    format!("no mechanism grants a {} to an {}", grant.resource_type, grant.grantee().principal_type.label())
}

/// Before a change: the principal of the grant's name must still be the one
/// the grant was approved for (same IAM unique id). One that is gone is left
/// to the change itself to report.
async fn verify_principal(iam: &impl IamChanges, grant: &Grant) -> Result<(), StepError> {
    let Some(approved) = &grant.principal_id else { return Ok(()) };
    let grantee = grant.grantee();
    match iam.principal_id(grantee.principal_type, &grantee.name).await? {
        Some(current) if current != *approved => Err(StepError::PrincipalChanged(format!(
            "{grantee} is not the principal the grant was approved for: it was deleted and recreated \
             (unique id {current}, approved {approved})"
        ))),
        _ => Ok(()),
    }
}

/// The shared attachment a grant of a shared mechanism holds.
pub(crate) fn attachment_key<'a>(grant: &'a Grant, grantee: &'a Grantee, mechanism: Mechanism) -> AttachmentKey<'a> {
    let (kind, target) = match mechanism {
        Mechanism::GroupMembership => ("group", Cow::Borrowed(grant.resource_name.as_str())),
        // By the group's id (its ARN's last part): display names change.
        Mechanism::IdentityCenterMembership => ("group", Cow::Borrowed(identity_center_group_id(&grant.resource_arn))),
        Mechanism::PermissionSetAssignment => ("assignment", Cow::Owned(shared::assignment_target(grant))),
        Mechanism::GeneratedPolicy | Mechanism::AttachPolicy | Mechanism::TemporaryPermissionSet => {
            ("policy", Cow::Borrowed(grant.resource_arn.as_str()))
        }
    };
    AttachmentKey { grantee, kind, target }
}

/// A shared attachment is jit-iam's once recorded as attached.
fn is_attached(attachment: &Option<SharedAttachment>) -> bool {
    attachment.as_ref().is_some_and(|a| a.state == "attached")
}

/// The id of an Identity Center group, from its ARN (`arn:aws:identitystore:::group/<id>`).
pub(crate) fn identity_center_group_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
