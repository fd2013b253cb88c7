//! EC2 instances, S3 buckets and IAM roles: a policy made for the grant
//! (`domain::policy::GeneratedPolicy` names it), attached to the grantee.
//!
//! Apply: CreatePolicy, then Attach{User,Role}Policy. A retried CreatePolicy
//! that finds the policy adopts it only when its `jit-iam:grant-id` tag is this
//! grant's. Revoke: Detach{User,Role}Policy, then DeletePolicy (IAM refuses to
//! delete an attached policy); what is already gone counts as done.

use std::time::Duration;

use super::{Ledger, Plan, PlannedCall, PolicyQuota, Quotas, Refusal, StepError};
use crate::aws::iam_changes::{policy_operations, IamChanges};
use crate::aws::{AwsError, AwsErrorKind};
use crate::domain::access::policy_document;
use crate::domain::grant::Grantee;
use crate::domain::policy::{GeneratedPolicy, MAX_MANAGED_POLICY_CHARS};
use crate::domain::resource::{AccessLevel, Resource};
use crate::storage::grants::GrantRow;

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
) -> Result<Plan, Refusal> {
    let document = policy_document(resource.resource_type, level, &resource.arn, grantee)
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

pub(super) fn planned_calls(grantee: &Grantee, policy: &GeneratedPolicy) -> (Vec<PlannedCall>, Vec<PlannedCall>) {
    let ops = policy_operations(grantee.principal_type);
    let call = |operation| PlannedCall::new(operation, &policy.arn, None);
    (vec![call("iam:CreatePolicy"), call(ops.attach)], vec![call(ops.detach), call("iam:DeletePolicy")])
}

/// The policy a generated-policy grant stored at submission.
fn stored_policy(grant: &GrantRow) -> (GeneratedPolicy, &str) {
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
    grant: &GrantRow,
    quotas: &Quotas,
) -> Result<Result<(), StepError>, sqlx::Error> {
    let grantee = grant.grantee();
    let (held, created) = tokio::join!(ledger.policies_held(&grantee, grant.grant_id), create(iam, grant));
    let held = held?;
    if held.len() + 1 > quotas.max_policies(grantee.principal_type) {
        return Ok(Err(StepError::Quota(quotas.policies_exceeded(&grantee, held.len()))));
    }
    if let Err(e) = created {
        return Ok(Err(e));
    }
    Ok(attach(iam, grant, &grantee).await)
}

/// Creates the grant's policy, or adopts it when an interrupted try of this grant created it.
async fn create(iam: &impl IamChanges, grant: &GrantRow) -> Result<(), StepError> {
    let (policy, resource_arn) = stored_policy(grant);
    let document = grant.policy_document.as_ref().expect("generated-policy grants store their document");
    let tags = GeneratedPolicy::tags(grant.grant_id, resource_arn);
    if !iam.create_policy(&policy, &document.0.to_json(), &tags).await? {
        // Created by an interrupted try of this grant, or by someone else.
        let owner = iam.policy_grant_id(&policy.arn).await?;
        if owner != Some(grant.grant_id.to_string()) {
            return Err(StepError::Aws(AwsError::new(
                AwsErrorKind::Rejected,
                "iam:CreatePolicy",
                format!("a policy named {} exists and was not created for this grant", policy.name),
            )));
        }
    }
    Ok(())
}

/// Attaches the policy jit-iam just created, retrying NoSuchEntity a few
/// times (IAM is eventually consistent).
async fn attach(iam: &impl IamChanges, grant: &GrantRow, grantee: &Grantee) -> Result<(), StepError> {
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

/// Detach, then delete (IAM refuses to delete an attached policy).
pub(super) async fn revoke(iam: &impl IamChanges, grant: &GrantRow) -> Result<(), StepError> {
    let (policy, _) = stored_policy(grant);
    iam.detach_policy(&grant.grantee(), &policy.arn).await?;
    iam.delete_policy(&policy.arn).await?;
    Ok(())
}
