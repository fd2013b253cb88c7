//! The AWS permissions jit-iam needs in a customer account: one table, from
//! which the setup documents are generated. Each action is here because some
//! code path calls it, and the least-privilege test proves both directions.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::arn::PrincipalArn;
use crate::domain::integration::{Connection, Integration};
use crate::domain::policy::{trust_policy, PolicyDocument, Statement};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Reading what can be granted and to whom.
    Inventory,
    /// Applying and revoking grants.
    Grants,
    /// Listing the member accounts (organization root only).
    Organization,
}

pub struct Permission {
    pub action: &'static str,
    pub purpose: Purpose,
    pub why: &'static str,
}

pub const PERMISSIONS: &[Permission] = &[
    Permission {
        action: "iam:GetAccountAuthorizationDetails",
        purpose: Purpose::Inventory,
        why: "users (with their groups and attached policies), groups and roles, with tags, in few pages",
    },
    Permission { action: "iam:ListPolicies", purpose: Purpose::Inventory, why: "managed policies" },
    Permission {
        action: "iam:ListPolicyTags",
        purpose: Purpose::Inventory,
        why: "tags of customer-managed policies; adopting the policy of an interrupted grant",
    },
    Permission { action: "s3:ListAllMyBuckets", purpose: Purpose::Inventory, why: "buckets (s3:ListBuckets)" },
    Permission {
        action: "s3:GetBucketLocation",
        purpose: Purpose::Inventory,
        why: "a bucket's region when ListBuckets does not say",
    },
    Permission { action: "s3:GetBucketTagging", purpose: Purpose::Inventory, why: "bucket tags" },
    Permission {
        action: "ec2:DescribeRegions",
        purpose: Purpose::Inventory,
        why: "enabled regions, when the integration lists none",
    },
    Permission { action: "ec2:DescribeInstances", purpose: Purpose::Inventory, why: "instances and their tags" },
    Permission { action: "iam:CreatePolicy", purpose: Purpose::Grants, why: "the policy of an EC2, S3 or role grant" },
    Permission { action: "iam:TagPolicy", purpose: Purpose::Grants, why: "tags given to that policy at creation" },
    Permission { action: "iam:DeletePolicy", purpose: Purpose::Grants, why: "removing that policy at revocation" },
    Permission { action: "iam:AttachUserPolicy", purpose: Purpose::Grants, why: "giving a policy to a user" },
    Permission { action: "iam:DetachUserPolicy", purpose: Purpose::Grants, why: "taking it back" },
    Permission {
        action: "iam:ListAttachedUserPolicies",
        purpose: Purpose::Grants,
        why: "whether the user already had a policy before the grant",
    },
    Permission { action: "iam:AttachRolePolicy", purpose: Purpose::Grants, why: "giving a policy to a role" },
    Permission { action: "iam:DetachRolePolicy", purpose: Purpose::Grants, why: "taking it back" },
    Permission {
        action: "iam:ListAttachedRolePolicies",
        purpose: Purpose::Grants,
        why: "whether the role already had a policy before the grant",
    },
    Permission { action: "iam:AddUserToGroup", purpose: Purpose::Grants, why: "group grants" },
    Permission { action: "iam:RemoveUserFromGroup", purpose: Purpose::Grants, why: "revoking group grants" },
    Permission {
        action: "iam:ListGroupsForUser",
        purpose: Purpose::Grants,
        why: "whether the user was already in a group before the grant",
    },
    Permission {
        action: "organizations:ListAccounts",
        purpose: Purpose::Organization,
        why: "the member accounts to inventory",
    },
];

/// The IAM action a call needs: its own name, except where AWS names it differently.
pub fn permission_for(operation: &str) -> &str {
    match operation {
        "s3:ListBuckets" => "s3:ListAllMyBuckets",
        other => other,
    }
}

/// The permission policy of the access role; member accounts need no Organizations access.
pub fn permission_policy(include_organization: bool) -> PolicyDocument {
    let statement = |sid: &str, purpose: Purpose| {
        let mut actions: Vec<&str> = PERMISSIONS.iter().filter(|p| p.purpose == purpose).map(|p| p.action).collect();
        actions.sort_unstable();
        actions.dedup();
        Statement::allow(sid, actions, vec!["*".into()])
    };
    let mut statements =
        vec![statement("JitIamInventory", Purpose::Inventory), statement("JitIamGrants", Purpose::Grants)];
    if include_organization {
        statements.push(statement("JitIamOrganization", Purpose::Organization));
    }
    PolicyDocument::new(statements)
}

/// What the customer pastes into AWS for one integration.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupDocuments {
    pub integration_id: Uuid,
    /// jit-iam's own identity, trusted by the access role.
    #[schema(example = "arn:aws:iam::111122223333:role/jit-iam")]
    pub service_principal_arn: String,
    pub external_id: String,
    pub root_account: RoleSetup,
    /// The role to create in every member account (organizations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_accounts: Option<RoleSetup>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleSetup {
    #[schema(example = "jit-iam-access")]
    pub role_name: String,
    /// The role's trust relationship.
    pub trust_policy: PolicyDocument,
    /// The role's inline permission policy.
    pub permission_policy: PolicyDocument,
}

pub fn setup_documents(integration: &Integration, principal: &PrincipalArn) -> SetupDocuments {
    let external_id = &integration.root_account.external_id;
    let trust = || trust_policy(principal.as_str(), external_id);
    let is_organization = integration.connection == Connection::Organization;
    let root_role = integration.root_role_arn();
    let member_accounts = is_organization.then(|| RoleSetup {
        role_name: integration.options.member_role_name.clone().unwrap_or_else(|| root_role.name.clone()),
        trust_policy: trust(),
        permission_policy: permission_policy(false),
    });
    SetupDocuments {
        integration_id: integration.id,
        service_principal_arn: principal.as_str().to_string(),
        external_id: external_id.clone(),
        root_account: RoleSetup {
            role_name: root_role.name,
            trust_policy: trust(),
            permission_policy: permission_policy(is_organization),
        },
        member_accounts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_listed_once_and_organizations_only_for_roots() {
        let all: Vec<&str> = PERMISSIONS.iter().map(|p| p.action).collect();
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(all.len(), unique.len());
        let member = permission_policy(false).to_json();
        assert!(!member.contains("organizations:"));
        assert!(permission_policy(true).to_json().contains("organizations:ListAccounts"));
    }
}
