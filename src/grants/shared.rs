//! IAM policies, IAM groups and Identity Center groups: an attachment of an
//! existing managed policy, or a group membership, that several grants (and
//! the grantee before any grant) may share.
//!
//! Apply: when the grantee already has it (before any grant, or through
//! another live grant), nothing changes and the grant only joins the holders;
//! otherwise it is recorded as "attaching" (committed), then made. Revoke:
//! removed only when no other live grant holds it and the grantee did not
//! have it before. Changes to one grantee are serialized by its lock, so
//! holders and quotas are counted without races across replicas.
//!
//! Identity Center memberships are made, found and deleted by the user's
//! unique id (the one approved) and the group's: a user recreated under the
//! grantee's name is never given nor deprived of anything.

use super::{
    attachment_key, identity_center_group_id, is_attached, Ledger, Mechanism, Plan, PlannedCall, PolicyQuota, Quotas,
    Refusal, StepError, StepResult, MAX_GROUPS_PER_USER,
};
use crate::aws::iam_changes::{policy_operations, Assignment, IamChanges, Provisioning};
use crate::aws::{AwsError, AwsErrorKind};
use crate::domain::grant::Grant;
use crate::domain::grant::{Grantee, PrincipalType};
use crate::domain::resource::Resource;

/// One more managed policy fits the grantee's quota, unless it is held already.
pub(super) fn plan_policy(
    resource: &Resource,
    grantee: &Grantee,
    held: &[String],
    quotas: &Quotas,
) -> Result<Plan, Refusal> {
    let adds = !held.contains(&resource.arn);
    let quota = PolicyQuota {
        attached: held.len(),
        after_grant: held.len() + usize::from(adds),
        limit: quotas.max_policies(grantee.principal_type),
    };
    if quota.after_grant > quota.limit {
        return Err(Refusal::Quota { field: "principal.name", message: quotas.policies_exceeded(grantee, held.len()) });
    }
    Ok(Plan { mechanism: Mechanism::AttachPolicy, policy: None, quota: Some(quota) })
}

pub(super) fn planned_calls(
    mechanism: Mechanism,
    grantee: &Grantee,
    resource: &Resource,
) -> (Vec<PlannedCall>, Vec<PlannedCall>) {
    let first = Some("unless another live grant holds it already");
    let last = Some("only when no other live grant holds it and the grantee did not have it before");
    if mechanism == Mechanism::PermissionSetAssignment {
        let assignment = format!("{} to {grantee}", resource.name);
        let wait = Some("until SUCCEEDED or FAILED, with backoff up to JIT_IAM_IDENTITY_CENTER_PROVISIONING_WAIT");
        return (
            vec![
                PlannedCall::new("sso:ListAccountAssignments", &resource.arn, first),
                PlannedCall::new(
                    if grantee.principal_type == PrincipalType::IdentityCenterGroup {
                        "identitystore:GetGroupId"
                    } else {
                        "identitystore:GetUserId"
                    },
                    &grantee.name,
                    Some("still the principal approved"),
                ),
                PlannedCall::new("sso:CreateAccountAssignment", &assignment, Some("unless assigned already")),
                PlannedCall::new("sso:DescribeAccountAssignmentCreationStatus", &assignment, wait),
                PlannedCall::new("sso:DescribePermissionSet", &resource.arn, Some("its session duration")),
            ],
            vec![
                PlannedCall::new("sso:DeleteAccountAssignment", &assignment, last),
                PlannedCall::new("sso:DescribeAccountAssignmentDeletionStatus", &assignment, wait),
                PlannedCall::new("sso:DescribePermissionSet", &resource.arn, Some("its session duration")),
            ],
        );
    }
    if mechanism == Mechanism::IdentityCenterMembership {
        let group = identity_center_group_id(&resource.arn);
        return (
            vec![
                PlannedCall::new("identitystore:GetGroupMembershipId", group, first),
                PlannedCall::new("identitystore:GetUserId", &grantee.name, Some("still the user approved")),
                PlannedCall::new(
                    "identitystore:CreateGroupMembership",
                    group,
                    Some("unless the user is a member already"),
                ),
            ],
            vec![
                PlannedCall::new("identitystore:GetGroupMembershipId", group, last),
                PlannedCall::new("identitystore:DeleteGroupMembership", group, last),
            ],
        );
    }
    let ops = policy_operations(grantee.principal_type);
    let (list, add, remove, holders, target) = match mechanism {
        Mechanism::GroupMembership => {
            ("iam:ListGroupsForUser", "iam:AddUserToGroup", "iam:RemoveUserFromGroup", "iam:GetGroup", &resource.name)
        }
        _ => (ops.list_attached, ops.attach, ops.detach, "iam:ListEntitiesForPolicy", &resource.arn),
    };
    (
        vec![
            PlannedCall::new(list, &grantee.name, first),
            PlannedCall::new(ops.get, &grantee.name, Some("still the principal approved")),
            PlannedCall::new(add, target, Some("unless the grantee has it already")),
        ],
        vec![
            PlannedCall::new(ops.get, &grantee.name, last),
            PlannedCall::new(holders, target, Some("when the name is no longer the grantee's: found by unique id")),
            PlannedCall::new(remove, target, last),
        ],
    )
}

/// What IAM holds for the grantee now: its policies, or its groups (for an
/// Identity Center grant, the group when the user is in it).
async fn current(
    iam: &impl IamChanges,
    grant: &Grant,
    grantee: &Grantee,
    mechanism: Mechanism,
) -> Result<Vec<String>, AwsError> {
    match mechanism {
        Mechanism::GroupMembership => iam.groups_of(&grantee.name).await,
        Mechanism::IdentityCenterMembership => {
            let group = identity_center_group_id(&grant.resource_arn);
            let membership = iam.identity_center_membership(group, identity_center_user_id(grant)?).await?;
            Ok(membership.map(|_| group.to_string()).into_iter().collect())
        }
        Mechanism::PermissionSetAssignment => {
            let assignment = assignment(grant)?;
            let exists = iam.assignment_exists(&assignment).await?;
            Ok(exists.then(|| assignment_target(grant)).into_iter().collect())
        }
        _ => iam.attached_policies(grantee).await,
    }
}

/// The approved Identity Center user's id: memberships go by it, never by name.
fn identity_center_user_id(grant: &Grant) -> Result<&str, AwsError> {
    grant.principal_id.as_deref().ok_or_else(|| {
        let message = format!("no unique id was recorded for {}", grant.grantee());
        AwsError::new(AwsErrorKind::Rejected, "identitystore:CreateGroupMembership", message)
    })
}

/// The assignment a permission set grant makes: to the approved user's or
/// group's id, never by name.
pub(crate) fn assignment(grant: &Grant) -> Result<Assignment, AwsError> {
    let rejected = |message: String| AwsError::new(AwsErrorKind::Rejected, "sso:CreateAccountAssignment", message);
    let principal_id = grant
        .principal_id
        .clone()
        .ok_or_else(|| rejected(format!("no unique id was recorded for {}", grant.grantee())))?;
    let account_id =
        grant.target_account_id.clone().ok_or_else(|| rejected("the grant names no target account".into()))?;
    Ok(Assignment {
        permission_set_arn: grant.resource_arn.clone(),
        account_id,
        principal_type: grant.grantee().principal_type,
        principal_id,
    })
}

/// How the ledger names an assignment: permission set and account.
pub(crate) fn assignment_target(grant: &Grant) -> String {
    format!("{}@{}", grant.resource_arn, grant.target_account_id.as_deref().unwrap_or_default())
}

/// A provisioning that did not succeed, as the step's error.
fn provisioning_error(provisioning: Provisioning, operation: &str, assignment: &Assignment) -> Option<StepError> {
    match provisioning {
        Provisioning::Succeeded => None,
        Provisioning::Failed(reason) => Some(StepError::ProvisioningFailed(format!(
            "Identity Center could not provision the assignment of {} in account {}: {reason}",
            assignment.permission_set_arn, assignment.account_id
        ))),
        Provisioning::InProgress => Some(StepError::ProvisioningInProgress(format!(
            "{operation} of {} in account {} is still in progress: looked at again with backoff",
            assignment.permission_set_arn, assignment.account_id
        ))),
    }
}

pub(super) async fn apply(
    iam: &impl IamChanges,
    ledger: &mut impl Ledger,
    grant: &Grant,
    mechanism: Mechanism,
    quotas: &Quotas,
) -> StepResult<bool> {
    let grantee = grant.grantee();
    let key = attachment_key(grant, &grantee, mechanism);
    let existing = ledger.attachment(&key).await?;
    if is_attached(&existing) {
        return Ok(Ok(true));
    }
    // No record: the first holder. An "attaching" record: an earlier try may have made the change.
    let recovering = existing.is_some();
    let (current, verified) =
        tokio::join!(current(iam, grant, &grantee, mechanism), super::verify_principal(iam, grant));
    if let Err(e) = verified {
        return Ok(Err(e));
    }
    let current = match current {
        Ok(current) => current,
        Err(e) => return Ok(Err(e.into())),
    };
    if current.iter().any(|c| *c == key.target) {
        ledger.record_attached(&key, !recovering).await?;
        return Ok(Ok(true));
    }
    let max = match mechanism {
        Mechanism::GroupMembership => MAX_GROUPS_PER_USER,
        // Identity Center's limit on a user's groups is not one jit-iam checks;
        // permission sets per account are checked before the grant is accepted.
        Mechanism::IdentityCenterMembership | Mechanism::PermissionSetAssignment => usize::MAX,
        _ => quotas.max_policies(grantee.principal_type),
    };
    if current.len() + 1 > max {
        return Ok(Err(StepError::Quota(match mechanism {
            Mechanism::GroupMembership => format!("{grantee} is in {} groups and IAM allows {max}", current.len()),
            _ => quotas.policies_exceeded(&grantee, current.len()),
        })));
    }
    ledger.record_attaching(&key).await?;
    let changed = match mechanism {
        Mechanism::GroupMembership => iam.add_to_group(&grantee.name, &key.target).await,
        Mechanism::IdentityCenterMembership => match identity_center_user_id(grant) {
            Ok(user_id) => iam.create_group_membership(&key.target, user_id).await,
            Err(e) => Err(e),
        },
        Mechanism::PermissionSetAssignment => {
            let provisioned = match assignment(grant) {
                Ok(assignment) => provision(iam, &assignment).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = provisioned {
                return Ok(Err(e));
            }
            Ok(())
        }
        _ => iam.attach_policy(&grantee, &key.target).await,
    };
    if let Err(e) = changed {
        return Ok(Err(e.into()));
    }
    ledger.record_attached(&key, false).await?;
    Ok(Ok(true))
}

pub(super) async fn revoke(
    iam: &impl IamChanges,
    ledger: &mut impl Ledger,
    grant: &Grant,
    mechanism: Mechanism,
) -> StepResult<()> {
    let grantee = grant.grantee();
    let key = attachment_key(grant, &grantee, mechanism);
    let Some(attachment) = ledger.attachment(&key).await? else {
        return Ok(Ok(()));
    };
    if ledger.other_holders(grant).await? > 0 {
        return Ok(Ok(()));
    }
    if !attachment.preexisting && mechanism == Mechanism::IdentityCenterMembership {
        if let Err(e) = leave_identity_center_group(iam, grant, &key.target).await {
            return Ok(Err(e.into()));
        }
    } else if !attachment.preexisting && mechanism == Mechanism::PermissionSetAssignment {
        let unprovisioned = match assignment(grant) {
            Ok(assignment) => unprovision(iam, &assignment).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = unprovisioned {
            return Ok(Err(e));
        }
    } else if !attachment.preexisting {
        let removed = match holder_now(iam, grant, mechanism, &key.target).await {
            // Gone: its access went with it.
            Ok(None) => Ok(()),
            Ok(Some(name)) => match mechanism {
                Mechanism::GroupMembership => iam.remove_from_group(&name, &key.target).await,
                _ => iam.detach_policy(&Grantee { name, ..grantee.clone() }, &key.target).await.map(|_| ()),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            return Ok(Err(e.into()));
        }
    }
    ledger.forget(&key).await?;
    Ok(Ok(()))
}

/// Creates an assignment and waits for it to be provisioned.
pub(super) async fn provision(iam: &impl IamChanges, assignment: &Assignment) -> Result<(), StepError> {
    let provisioning = iam.create_assignment(assignment).await?;
    provisioning_error(provisioning, "sso:CreateAccountAssignment", assignment).map_or(Ok(()), Err)
}

/// Deletes an assignment (none: done) and waits for the deletion.
pub(super) async fn unprovision(iam: &impl IamChanges, assignment: &Assignment) -> Result<(), StepError> {
    let provisioning = iam.delete_assignment(assignment).await?;
    provisioning_error(provisioning, "sso:DeleteAccountAssignment", assignment).map_or(Ok(()), Err)
}

/// Deletes the approved user's membership of the group, found by both ids;
/// none (the user or the group gone, or removed by someone) counts as done.
async fn leave_identity_center_group(iam: &impl IamChanges, grant: &Grant, group: &str) -> Result<(), AwsError> {
    match iam.identity_center_membership(group, identity_center_user_id(grant)?).await? {
        Some(membership) => iam.delete_group_membership(&membership).await,
        None => Ok(()),
    }
}

/// The name the grantee has now, found by its IAM unique id: the access is
/// removed under that name and never from someone else who took the old one.
/// None when no principal has that id any more. (Grants from before ids were
/// recorded go by name.)
async fn holder_now(
    iam: &impl IamChanges,
    grant: &Grant,
    mechanism: Mechanism,
    target: &str,
) -> Result<Option<String>, AwsError> {
    let grantee = grant.grantee();
    let Some(approved) = &grant.principal_id else { return Ok(Some(grantee.name)) };
    if iam.principal_id(grantee.principal_type, &grantee.name).await?.as_ref() == Some(approved) {
        return Ok(Some(grantee.name));
    }
    // Renamed, or deleted (and perhaps recreated under the name): look for the
    // id among those who hold the access.
    let holders = match mechanism {
        Mechanism::GroupMembership => iam.group_members(target).await?,
        _ => iam.policy_holders(target, grantee.principal_type).await?,
    };
    Ok(holders.into_iter().find(|holder| holder.id == *approved).map(|holder| holder.name))
}
