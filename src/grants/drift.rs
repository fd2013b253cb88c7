//! Drift, per mechanism: what an account holds for a grant against what the
//! grant says, read from one snapshot of the account's IAM, and how each
//! finding is put back through [`IamChanges`]. The reconciliation worker only
//! schedules, leases, reads the snapshot and records what these decide.
//!
//! Identity Center group memberships and permission set assignments are not
//! in the snapshot (it reads IAM only): [`covers`] leaves their grants out of
//! it, and [`of_identity_center_grant`] reads each active one's itself.

use serde_json::Value;
use uuid::Uuid;

use super::{
    attachment_key, identity_center_group_id, mechanism_of, shared, temporary_permission_set, Ledger, Mechanism,
};
use crate::aws::iam_changes::{IamChanges, Provisioning};
use crate::aws::reconcile::{IamSnapshot, PolicyState, PrincipalState};
use crate::aws::{AwsError, AwsErrorKind};
use crate::domain::grant::Grant;
use crate::domain::grant::Grantee;
use crate::domain::policy::{GeneratedPolicy, GRANT_ID_TAG, INSTALLATION_ID_TAG};
use crate::domain::reconcile::FindingKind;

/// A finding before anything is done about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub kind: FindingKind,
    /// The policy ARN, group or principal name the finding is about.
    pub target: String,
    pub evidence: String,
}

impl Drift {
    fn new(kind: FindingKind, target: &str, evidence: impl Into<String>) -> Self {
        Self { kind, target: target.to_string(), evidence: evidence.into() }
    }
}

/// Whether the grant's drift is read from the IAM snapshot: its mechanism changes IAM.
pub fn covers(grant: &Grant) -> bool {
    mechanism_of(grant).is_some_and(|m| !is_identity_center(m))
}

fn is_identity_center(mechanism: Mechanism) -> bool {
    matches!(
        mechanism,
        Mechanism::IdentityCenterMembership | Mechanism::PermissionSetAssignment | Mechanism::TemporaryPermissionSet
    )
}

/// What an active Identity Center grant misses, read from Identity Center
/// (`GetUserId`/`GetGroupId`, then `GetGroupMembershipId` or
/// `ListAccountAssignments`): the approved principal gone or replaced under
/// its name (reported), or the membership or assignment removed.
pub async fn of_identity_center_grant(
    iam: &impl IamChanges,
    ledger: &mut impl Ledger,
    grant: &Grant,
) -> Result<Result<Vec<Drift>, AwsError>, sqlx::Error> {
    let (Some(mechanism), Some(principal_id)) =
        (mechanism_of(grant).filter(|m| is_identity_center(*m)), grant.principal_id.as_deref())
    else {
        return Ok(Ok(Vec::new()));
    };
    let holds = match mechanism {
        Mechanism::TemporaryPermissionSet => grant.policy_arn.is_some(),
        _ => grant.holds_attachment,
    };
    if !holds {
        return Ok(Ok(Vec::new()));
    }
    let grantee = grant.grantee();
    let permission_set = async {
        match (mechanism, &grant.policy_arn) {
            (Mechanism::TemporaryPermissionSet, Some(arn)) => iam.inline_policy(arn).await.map(Some),
            _ => Ok(None),
        }
    };
    let held = async {
        match mechanism {
            Mechanism::PermissionSetAssignment => iam.assignment_exists(&shared::assignment(grant)?).await,
            Mechanism::TemporaryPermissionSet => {
                let arn = grant.policy_arn.as_deref().unwrap_or_default();
                match temporary_permission_set::assignment(grant, arn) {
                    Ok(assignment) => iam.assignment_exists(&assignment).await,
                    Err(_) => Ok(false),
                }
            }
            _ => Ok(iam
                .identity_center_membership(identity_center_group_id(&grant.resource_arn), principal_id)
                .await?
                .is_some()),
        }
    };
    let (current, held, permission_set) =
        tokio::join!(iam.principal_id(grantee.principal_type, &grantee.name), held, permission_set);
    let (current, held, permission_set) = match (current, held, permission_set) {
        (Ok(current), Ok(held), Ok(permission_set)) => (current, held, permission_set),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Ok(Err(e)),
    };
    if current.as_deref() != Some(principal_id) {
        let evidence = match current {
            Some(other) => format!(
                "{grantee} was deleted; the name now belongs to another {} (id {other}), which is not the grantee",
                grantee.principal_type.noun()
            ),
            None => format!("{grantee} was deleted or renamed: its access went with it or stays with it"),
        };
        return Ok(Ok(vec![Drift::new(FindingKind::PrincipalChanged, &grantee.name, evidence)]));
    }
    if mechanism == Mechanism::TemporaryPermissionSet {
        return Ok(Ok(of_temporary_permission_set(grant, &grantee, held, permission_set.flatten())));
    }
    if held {
        return Ok(Ok(Vec::new()));
    }
    let key = attachment_key(grant, &grantee, mechanism);
    let preexisting = ledger.attachment(&key).await?;
    let what = match mechanism {
        Mechanism::PermissionSetAssignment => "the permission set's assignment",
        _ => "the group's membership",
    };
    Ok(Ok(vec![match preexisting.is_some_and(|a| a.preexisting) {
        true => Drift::new(
            FindingKind::PreexistingAccessRemoved,
            &key.target,
            format!("{grantee} no longer has {what} it had before the grant, which the grant still needs"),
        ),
        false => Drift::new(FindingKind::AccessMissing, &key.target, format!("{grantee} no longer has {what}")),
    }]))
}

/// A temporary permission set's findings: deleted (its inline policy
/// unreadable), its inline policy not the document jit-iam wrote, unassigned.
fn of_temporary_permission_set(
    grant: &Grant,
    grantee: &Grantee,
    assigned: bool,
    inline_policy: Option<String>,
) -> Vec<Drift> {
    let arn = grant.policy_arn.as_deref().unwrap_or_default();
    let Some(inline_policy) = inline_policy else {
        return vec![Drift::new(FindingKind::AccessMissing, arn, "the grant's temporary permission set was deleted")];
    };
    let mut drifts = Vec::new();
    let written = grant.policy_document.as_ref().and_then(|d| serde_json::to_value(d).ok());
    if serde_json::from_str::<Value>(&inline_policy).ok() != written {
        let evidence = "its inline policy is not the document jit-iam wrote";
        drifts.push(Drift::new(FindingKind::PolicyModified, arn, evidence));
    }
    if !assigned {
        let evidence = format!("the permission set is not assigned to {grantee} in account {}", grant.account_id);
        drifts.push(Drift::new(FindingKind::AccessMissing, arn, evidence));
    }
    drifts
}

/// The grant's principal in the snapshot, found by its unique id (by name for
/// grants from before ids); a `principal_changed` finding when it is gone.
pub fn principal<'a>(snapshot: &'a IamSnapshot, grant: &Grant) -> Result<&'a PrincipalState, Drift> {
    let grantee = grant.grantee();
    let found = match &grant.principal_id {
        Some(id) => snapshot.by_id(grantee.principal_type, id),
        None => snapshot.by_name(grantee.principal_type, &grantee.name),
    };
    found.ok_or_else(|| {
        let evidence = match snapshot.by_name(grantee.principal_type, &grantee.name) {
            Some(other) => format!(
                "{grantee} was deleted; the name now belongs to another principal (id {}), which is not the grantee",
                other.id
            ),
            None => format!("{grantee} was deleted: its access went with it"),
        };
        Drift::new(FindingKind::PrincipalChanged, &grantee.name, evidence)
    })
}

/// A renamed principal keeps the access under its new name: reported only.
pub fn renamed(grant: &Grant, principal: &PrincipalState) -> Option<Drift> {
    let grantee = grant.grantee();
    (principal.name != grantee.name).then(|| {
        let evidence = format!("{grantee} was renamed to {}; the access went with it", principal.name);
        Drift::new(FindingKind::PrincipalChanged, &grantee.name, evidence)
    })
}

/// What an active grant's access misses, or has altered.
pub async fn of_active_grant(
    ledger: &mut impl Ledger,
    snapshot: &IamSnapshot,
    grant: &Grant,
    principal: &PrincipalState,
) -> Result<Vec<Drift>, sqlx::Error> {
    let Some(mechanism) = mechanism_of(grant).filter(|_| covers(grant)) else { return Ok(Vec::new()) };
    let mut drifts = Vec::new();
    match mechanism {
        Mechanism::GeneratedPolicy => {
            let arn = grant.policy_arn.as_deref().unwrap_or_default();
            let written = grant.policy_document.as_ref().map(|d| serde_json::to_value(d).unwrap_or_default());
            let Some(policy) = snapshot.policies.get(arn) else {
                return Ok(vec![Drift::new(FindingKind::AccessMissing, arn, "the grant's policy was deleted")]);
            };
            let current = policy.default_document().and_then(|d| serde_json::from_str::<Value>(d).ok());
            if current != written {
                let evidence = format!("default version {} is not the document jit-iam wrote", policy.default_version);
                drifts.push(Drift::new(FindingKind::PolicyModified, arn, evidence));
            }
            if !principal.attached.iter().any(|a| a == arn) {
                let evidence = format!("the policy is not attached to {}", principal.name);
                drifts.push(Drift::new(FindingKind::AccessMissing, arn, evidence));
            }
        }
        _ if !grant.holds_attachment => {}
        Mechanism::IdentityCenterMembership
        | Mechanism::PermissionSetAssignment
        | Mechanism::TemporaryPermissionSet => {}
        Mechanism::AttachPolicy | Mechanism::GroupMembership => {
            let (held, target, what) = held_now(grant, mechanism, principal);
            if held {
                return Ok(drifts);
            }
            let grantee = grant.grantee();
            let preexisting = ledger.attachment(&attachment_key(grant, &grantee, mechanism)).await?;
            // Access the grantee had before the grant, taken away since: put
            // back for the grant, it is the grant's own from then on.
            drifts.push(match preexisting.is_some_and(|a| a.preexisting) {
                true => Drift::new(
                    FindingKind::PreexistingAccessRemoved,
                    target,
                    format!(
                        "{} no longer has the {what} it had before the grant, which the grant still needs",
                        principal.name
                    ),
                ),
                false => Drift::new(
                    FindingKind::AccessMissing,
                    target,
                    match mechanism {
                        Mechanism::GroupMembership => format!("{} is not in the group", principal.name),
                        _ => format!("the policy is not attached to {}", principal.name),
                    },
                ),
            });
        }
    }
    Ok(drifts)
}

/// Whether the principal holds a shared grant's policy or membership now; its target and what it is.
fn held_now<'a>(grant: &'a Grant, mechanism: Mechanism, principal: &PrincipalState) -> (bool, &'a str, &'static str) {
    match mechanism {
        Mechanism::GroupMembership => {
            (principal.groups.contains(&grant.resource_name), &grant.resource_name, "membership")
        }
        _ => (principal.attached.contains(&grant.resource_arn), &grant.resource_arn, "policy"),
    }
}

/// What a repair did beyond putting the access back.
#[derive(Debug, PartialEq, Eq)]
pub enum Repaired {
    /// As the grant says.
    Restored,
    /// Shared access that was the grantee's before the grant is now the
    /// grant's own: the last grant holding it removes it.
    NowTheGrantsOwn,
}

/// Puts one finding of an active grant back, under the principal's name now
/// (`principal`; None for an Identity Center grant, which goes by ids). Call it holding the grant's row lock: a revocation waits,
/// then removes what the repair put back. Shared access jit-iam puts back is
/// recorded as jit-iam's, whatever it was before.
pub async fn repair(
    iam: &impl IamChanges,
    ledger: &mut impl Ledger,
    snapshot: &IamSnapshot,
    grant: &Grant,
    principal: Option<&PrincipalState>,
    drift: &Drift,
    installation_id: Uuid,
) -> Result<Result<Repaired, AwsError>, sqlx::Error> {
    let Some(mechanism) = mechanism_of(grant) else { return Ok(Ok(Repaired::Restored)) };
    let holder =
        Grantee { name: principal.map_or(grant.principal_name.clone(), |p| p.name.clone()), ..grant.grantee() };
    let repaired = match (drift.kind, mechanism) {
        (kind, Mechanism::TemporaryPermissionSet) => {
            match temporary_permission_set::repair(iam, ledger, grant, kind).await? {
                Ok(()) => Ok(()),
                Err(e) => Err(e.into_aws_error()),
            }
        }
        (FindingKind::PolicyModified, _) => match snapshot.policies.get(&drift.target) {
            Some(policy) => restore(iam, policy, grant).await,
            None => Ok(()),
        },
        (_, Mechanism::GeneratedPolicy) => recreate_and_attach(iam, snapshot, grant, &holder, installation_id).await,
        (_, Mechanism::AttachPolicy) => iam.attach_policy(&holder, &grant.resource_arn).await,
        (_, Mechanism::GroupMembership) => iam.add_to_group(&holder.name, &grant.resource_name).await,
        (_, Mechanism::IdentityCenterMembership) => match &grant.principal_id {
            Some(user_id) => iam.create_group_membership(identity_center_group_id(&grant.resource_arn), user_id).await,
            None => Ok(()),
        },
        (_, Mechanism::PermissionSetAssignment) => reassign(iam, grant).await,
    };
    if let Err(e) = repaired {
        return Ok(Err(e));
    }
    if !mechanism.is_shared() {
        return Ok(Ok(Repaired::Restored));
    }
    let grantee = grant.grantee();
    ledger.record_attached(&attachment_key(grant, &grantee, mechanism), false).await?;
    Ok(Ok(match drift.kind {
        FindingKind::PreexistingAccessRemoved => Repaired::NowTheGrantsOwn,
        _ => Repaired::Restored,
    }))
}

/// Assigns the grant's permission set again; a provisioning still in progress
/// counts as done (the next run looks again), a failed one is the repair's failure.
async fn reassign(iam: &impl IamChanges, grant: &Grant) -> Result<(), AwsError> {
    let assignment = shared::assignment(grant)?;
    match iam.create_assignment(&assignment).await? {
        Provisioning::Succeeded | Provisioning::InProgress => Ok(()),
        Provisioning::Failed(reason) => {
            Err(AwsError::new(AwsErrorKind::Rejected, "sso:CreateAccountAssignment", reason))
        }
    }
}

/// Makes the document jit-iam wrote the policy's only version: the other
/// versions go first (IAM keeps at most five), then the written document
/// becomes a new default, then the modified default goes.
async fn restore(iam: &impl IamChanges, policy: &PolicyState, grant: &Grant) -> Result<(), AwsError> {
    let document = grant.policy_document.as_ref().map(|d| d.to_json()).unwrap_or_default();
    for (version, _) in policy.versions.iter().filter(|(v, _)| *v != policy.default_version) {
        iam.delete_policy_version(&policy.arn, version).await?;
    }
    iam.create_policy_version(&policy.arn, &document).await?;
    iam.delete_policy_version(&policy.arn, &policy.default_version).await
}

/// The grant's policy made again if it was deleted, and attached to the grantee (under its name now).
async fn recreate_and_attach(
    iam: &impl IamChanges,
    snapshot: &IamSnapshot,
    grant: &Grant,
    holder: &Grantee,
    installation_id: Uuid,
) -> Result<(), AwsError> {
    let (Some(name), Some(arn), Some(document)) = (&grant.policy_name, &grant.policy_arn, &grant.policy_document)
    else {
        return Ok(());
    };
    if !snapshot.policies.contains_key(arn) {
        let policy = GeneratedPolicy { name: name.clone(), arn: arn.clone() };
        let tags = GeneratedPolicy::tags(Some(installation_id), grant.grant_id, &grant.resource_arn);
        iam.create_policy(&policy, &document.to_json(), &tags).await?;
    }
    iam.attach_policy(holder, arn).await
}

/// A shared policy or membership jit-iam removed when the grant ended, and
/// there again: someone gave it since, so it is reported, never removed.
pub fn given_again(snapshot: &IamSnapshot, grant: &Grant) -> Option<Drift> {
    let mechanism = mechanism_of(grant).filter(|_| covers(grant))?;
    let principal = principal(snapshot, grant).ok()?;
    let (held, target, _) = held_now(grant, mechanism, principal);
    held.then(|| {
        let evidence = format!(
            "{} has it again after jit-iam removed it at the grant's end: given since by someone else, not jit-iam's to remove",
            principal.name
        );
        Drift::new(FindingKind::AccessLeftAfterEnd, target, evidence)
    })
}

/// An Identity Center membership or assignment jit-iam removed when the
/// grant ended, and there again (read from Identity Center): reported, never
/// removed, as [`given_again`].
pub async fn given_again_in_identity_center(iam: &impl IamChanges, grant: &Grant) -> Result<Option<Drift>, AwsError> {
    let (Some(mechanism), Some(principal_id)) = (mechanism_of(grant), grant.principal_id.as_deref()) else {
        return Ok(None);
    };
    let (held, target) = match mechanism {
        Mechanism::PermissionSetAssignment => {
            (iam.assignment_exists(&shared::assignment(grant)?).await?, shared::assignment_target(grant))
        }
        Mechanism::IdentityCenterMembership => {
            let group = identity_center_group_id(&grant.resource_arn);
            (iam.identity_center_membership(group, principal_id).await?.is_some(), group.to_string())
        }
        _ => return Ok(None),
    };
    Ok(held.then(|| {
        let evidence = format!(
            "{} has it again after jit-iam removed it at the grant's end: given since by someone else, not jit-iam's to remove",
            grant.grantee()
        );
        Drift::new(FindingKind::AccessLeftAfterEnd, &target, evidence)
    }))
}

/// A policy under jit-iam's path that no grant here knows is this
/// installation's orphan only when tagged `managed-by=jit-iam` with its
/// installation id; anything else (another installation's live grants,
/// policies from before installation ids) is left alone. The finding's evidence when it is.
pub fn orphan(arn: &str, tags: &[(String, String)], installation_id: Uuid) -> Option<Drift> {
    let installation = installation_id.to_string();
    let tagged = |key: &str, value: &str| tags.iter().any(|(k, v)| k == key && v == value);
    if !(tagged("managed-by", "jit-iam") && tagged(INSTALLATION_ID_TAG, &installation)) {
        return None;
    }
    let evidence = match tags.iter().find(|(k, _)| k == GRANT_ID_TAG) {
        Some((_, id)) => format!("tagged for grant {id}, which jit-iam does not know"),
        None => "tagged as this installation's, for no grant".into(),
    };
    Some(Drift::new(FindingKind::OrphanedPolicy, arn, evidence))
}

/// Detaches a policy from every user, role and group holding it, then
/// deletes it: its other versions first (IAM deletes a policy only without them).
pub async fn remove_policy(
    iam: &impl IamChanges,
    snapshot: &IamSnapshot,
    arn: &str,
    account: &str,
) -> Result<(), AwsError> {
    let (principals, groups) = snapshot.holders(arn);
    for (principal_type, name) in principals {
        iam.detach_policy(&Grantee { principal_type, name, account_id: account.to_string() }, arn).await?;
    }
    for group in groups {
        iam.detach_group_policy(&group, arn).await?;
    }
    if let Some(policy) = snapshot.policies.get(arn) {
        for (version, _) in policy.versions.iter().filter(|(v, _)| *v != policy.default_version) {
            iam.delete_policy_version(arn, version).await?;
        }
    }
    iam.delete_policy(arn).await
}
