//! EC2 instances, S3 buckets and IAM roles: a policy made for the grant
//! (`domain::policy::GeneratedPolicy` names it), attached to the grantee.
//!
//! Apply: CreatePolicy (beside a check that the principal is still the one
//! approved), then Attach{User,Role}Policy. A retried CreatePolicy that finds
//! the policy adopts it only when its `jit-iam:grant-id` tag is this grant's
//! and its document is the one jit-iam wrote (else `policy_conflict`).
//! Revoke: Detach{User,Role}Policy (from whoever holds it, should the
//! principal have been renamed), then DeletePolicy (IAM refuses to delete an
//! attached policy); what is already gone counts as done.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Ledger, Plan, PlannedCall, PolicyQuota, Quotas, Refusal, StepError};
use crate::aws::iam_changes::{policy_operations, IamChanges};
use crate::aws::AwsErrorKind;
use crate::domain::access::policy_document;
use crate::domain::grant::Grant;
use crate::domain::grant::Grantee;
use crate::domain::policy::{GeneratedPolicy, MAX_MANAGED_POLICY_CHARS};
use crate::domain::resource::{AccessLevel, Resource, ResourceType};

/// Tries of an attachment that meets NoSuchEntity right after jit-iam created
/// the policy: IAM is eventually consistent.
const CONSISTENCY_RETRIES: u32 = 5;

/// The document fits IAM's size limit and one more policy fits the grantee's quota.
pub(super) fn plan(
    resource: &Resource,
    level: AccessLevel,
    grantee: &Grantee,
    held: &[String],
    quotas: &Quotas,
    resource_field: &'static str,
    session_name: &str,
) -> Result<Plan, Refusal> {
    let document = policy_document(resource.resource_type, level, &resource.arn, &resource.account_id, session_name)
        .expect("every offered level of a policy type has a document");
    if document.quota_size() > MAX_MANAGED_POLICY_CHARS {
        return Err(Refusal::Quota {
            field: resource_field,
            message: format!(
                "the policy would be {} characters; IAM allows {MAX_MANAGED_POLICY_CHARS}",
                document.quota_size()
            ),
        });
    }
    let quota = PolicyQuota {
        attached: held.len(),
        after_grant: held.len() + 1,
        limit: quotas.max_policies(grantee.principal_type),
    };
    if quota.after_grant > quota.limit {
        return Err(Refusal::Quota { field: "principal.name", message: quotas.policies_exceeded(grantee, held.len()) });
    }
    Ok(Plan { mechanism: super::Mechanism::GeneratedPolicy, policy: Some(document), quota: Some(quota) })
}

pub(super) fn planned_calls(
    grantee: &Grantee,
    resource: &Resource,
    policy: &GeneratedPolicy,
) -> (Vec<PlannedCall>, Vec<PlannedCall>) {
    let ops = policy_operations(grantee.principal_type);
    let call = |operation| PlannedCall::new(operation, &policy.arn, None);
    let identity = PlannedCall::new(ops.get, &grantee.name, Some("beside CreatePolicy: still the principal approved"));
    let holders = PlannedCall::new(
        "iam:ListEntitiesForPolicy",
        &policy.arn,
        Some("when not attached under the grantee's name (renamed): detached from whoever holds it"),
    );
    let mut revoke = vec![call(ops.detach), holders, call("iam:DeletePolicy")];
    if resource.resource_type == ResourceType::IamRole {
        let role = &resource.name;
        revoke.extend([
            PlannedCall::new("iam:GetRole", role, Some("when the grant was active: how long the role's sessions last")),
            PlannedCall::new("iam:PutRolePolicy", role, Some("an inline deny of the sessions the grant gave")),
            PlannedCall::new("iam:DeleteRolePolicy", role, Some("once those sessions have all run out")),
        ]);
    }
    (vec![call("iam:CreatePolicy"), identity, call(ops.attach)], revoke)
}

/// The policy a generated-policy grant stored at submission.
fn stored_policy(grant: &Grant) -> (GeneratedPolicy, &str) {
    let (Some(name), Some(arn)) = (&grant.policy_name, &grant.policy_arn) else {
        unreachable!("generated-policy grants store their policy at submission");
    };
    (GeneratedPolicy { name: name.clone(), arn: arn.clone() }, &grant.resource_arn)
}

/// CreatePolicy + Attach{User,Role}Policy, within the grantee's managed-policy quota.
///
/// The quota was checked at submission; it is checked again here because
/// grants accepted at the same moment count against it too. That re-check
/// reads Postgres beside CreatePolicy rather than before it (a round trip off
/// every grant): a grant over the quota is never attached, and its policy is
/// deleted by the undo that follows. No lock: AWS itself refuses an attachment
/// over its quota (a permanent error, undone).
pub(super) async fn apply(
    iam: &impl IamChanges,
    ledger: &mut impl Ledger,
    grant: &Grant,
    quotas: &Quotas,
) -> Result<Result<(), StepError>, sqlx::Error> {
    let grantee = grant.grantee();
    // The principal's identity is read beside CreatePolicy: a policy attached
    // to nobody gives nobody access, and the undo of a refused grant deletes it.
    let (held, created, verified) = tokio::join!(
        ledger.policies_held(&grantee, grant.grant_id),
        create(iam, grant),
        super::verify_principal(iam, grant)
    );
    let held = held?;
    if held.len() + 1 > quotas.max_policies(grantee.principal_type) {
        return Ok(Err(StepError::Quota(quotas.policies_exceeded(&grantee, held.len()))));
    }
    if let Err(e) = verified.and(created) {
        return Ok(Err(e));
    }
    Ok(attach(iam, grant, &grantee).await)
}

/// Creates the grant's policy, or adopts it when an interrupted try of this
/// grant created it: tagged with this grant's id, and with the document
/// jit-iam writes (a tag is easily copied; an edited document is not adopted).
async fn create(iam: &impl IamChanges, grant: &Grant) -> Result<(), StepError> {
    let (policy, resource_arn) = stored_policy(grant);
    let document = grant.policy_document.as_ref().expect("generated-policy grants store their document");
    let tags = GeneratedPolicy::tags(grant.installation_id, grant.grant_id, resource_arn);
    if iam.create_policy(&policy, &document.to_json(), &tags).await? {
        return Ok(());
    }
    // Created by an interrupted try of this grant, or by someone else.
    let conflict =
        |why: &str| Err(StepError::PolicyConflict(format!("a policy named {} exists and {why}", policy.name)));
    if iam.policy_grant_id(&policy.arn).await? != Some(grant.grant_id.to_string()) {
        return conflict("was not created for this grant");
    }
    let found = iam.policy_document(&policy.arn).await?;
    let same = found.and_then(|found| serde_json::from_str::<serde_json::Value>(&found).ok())
        == serde_json::to_value(document).ok();
    if !same {
        return conflict("its document is not the one jit-iam wrote for this grant");
    }
    Ok(())
}

/// Attaches the policy jit-iam just created, retrying NoSuchEntity a few
/// times (IAM is eventually consistent).
async fn attach(iam: &impl IamChanges, grant: &Grant, grantee: &Grantee) -> Result<(), StepError> {
    let (policy, _) = stored_policy(grant);
    let mut retries = 0;
    loop {
        match iam.attach_policy(grantee, &policy.arn).await {
            Err(e) if e.kind == AwsErrorKind::NotFound && retries < CONSISTENCY_RETRIES => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(100 * (1 << retries))).await;
            }
            other => return other.map_err(StepError::from),
        }
    }
}

/// Detach, then delete (IAM refuses to delete an attached policy). When the
/// policy is not attached under the grantee's name, the principal may have
/// been renamed: the policy is the grant's own, so whoever holds it loses it.
/// Then an `assume` grant that was active denies the sessions it gave; the
/// answer is until when.
pub(super) async fn revoke(iam: &impl IamChanges, grant: &Grant) -> Result<Option<DateTime<Utc>>, StepError> {
    let (policy, _) = stored_policy(grant);
    let grantee = grant.grantee();
    if !iam.detach_policy(&grantee, &policy.arn).await? {
        for holder in iam.policy_holders(&policy.arn, grantee.principal_type).await? {
            iam.detach_policy(&Grantee { name: holder.name, ..grantee.clone() }, &policy.arn).await?;
        }
    }
    iam.delete_policy(&policy.arn).await?;
    let gave_sessions = grant.resource_type() == ResourceType::IamRole && grant.activated_at.is_some();
    if !gave_sessions {
        return Ok(None);
    }
    super::sessions::deny(iam, grant, grant.read_at()).await
}
