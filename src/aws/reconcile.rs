//! What IAM holds in one account, read for reconciliation with the fewest
//! calls the API allows: iam:GetAccountAuthorizationDetails returns users,
//! roles, groups, their attachments and memberships, and every customer-managed
//! policy with its version documents, in pages of 1,000.

use std::collections::HashMap;

use aws_sdk_iam::types::EntityType;

use super::error::AwsError;
use super::iam_changes::decode_document;
use super::inventory::{authorization_details, policy_arns, CallLimiter};
use super::pool::AwsClients;
use crate::domain::grant::PrincipalType;

/// A user or role: its name now, its unique id, what is attached to it.
#[derive(Clone, Debug, Default)]
pub struct PrincipalState {
    pub name: String,
    pub id: String,
    pub attached: Vec<String>,
    /// Groups (users only).
    pub groups: Vec<String>,
    /// Names of its inline policies (roles only: where jit-iam denies an ended grant's sessions).
    pub inline: Vec<String>,
}

/// A customer-managed policy and its versions.
#[derive(Clone, Debug, Default)]
pub struct PolicyState {
    pub arn: String,
    pub path: String,
    pub default_version: String,
    /// Version id and document (JSON), the default included.
    pub versions: Vec<(String, String)>,
}

impl PolicyState {
    pub fn default_document(&self) -> Option<&str> {
        self.versions.iter().find(|(id, _)| *id == self.default_version).map(|(_, document)| document.as_str())
    }
}

#[derive(Debug, Default)]
pub struct IamSnapshot {
    pub users: Vec<PrincipalState>,
    pub roles: Vec<PrincipalState>,
    /// Group name → its attached policies.
    pub groups: HashMap<String, Vec<String>>,
    pub policies: HashMap<String, PolicyState>,
}

impl IamSnapshot {
    fn principals(&self, principal_type: PrincipalType) -> &[PrincipalState] {
        match principal_type {
            PrincipalType::IamUser => &self.users,
            PrincipalType::IamRole => &self.roles,
            // Not IAM's: the snapshot reads IAM only.
            PrincipalType::IdentityCenterUser | PrincipalType::IdentityCenterGroup => &[],
        }
    }

    /// The principal with this unique id, whatever its name now.
    pub fn by_id(&self, principal_type: PrincipalType, id: &str) -> Option<&PrincipalState> {
        self.principals(principal_type).iter().find(|p| p.id == id)
    }

    pub fn by_name(&self, principal_type: PrincipalType, name: &str) -> Option<&PrincipalState> {
        self.principals(principal_type).iter().find(|p| p.name == name)
    }

    /// Who has the policy attached: users, roles (with their type) and groups.
    pub fn holders(&self, arn: &str) -> (Vec<(PrincipalType, String)>, Vec<String>) {
        let mut principals = Vec::new();
        for (principal_type, list) in [(PrincipalType::IamUser, &self.users), (PrincipalType::IamRole, &self.roles)] {
            for principal in list.iter().filter(|p| p.attached.iter().any(|a| a == arn)) {
                principals.push((principal_type, principal.name.clone()));
            }
        }
        let groups = self.groups.iter().filter(|(_, a)| a.iter().any(|x| x == arn)).map(|(g, _)| g.clone()).collect();
        (principals, groups)
    }

    pub async fn read(clients: &AwsClients, limiter: &CallLimiter) -> Result<IamSnapshot, AwsError> {
        let filters = [EntityType::User, EntityType::Role, EntityType::Group, EntityType::LocalManagedPolicy];
        let pages = authorization_details(clients, limiter, &filters).await?;
        let mut snapshot = IamSnapshot::default();
        for page in pages {
            for user in page.user_detail_list() {
                snapshot.users.push(PrincipalState {
                    name: user.user_name().unwrap_or_default().to_string(),
                    id: user.user_id().unwrap_or_default().to_string(),
                    attached: policy_arns(user.attached_managed_policies()),
                    groups: user.group_list().to_vec(),
                    inline: Vec::new(),
                });
            }
            for role in page.role_detail_list() {
                snapshot.roles.push(PrincipalState {
                    name: role.role_name().unwrap_or_default().to_string(),
                    id: role.role_id().unwrap_or_default().to_string(),
                    attached: policy_arns(role.attached_managed_policies()),
                    groups: Vec::new(),
                    inline: role
                        .role_policy_list()
                        .iter()
                        .filter_map(|p| p.policy_name().map(str::to_string))
                        .collect(),
                });
            }
            for group in page.group_detail_list() {
                let name = group.group_name().unwrap_or_default().to_string();
                snapshot.groups.insert(name, policy_arns(group.attached_managed_policies()));
            }
            for policy in page.policies() {
                let arn = policy.arn().unwrap_or_default().to_string();
                let versions = policy
                    .policy_version_list()
                    .iter()
                    .filter_map(|v| Some((v.version_id()?.to_string(), decode_document(v.document()?))))
                    .collect();
                snapshot.policies.insert(
                    arn.clone(),
                    PolicyState {
                        arn,
                        path: policy.path().unwrap_or_default().to_string(),
                        default_version: policy.default_version_id().unwrap_or_default().to_string(),
                        versions,
                    },
                );
            }
        }
        Ok(snapshot)
    }
}
