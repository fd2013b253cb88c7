//! IAM policy documents, as jit-iam writes them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::wire_enum;

pub const POLICY_VERSION: &str = "2012-10-17";

/// IAM's limit on a managed policy, counted without whitespace.
pub const MAX_MANAGED_POLICY_CHARS: usize = 6144;

/// The path of every policy jit-iam creates, and of no other: the inventory
/// leaves these out, and a policy found there is jit-iam's own.
pub const JIT_IAM_POLICY_PATH: &str = "/jit-iam/";

/// The tag naming the grant a generated policy was created for.
pub const GRANT_ID_TAG: &str = "jit-iam:grant-id";

/// The tag naming the installation (its database) that created a policy:
/// only that installation ever deletes it as an orphan.
pub const INSTALLATION_ID_TAG: &str = "jit-iam:installation-id";

/// The temporary permission set jit-iam creates in IAM Identity Center for a
/// grant of an EC2 instance, S3 bucket or IAM role to an Identity Center
/// principal: its name (Identity Center allows 32 characters: `jit-` and the
/// first 28 hex digits of the grant id, time-ordered and random enough never
/// to meet another grant's), its description (the full grant and installation
/// ids, which orphan recognition reads) and tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemporaryPermissionSet {
    pub name: String,
    pub description: String,
}

/// The prefix of every temporary permission set's name.
pub const TEMPORARY_PERMISSION_SET_PREFIX: &str = "jit-";

impl TemporaryPermissionSet {
    pub fn for_grant(grant_id: Uuid, installation_id: Option<Uuid>) -> Self {
        let hex = grant_id.simple().to_string();
        let installation = installation_id.map_or("an earlier installation".to_string(), |id| id.to_string());
        Self {
            name: format!("{TEMPORARY_PERMISSION_SET_PREFIX}{}", &hex[..28]),
            description: format!(
                "jit-iam grant {grant_id} (installation {installation}): temporary, deleted when the grant ends"
            ),
        }
    }

    /// Whether `name` is a temporary permission set's (of any installation).
    pub fn is_temporary(name: &str) -> bool {
        name.strip_prefix(TEMPORARY_PERMISSION_SET_PREFIX)
            .is_some_and(|rest| rest.len() == 28 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
    }
}

/// The identity of the policy jit-iam creates for a grant: name, path, ARN and
/// tags, all derived from the grant, so a retried CreatePolicy finds the policy
/// an interrupted attempt created. The one place they are put together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedPolicy {
    /// `jit-iam-<grant id>`
    pub name: String,
    /// `arn:<partition>:iam::<account>:policy/jit-iam/jit-iam-<grant id>`
    pub arn: String,
}

impl GeneratedPolicy {
    pub fn for_grant(grant_id: Uuid, partition: &str, account_id: &str) -> Self {
        Self::named(format!("jit-iam-{grant_id}"), partition, account_id)
    }

    /// What preview shows: the grant id is known only once the grant is submitted.
    pub fn placeholder(partition: &str, account_id: &str) -> Self {
        Self::named("jit-iam-<grant id>".into(), partition, account_id)
    }

    fn named(name: String, partition: &str, account_id: &str) -> Self {
        let arn = format!("arn:{partition}:iam::{account_id}:policy{JIT_IAM_POLICY_PATH}{name}");
        Self { name, arn }
    }

    /// `managed-by`, the installation, the grant id and the resource (cut to
    /// IAM's 256-character tag values). Grants from before installation ids
    /// have none until reconciliation adopts their policies.
    pub fn tags(installation_id: Option<Uuid>, grant_id: Uuid, resource_arn: &str) -> Vec<(&'static str, String)> {
        let mut tags = vec![
            ("managed-by", "jit-iam".to_string()),
            (GRANT_ID_TAG, grant_id.to_string()),
            ("jit-iam:resource-arn", resource_arn.chars().take(256).collect()),
        ];
        if let Some(installation_id) = installation_id {
            tags.push((INSTALLATION_ID_TAG, installation_id.to_string()));
        }
        tags
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: String,
    pub statement: Vec<Statement>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: Effect,
    /// Only in trust policies: principal type (`AWS`, `Service`, ...) → one ARN or name, or a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Value>,
    /// Absent when `NotAction` is given instead (IAM takes exactly one of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub action: Vec<String>,
    /// Every action but these (on `Resource`): jit-iam uses it in an Allow,
    /// never a Deny, which would take away what the principal has from elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_action: Option<Vec<String>>,
    /// Absent in trust policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Vec<String>>,
    /// Condition operator → condition key → one value or a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

wire_enum! {
    pub enum Effect {
        Allow = "Allow",
        Deny = "Deny",
    }
}

impl Statement {
    pub fn allow(sid: &str, actions: impl IntoIterator<Item = impl Into<String>>, resources: Vec<String>) -> Self {
        Self {
            sid: Some(sid.to_string()),
            effect: Effect::Allow,
            principal: None,
            action: actions.into_iter().map(Into::into).collect(),
            not_action: None,
            resource: Some(resources),
            condition: None,
        }
    }

    /// Allows every action on `resources` except `excluded`.
    pub fn allow_all_but(
        sid: &str,
        excluded: impl IntoIterator<Item = impl Into<String>>,
        resources: Vec<String>,
    ) -> Self {
        Self {
            sid: Some(sid.to_string()),
            effect: Effect::Allow,
            principal: None,
            action: Vec::new(),
            not_action: Some(excluded.into_iter().map(Into::into).collect()),
            resource: Some(resources),
            condition: None,
        }
    }

    /// The statement, allowed only when `condition` holds.
    pub fn when(self, condition: Value) -> Self {
        Self { condition: Some(condition), ..self }
    }
}

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> Self {
        Self { version: POLICY_VERSION.into(), statement }
    }

    /// The compact JSON sent to IAM.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a policy document always serializes")
    }

    /// The size IAM measures against its quota: characters, whitespace excluded.
    pub fn quota_size(&self) -> usize {
        self.to_json().chars().filter(|c| !c.is_whitespace()).count()
    }
}

/// A trust policy letting `principal` assume the role when it presents `external_id`.
pub fn trust_policy(principal: &str, external_id: &str) -> PolicyDocument {
    PolicyDocument::new(vec![Statement {
        sid: Some("JitIamAssumeRole".into()),
        effect: Effect::Allow,
        principal: Some(serde_json::json!({ "AWS": principal })),
        action: vec!["sts:AssumeRole".into()],
        not_action: None,
        resource: None,
        condition: Some(serde_json::json!({ "StringEquals": { "sts:ExternalId": external_id } })),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_policy_shape() {
        let doc = serde_json::to_value(trust_policy("arn:aws:iam::111122223333:role/pod", "ext")).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "JitIamAssumeRole",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111122223333:role/pod"},
                    "Action": ["sts:AssumeRole"],
                    "Condition": {"StringEquals": {"sts:ExternalId": "ext"}}
                }]
            })
        );
    }

    #[test]
    fn generated_policy_names_fit_iam_limits() {
        let policy = GeneratedPolicy::for_grant(Uuid::now_v7(), "aws", "123456789012");
        assert!(crate::domain::arn::is_iam_name(&policy.name, 128));
        assert!(policy.arn.starts_with("arn:aws:iam::123456789012:policy/jit-iam/jit-iam-"));
        let tags = GeneratedPolicy::tags(None, Uuid::nil(), &"x".repeat(300));
        assert!(tags.iter().all(|(_, value)| value.chars().count() <= 256));
    }

    #[test]
    fn quota_size_ignores_whitespace() {
        let doc = PolicyDocument::new(vec![Statement::allow("A B", ["s3:GetObject"], vec!["*".into()])]);
        assert_eq!(doc.quota_size(), doc.to_json().len() - 1);
    }

    #[test]
    fn not_action_replaces_action() {
        let doc = PolicyDocument::new(vec![Statement::allow_all_but("All", ["s3:PutBucketPolicy"], vec!["*".into()])]);
        assert_eq!(
            serde_json::to_value(&doc).unwrap()["Statement"][0],
            serde_json::json!({"Sid": "All", "Effect": "Allow", "NotAction": ["s3:PutBucketPolicy"], "Resource": ["*"]})
        );
        assert_eq!(serde_json::from_str::<PolicyDocument>(&doc.to_json()).unwrap(), doc);
    }

    #[test]
    fn a_temporary_permission_set_is_named_for_its_grant_within_identity_centers_limits() {
        let grant = Uuid::parse_str("01938f4e-7b7a-7c3e-9f0a-1d2c3b4a5e6f").unwrap();
        let set = TemporaryPermissionSet::for_grant(grant, Some(Uuid::nil()));
        assert_eq!(set.name, "jit-01938f4e7b7a7c3e9f0a1d2c3b4a");
        assert_eq!(set.name.len(), 32, "Identity Center allows 32 characters");
        assert!(set.description.contains(&grant.to_string()) && set.description.contains(&Uuid::nil().to_string()));
        assert!(set.description.len() <= 700);
        assert!(TemporaryPermissionSet::is_temporary(&set.name));
        assert!(
            !TemporaryPermissionSet::is_temporary("jit-admins") && !TemporaryPermissionSet::is_temporary("ReadOnly")
        );
    }
}
