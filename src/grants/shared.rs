//! IAM policies and IAM groups: an attachment of an existing managed policy,
//! or a group membership, that several grants (and the grantee before any
//! grant) may share.
//!
//! Apply: when the grantee already has it (before any grant, or through
//! another live grant), nothing changes and the grant only joins the holders;
//! otherwise it is recorded as "attaching" (committed), then made. Revoke:
//! removed only when no other live grant holds it and the grantee did not
//! have it before. Changes to one grantee are serialized by its lock, so
//! holders and quotas are counted without races across replicas.

use super::{
    attachment_key, is_attached, Ledger, Mechanism, Plan, PlannedCall, PolicyQuota, Quotas, Refusal, StepError,
    StepResult, MAX_GROUPS_PER_USER,
};
use crate::aws::iam_changes::{policy_operations, IamChanges};
use crate::aws::{AwsError, AwsErrorKind};
use crate::domain::grant::{Grantee, PrincipalType};
use crate::domain::resource::Resource;
use crate::storage::grants::GrantRow;

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

/// Groups have users as members, never roles.
pub(super) fn plan_group(grantee: &Grantee) -> Result<Plan, Refusal> {
    if grantee.principal_type != PrincipalType::IamUser {
        return Err(Refusal::Invalid {
            field: "principal.type",
            message: "an IAM group grant needs an IAM user: a role cannot be a group member".into(),
        });
    }
    Ok(Plan { mechanism: Mechanism::GroupMembership, policy: None, quota: None })
}

pub(super) fn planned_calls(
    mechanism: Mechanism,
    grantee: &Grantee,
    resource: &Resource,
) -> (Vec<PlannedCall>, Vec<PlannedCall>) {
    let first = Some("unless another live grant holds it already");
    let last = Some("only when no other live grant holds it and the grantee did not have it before");
    let (list, add, remove, target) = match mechanism {
        Mechanism::GroupMembership => {
            ("iam:ListGroupsForUser", "iam:AddUserToGroup", "iam:RemoveUserFromGroup", &resource.name)
        }
        _ => {
            let ops = policy_operations(grantee.principal_type);
            (ops.list_attached, ops.attach, ops.detach, &resource.arn)
        }
    };
    (
        vec![
            PlannedCall::new(list, &grantee.name, first),
            PlannedCall::new(add, target, Some("unless the grantee has it already")),
        ],
        vec![PlannedCall::new(remove, target, last)],
    )
}

/// What IAM holds for the grantee now: its policies, or its groups.
async fn current(iam: &impl IamChanges, grantee: &Grantee, mechanism: Mechanism) -> Result<Vec<String>, AwsError> {
    match mechanism {
        Mechanism::GroupMembership => iam.groups_of(&grantee.name).await,
        _ => iam.attached_policies(grantee).await,
    }
}

pub(super) async fn apply(
    iam: &impl IamChanges,
    ledger: &mut impl Ledger,
    grant: &GrantRow,
    mechanism: Mechanism,
    quotas: &Quotas,
) -> StepResult<bool> {
    let grantee = grant.grantee();
    let key = attachment_key(grant, &grantee, mechanism);
    let existing = ledger.attachment(&key).await?;
    if is_attached(&existing) {
        return Ok(Ok(true));
    }
    if mechanism == Mechanism::GroupMembership && grantee.principal_type != PrincipalType::IamUser {
        let refused = AwsError::new(AwsErrorKind::Rejected, "iam:AddUserToGroup", "a role cannot be a group member");
        return Ok(Err(refused.into()));
    }
    // No record: the first holder. An "attaching" record: an earlier try may have made the change.
    let recovering = existing.is_some();
    let current = match current(iam, &grantee, mechanism).await {
        Ok(current) => current,
        Err(e) => return Ok(Err(e.into())),
    };
    if current.iter().any(|c| c == key.target) {
        ledger.record_attached(&key, !recovering).await?;
        return Ok(Ok(true));
    }
    let max = match mechanism {
        Mechanism::GroupMembership => MAX_GROUPS_PER_USER,
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
        Mechanism::GroupMembership => iam.add_to_group(&grantee.name, key.target).await,
        _ => iam.attach_policy(&grantee, key.target).await,
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
    grant: &GrantRow,
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
    if !attachment.preexisting {
        let removed = match mechanism {
            Mechanism::GroupMembership => iam.remove_from_group(&grantee.name, key.target).await,
            _ => iam.detach_policy(&grantee, key.target).await,
        };
        if let Err(e) = removed {
            return Ok(Err(e.into()));
        }
    }
    ledger.forget(&key).await?;
    Ok(Ok(()))
}
