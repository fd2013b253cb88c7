//! `assume` grants: the sessions a grant gave end with it.
//!
//! The grant's policy allows `sts:AssumeRole` only with the session name
//! [`session_name`], the grant's alone. When the grant ends, after its policy
//! is detached and deleted, an inline policy on the target role denies every
//! session of that name ([`deny_document`]), and the worker removes it once
//! the longest session the role allows has run out. No `aws:TokenIssueTime`
//! bound: every session of that name is this grant's, so all are denied,
//! including one IAM's eventual consistency let through just after the detach.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StepError;
use crate::aws::iam_changes::IamChanges;
pub use crate::domain::grant::session_name;
use crate::domain::grant::Grant;
use crate::domain::policy::{Effect, PolicyDocument, Statement};

/// Past the role's `MaxSessionDuration`, before the deny is removed: clocks
/// and IAM's eventual consistency.
const DENY_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// The inline policy on the target role that denies the grant's sessions.
pub fn deny_policy_name(grant_id: Uuid) -> String {
    format!("jit-iam-revoked-{grant_id}")
}

/// The grant whose sessions an inline policy of jit-iam's denies.
pub fn grant_of_deny(policy_name: &str) -> Option<Uuid> {
    policy_name.strip_prefix("jit-iam-revoked-")?.parse().ok()
}

/// Every call of a session named for the grant is denied.
pub fn deny_document(grant_id: Uuid) -> PolicyDocument {
    let own_sessions = serde_json::json!({"StringLike": {"aws:userid": format!("*:{}", session_name(grant_id))}});
    PolicyDocument::new(vec![Statement {
        effect: Effect::Deny,
        condition: Some(own_sessions),
        ..Statement::allow("RevokedSessionsOfGrant", ["*"], vec!["*".to_string()])
    }])
}

/// Denies the sessions an ended `assume` grant gave; returns when the deny
/// may go (None: the role is gone, and its sessions with it).
pub(super) async fn deny(
    iam: &impl IamChanges,
    grant: &Grant,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StepError> {
    let role = &grant.resource_name;
    let Some(max_session) = iam.max_session_duration(role).await? else { return Ok(None) };
    let document = deny_document(grant.grant_id).to_json();
    iam.put_role_policy(role, &deny_policy_name(grant.grant_id), &document).await?;
    Ok(Some(now + chrono::Duration::seconds(max_session.into()) + DENY_MARGIN))
}

/// Removes the deny once every session it covers has run out.
pub async fn lift(iam: &impl IamChanges, grant: &Grant) -> Result<(), StepError> {
    Ok(iam.delete_role_policy(&grant.resource_name, &deny_policy_name(grant.grant_id)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deny_names_only_the_grants_sessions() {
        let id = Uuid::nil();
        let document = serde_json::to_value(deny_document(id)).unwrap();
        assert_eq!(
            document["Statement"][0],
            serde_json::json!({
                "Sid": "RevokedSessionsOfGrant", "Effect": "Deny", "Action": ["*"], "Resource": ["*"],
                "Condition": {"StringLike": {"aws:userid": "*:jit-iam-00000000-0000-0000-0000-000000000000"}}
            })
        );
        assert!(session_name(id).len() <= 64, "STS allows 64 characters");
        assert!(deny_policy_name(id).len() <= 128, "IAM allows 128 characters");
        assert_eq!(grant_of_deny(&deny_policy_name(id)), Some(id));
        assert_eq!(grant_of_deny("jit-iam-revoked-nothing"), None);
    }
}
