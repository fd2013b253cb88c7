//! EC2 instances, S3 buckets and IAM roles to Identity Center users and
//! groups: a permission set made for the grant
//! (`domain::policy::TemporaryPermissionSet` names it), whose inline policy
//! is the document a generated IAM policy would have, assigned to the
//! principal in the resource's account.
//!
//! Apply: CreatePermissionSet (beside a check that the principal is still
//! the one approved; its session duration the grant's remaining time, within
//! Identity Center's 1 to 12 hours), its ARN recorded at once, then
//! PutInlinePolicyToPermissionSet, then CreateAccountAssignment (which
//! provisions the permission set to the account: Identity Center creates its
//! role there), followed until provisioned. A retry with the ARN recorded
//! goes on from there; one whose try created the permission set and died
//! before recording it meets it (`ConflictException`: names are unique in an
//! instance) and adopts it when its description names the grant; an expired
//! grant's such set is an orphan, which reconciliation deletes.
//! Revoke: DeleteAccountAssignment, followed until done, then
//! DeletePermissionSet, which removes its role from the account: the
//! sessions the grant gave end with it.

use chrono::{DateTime, Utc};

use super::{Ledger, Mechanism, Plan, PlannedCall, Refusal, StepError, StepResult};
use crate::aws::iam_changes::{Assignment, IamChanges};
use crate::domain::access::policy_document;
use crate::domain::grant::{Grant, Grantee, PermissionSetRoom};
use crate::domain::policy::TemporaryPermissionSet;
use crate::domain::reconcile::FindingKind;
use crate::domain::resource::{AccessLevel, Resource};

/// The name preview shows: the grant id is known only once the grant is submitted.
pub const PLACEHOLDER_NAME: &str = "jit-<first 28 hex digits of the grant id>";

/// Identity Center's bounds of a permission set's session duration.
const SHORTEST_SESSION_MINUTES: i64 = 60;
const LONGEST_SESSION_MINUTES: i64 = 12 * 60;

/// The inline policy fits its limit, and one more permission set fits the
/// instance and the resource's account.
pub(super) fn plan(
    resource: &Resource,
    level: AccessLevel,
    room: Option<&PermissionSetRoom>,
    quotas: &super::Quotas,
    resource_field: &'static str,
    session_name: &str,
) -> Result<Plan, Refusal> {
    let document = policy_document(resource.resource_type, level, &resource.arn, &resource.account_id, session_name)
        .expect("every offered level of a policy type has a document");
    let quota = |message: String| Refusal::Quota { field: resource_field, message };
    let size = document.to_json().len();
    if size > quotas.max_permission_set_inline_policy {
        return Err(quota(format!(
            "the permission set's inline policy would be {size} characters; Identity Center allows {} \
             (JIT_IAM_MAX_PERMISSION_SET_INLINE_POLICY)",
            quotas.max_permission_set_inline_policy
        )));
    }
    let room = room.copied().unwrap_or_default();
    if room.in_instance >= quotas.max_permission_sets_per_instance {
        return Err(quota(format!(
            "the Identity Center instance has {} permission sets and allows {} (JIT_IAM_MAX_PERMISSION_SETS_PER_INSTANCE)",
            room.in_instance, quotas.max_permission_sets_per_instance
        )));
    }
    if room.in_account >= quotas.max_permission_sets_per_account {
        return Err(quota(format!(
            "account {} has {} permission sets provisioned and Identity Center allows {} \
             (JIT_IAM_MAX_PERMISSION_SETS_PER_ACCOUNT)",
            resource.account_id, room.in_account, quotas.max_permission_sets_per_account
        )));
    }
    Ok(Plan { mechanism: Mechanism::TemporaryPermissionSet, policy: Some(document), quota: None })
}

pub(super) fn planned_calls(
    grantee: &Grantee,
    resource: &Resource,
    name: &str,
) -> (Vec<PlannedCall>, Vec<PlannedCall>) {
    let assignment = format!("{name} in {} to {grantee}", resource.account_id);
    let wait = Some("until SUCCEEDED or FAILED, with backoff up to JIT_IAM_IDENTITY_CENTER_PROVISIONING_WAIT");
    let identity = if grantee.principal_type == crate::domain::grant::PrincipalType::IdentityCenterGroup {
        "identitystore:GetGroupId"
    } else {
        "identitystore:GetUserId"
    };
    (
        vec![
            PlannedCall::new(
                "sso:CreatePermissionSet",
                name,
                Some("session duration: the grant's remaining time, 1 to 12 hours"),
            ),
            PlannedCall::new(identity, &grantee.name, Some("beside CreatePermissionSet: still the principal approved")),
            PlannedCall::new("sso:PutInlinePolicyToPermissionSet", name, None),
            PlannedCall::new(
                "sso:CreateAccountAssignment",
                &assignment,
                Some("provisions the permission set to the account"),
            ),
            PlannedCall::new("sso:DescribeAccountAssignmentCreationStatus", &assignment, wait),
        ],
        vec![
            PlannedCall::new("sso:DeleteAccountAssignment", &assignment, None),
            PlannedCall::new("sso:DescribeAccountAssignmentDeletionStatus", &assignment, wait),
            PlannedCall::new(
                "sso:DeletePermissionSet",
                name,
                Some("removes its role from the account: its sessions end"),
            ),
        ],
    )
}

/// The name of the permission set a grant makes (stored at submission as its policy name).
pub fn name_of(grant: &Grant) -> String {
    grant
        .policy_name
        .clone()
        .unwrap_or_else(|| TemporaryPermissionSet::for_grant(grant.grant_id, grant.installation_id).name)
}

/// The session duration of a grant's permission set: its remaining time,
/// rounded up to the minute, within Identity Center's 1 to 12 hours.
pub fn session_duration(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (expires_at - now).num_seconds().max(0);
    let minutes = ((seconds + 59) / 60).clamp(SHORTEST_SESSION_MINUTES, LONGEST_SESSION_MINUTES);
    match minutes % 60 {
        0 => format!("PT{}H", minutes / 60),
        rest if minutes >= 60 => format!("PT{}H{rest}M", minutes / 60),
        rest => format!("PT{rest}M"),
    }
}

/// The assignment of the grant's permission set `arn` to the approved principal in the resource's account.
pub(super) fn assignment(grant: &Grant, arn: &str) -> Result<Assignment, StepError> {
    let principal_id = grant
        .principal_id
        .clone()
        .ok_or_else(|| StepError::PrincipalChanged(format!("no unique id was recorded for {}", grant.grantee())))?;
    Ok(Assignment {
        permission_set_arn: arn.to_string(),
        account_id: grant.account_id.clone(),
        principal_type: grant.grantee().principal_type,
        principal_id,
    })
}

pub(super) async fn apply(iam: &impl IamChanges, ledger: &mut impl Ledger, grant: &Grant) -> StepResult<()> {
    let document = grant.policy_document.as_ref().expect("temporary permission set grants store their document");
    let arn = match &grant.policy_arn {
        // A try before created it: go on from there.
        Some(arn) => {
            if let Err(e) = super::verify_principal(iam, grant).await {
                return Ok(Err(e));
            }
            arn.clone()
        }
        None => {
            let set = TemporaryPermissionSet { name: name_of(grant), description: description_of(grant) };
            // The worker's clock is Postgres's; a repair's, this replica's.
            let duration = session_duration(grant.expires_at, grant.db_now.unwrap_or_else(Utc::now));
            let (created, verified) =
                tokio::join!(iam.create_permission_set(&set, &duration), super::verify_principal(iam, grant));
            let arn = match created {
                Ok(arn) => arn,
                Err(e) if e.code.as_deref() == Some("ConflictException") => match adopt(iam, &set).await {
                    Ok(arn) => arn,
                    Err(e) => return Ok(Err(e)),
                },
                Err(e) => return Ok(Err(e.into())),
            };
            // Recorded before anything else: the revocation (or the undo of a
            // refused grant) deletes what is recorded.
            ledger.record_permission_set(grant.grant_id, &arn).await?;
            if let Err(e) = verified {
                return Ok(Err(e));
            }
            arn
        }
    };
    if let Err(e) = iam.put_inline_policy(&arn, &document.to_json()).await {
        return Ok(Err(e.into()));
    }
    let assignment = match assignment(grant, &arn) {
        Ok(assignment) => assignment,
        Err(e) => return Ok(Err(e)),
    };
    Ok(super::shared::provision(iam, &assignment).await)
}

/// The permission set of the grant's name, made by an earlier try that died
/// before recording it: adopted only when its description names this grant
/// (and this installation); any other is someone else's (`policy_conflict`).
/// Without one, the conflict was another operation in progress: retried.
async fn adopt(iam: &impl IamChanges, set: &TemporaryPermissionSet) -> Result<String, StepError> {
    match iam.find_permission_set(&set.name).await? {
        Some((arn, description)) if description == set.description => Ok(arn),
        Some(_) => Err(StepError::PolicyConflict(format!(
            "a permission set named {} exists and was not made for this grant",
            set.name
        ))),
        None => Err(StepError::Aws(crate::aws::AwsError::new(
            crate::aws::AwsErrorKind::Transient,
            "sso:CreatePermissionSet",
            "Identity Center answered ConflictException and no permission set has the grant's name yet",
        ))),
    }
}

/// The description of the grant's permission set: the one made at apply.
fn description_of(grant: &Grant) -> String {
    TemporaryPermissionSet::for_grant(grant.grant_id, grant.installation_id).description
}

/// Puts an active grant's permission set back as the grant says: made again
/// when deleted, its inline policy written again (and provisioned to the
/// account's role) when edited, assigned again when unassigned.
pub(super) async fn repair(
    iam: &impl IamChanges,
    ledger: &mut impl Ledger,
    grant: &Grant,
    kind: FindingKind,
) -> StepResult<()> {
    let Some(arn) = &grant.policy_arn else { return Ok(Ok(())) };
    let document = grant.policy_document.as_ref().expect("temporary permission set grants store their document");
    if kind == FindingKind::PolicyModified {
        let written = match iam.put_inline_policy(arn, &document.to_json()).await {
            Ok(()) => iam.provision_permission_set(arn, &grant.account_id).await,
            Err(e) => Err(e),
        };
        return Ok(written.map_err(StepError::from));
    }
    match iam.inline_policy(arn).await {
        // Deleted: made again, under a new ARN (recorded), as at apply.
        Ok(None) => apply(iam, ledger, &Grant { policy_arn: None, ..grant.clone() }).await,
        Ok(Some(_)) => Ok(match assignment(grant, arn) {
            Ok(assignment) => super::shared::provision(iam, &assignment).await,
            Err(e) => Err(e),
        }),
        Err(e) => Ok(Err(e.into())),
    }
}

pub(super) async fn revoke(iam: &impl IamChanges, grant: &Grant) -> Result<(), StepError> {
    // Never created (or not recorded: an orphan, which reconciliation deletes).
    let Some(arn) = &grant.policy_arn else { return Ok(()) };
    if grant.principal_id.is_some() {
        super::shared::unprovision(iam, &assignment(grant, arn)?).await?;
    }
    iam.delete_permission_set(arn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_lasts_the_grants_remaining_time_within_identity_centers_bounds() {
        let now = Utc::now();
        let after = |seconds: i64| session_duration(now + chrono::Duration::seconds(seconds), now);
        assert_eq!(after(600), "PT1H", "at least an hour");
        assert_eq!(after(3600), "PT1H");
        assert_eq!(after(3601), "PT1H1M", "rounded up to the minute");
        assert_eq!(after(5400), "PT1H30M");
        assert_eq!(after(7 * 86400), "PT12H", "at most twelve hours");
        assert_eq!(after(-5), "PT1H");
    }
}
