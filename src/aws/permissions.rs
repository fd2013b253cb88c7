//! The AWS permissions jit-iam needs in a customer account: one table, from
//! which the setup documents are generated. Each action is here because some
//! code path calls it, and the least-privilege test proves both directions.

use uuid::Uuid;

use crate::domain::arn::PrincipalArn;
use crate::domain::integration::{Connection, Integration};
use crate::domain::policy::{trust_policy, PolicyDocument, Statement, JIT_IAM_POLICY_PATH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Reading what can be granted and to whom.
    Inventory,
    /// Applying and revoking grants.
    Grants,
    /// Listing the member accounts (organization root only).
    Organization,
    /// Reading IAM Identity Center (root account, with `options.identity_center` only).
    IdentityCenter,
    /// Identity Center group memberships and permission set assignments of grants (root account, with `options.identity_center` only).
    IdentityCenterGrants,
}

pub struct Permission {
    pub action: &'static str,
    pub purpose: Purpose,
    /// What the action may act on: as narrow as AWS accepts for it.
    pub resources: Resources,
    pub why: &'static str,
}

/// The `Resource` of an action in the setup policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resources {
    /// Only the policies jit-iam creates, under its own path (`policy/jit-iam/*`).
    OwnPolicies,
    /// The account's IAM users, roles or groups (`user/*`, `role/*`, `group/*`).
    Users,
    Roles,
    Groups,
    /// Identity Center instances and their permission sets
    /// (`instance/*`, `permissionSet/*/*`): what the sso read calls accept.
    IdentityCenterInstances,
    /// The account's identity stores, and their users and groups
    /// (`identitystore/*`, `user/*`, `group/*`).
    IdentityStores,
    /// The same, and group memberships (`membership/*`): what the membership calls accept.
    IdentityStoreMemberships,
    /// Instances, permission sets and accounts (`instance/*`,
    /// `permissionSet/*/*`, `account/*`): what the assignment calls accept.
    IdentityCenterAssignments,
    /// `*`, with the reason recorded here: the action accepts no narrower
    /// resource, or only reads. A test refuses a write on `*` without a reason.
    Any(&'static str),
}

const LIST_ONLY_STAR: &str = "a list or describe call: AWS accepts only `*`";
const READ_ONLY: &str = "reads only, across the account";

pub const PERMISSIONS: &[Permission] = &[
    Permission {
        action: "iam:GetAccountAuthorizationDetails",
        purpose: Purpose::Inventory,
        resources: Resources::Any(LIST_ONLY_STAR),
        why: "users (with their groups and attached policies), groups and roles, with tags, in few pages",
    },
    Permission {
        action: "iam:ListPolicies",
        purpose: Purpose::Inventory,
        resources: Resources::Any(LIST_ONLY_STAR),
        why: "managed policies",
    },
    Permission {
        action: "iam:ListPolicyTags",
        purpose: Purpose::Inventory,
        resources: Resources::Any(READ_ONLY),
        why: "tags of customer-managed policies; adopting the policy of an interrupted grant",
    },
    Permission {
        action: "s3:ListAllMyBuckets",
        purpose: Purpose::Inventory,
        resources: Resources::Any(LIST_ONLY_STAR),
        why: "buckets (s3:ListBuckets)",
    },
    Permission {
        action: "s3:GetBucketLocation",
        purpose: Purpose::Inventory,
        resources: Resources::Any(READ_ONLY),
        why: "a bucket's region when ListBuckets does not say",
    },
    Permission {
        action: "s3:GetBucketTagging",
        purpose: Purpose::Inventory,
        resources: Resources::Any(READ_ONLY),
        why: "bucket tags",
    },
    Permission {
        action: "ec2:DescribeRegions",
        purpose: Purpose::Inventory,
        resources: Resources::Any(LIST_ONLY_STAR),
        why: "enabled regions, when the integration lists none",
    },
    Permission {
        action: "ec2:DescribeInstances",
        purpose: Purpose::Inventory,
        resources: Resources::Any(LIST_ONLY_STAR),
        why: "instances and their tags",
    },
    Permission {
        action: "iam:CreatePolicy",
        purpose: Purpose::Grants,
        resources: Resources::OwnPolicies,
        why: "the policy of an EC2, S3 or role grant",
    },
    Permission {
        action: "iam:TagPolicy",
        purpose: Purpose::Grants,
        resources: Resources::OwnPolicies,
        why: "tags given to that policy at creation",
    },
    Permission {
        action: "iam:DeletePolicy",
        purpose: Purpose::Grants,
        resources: Resources::OwnPolicies,
        why: "removing that policy at revocation",
    },
    Permission {
        action: "iam:AttachUserPolicy",
        purpose: Purpose::Grants,
        resources: Resources::Users,
        why: "giving a policy to a user",
    },
    Permission {
        action: "iam:DetachUserPolicy",
        purpose: Purpose::Grants,
        resources: Resources::Users,
        why: "taking it back",
    },
    Permission {
        action: "iam:ListAttachedUserPolicies",
        purpose: Purpose::Grants,
        resources: Resources::Users,
        why: "whether the user already had a policy before the grant",
    },
    Permission {
        action: "iam:AttachRolePolicy",
        purpose: Purpose::Grants,
        resources: Resources::Roles,
        why: "giving a policy to a role",
    },
    Permission {
        action: "iam:DetachRolePolicy",
        purpose: Purpose::Grants,
        resources: Resources::Roles,
        why: "taking it back",
    },
    Permission {
        action: "iam:ListAttachedRolePolicies",
        purpose: Purpose::Grants,
        resources: Resources::Roles,
        why: "whether the role already had a policy before the grant",
    },
    Permission {
        action: "iam:AddUserToGroup",
        purpose: Purpose::Grants,
        resources: Resources::Groups,
        why: "group grants",
    },
    Permission {
        action: "iam:RemoveUserFromGroup",
        purpose: Purpose::Grants,
        resources: Resources::Groups,
        why: "revoking group grants",
    },
    Permission {
        action: "iam:ListGroupsForUser",
        purpose: Purpose::Grants,
        resources: Resources::Users,
        why: "whether the user was already in a group before the grant",
    },
    Permission {
        action: "iam:GetUser",
        purpose: Purpose::Grants,
        resources: Resources::Users,
        why: "the user's unique id: still the principal the grant was approved for",
    },
    Permission {
        action: "iam:GetRole",
        purpose: Purpose::Grants,
        resources: Resources::Roles,
        why: "the role's unique id: still the principal the grant was approved for; \
              an ended `assume` grant's target role: how long its sessions can last",
    },
    Permission {
        action: "iam:PutRolePolicy",
        purpose: Purpose::Grants,
        resources: Resources::Roles,
        why: "an ended `assume` grant: an inline deny of the sessions it gave, on the role they are of",
    },
    Permission {
        action: "iam:DeleteRolePolicy",
        purpose: Purpose::Grants,
        resources: Resources::Roles,
        why: "that deny removed once every session it covers has run out",
    },
    Permission {
        action: "iam:ListEntitiesForPolicy",
        purpose: Purpose::Grants,
        resources: Resources::Any(READ_ONLY),
        why: "who holds a policy when its grantee was renamed (any managed policy, AWS's included)",
    },
    Permission {
        action: "iam:GetGroup",
        purpose: Purpose::Grants,
        resources: Resources::Groups,
        why: "who is in a group when its grantee was renamed",
    },
    Permission {
        action: "iam:GetPolicy",
        purpose: Purpose::Grants,
        resources: Resources::OwnPolicies,
        why: "the default version of a policy of an interrupted grant, before adopting it",
    },
    Permission {
        action: "iam:GetPolicyVersion",
        purpose: Purpose::Grants,
        resources: Resources::OwnPolicies,
        why: "its document: adopted only when it is the one jit-iam wrote",
    },
    Permission {
        action: "iam:CreatePolicyVersion",
        purpose: Purpose::Grants,
        resources: Resources::OwnPolicies,
        why: "reconciliation: restoring the document of a grant's policy someone edited",
    },
    Permission {
        action: "iam:DeletePolicyVersion",
        purpose: Purpose::Grants,
        resources: Resources::OwnPolicies,
        why: "reconciliation: removing the edited versions (and those of a policy it deletes)",
    },
    Permission {
        action: "iam:DetachGroupPolicy",
        purpose: Purpose::Grants,
        resources: Resources::Groups,
        why: "reconciliation: detaching a leftover or orphaned jit-iam policy from a group before deleting it",
    },
    Permission {
        action: "organizations:ListAccounts",
        purpose: Purpose::Organization,
        resources: Resources::Any(LIST_ONLY_STAR),
        why: "the member accounts to inventory",
    },
    Permission {
        action: "sso:ListInstances",
        purpose: Purpose::IdentityCenter,
        resources: Resources::Any(LIST_ONLY_STAR),
        why: "finding the Identity Center instance (`identity_center: {}`); the connection check",
    },
    Permission {
        action: "sso:ListPermissionSets",
        purpose: Purpose::IdentityCenter,
        resources: Resources::IdentityCenterInstances,
        why: "permission sets",
    },
    Permission {
        action: "sso:DescribePermissionSet",
        purpose: Purpose::IdentityCenter,
        resources: Resources::IdentityCenterInstances,
        why: "a permission set's name, description and session duration",
    },
    Permission {
        action: "sso:ListTagsForResource",
        purpose: Purpose::IdentityCenter,
        resources: Resources::IdentityCenterInstances,
        why: "permission set tags, for the tag filter",
    },
    Permission {
        action: "sso:ListAccountsForProvisionedPermissionSet",
        purpose: Purpose::IdentityCenter,
        resources: Resources::IdentityCenterInstances,
        why: "the accounts a permission set is provisioned to",
    },
    Permission {
        action: "identitystore:ListUsers",
        purpose: Purpose::IdentityCenter,
        resources: Resources::IdentityStores,
        why: "Identity Center users (the grantees), with their unique ids",
    },
    Permission {
        action: "identitystore:ListGroups",
        purpose: Purpose::IdentityCenter,
        resources: Resources::IdentityStores,
        why: "Identity Center groups, with their unique ids",
    },
    Permission {
        action: "identitystore:GetUserId",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityStoreMemberships,
        why: "before a membership changes: the user of the grant's name is still the one approved",
    },
    Permission {
        action: "identitystore:GetGroupMembershipId",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityStoreMemberships,
        why: "whether the user is a member already (never made twice; a member before any grant never removed)",
    },
    Permission {
        action: "identitystore:CreateGroupMembership",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityStoreMemberships,
        why: "applying an identity_center_group grant",
    },
    Permission {
        action: "identitystore:DeleteGroupMembership",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityStoreMemberships,
        why: "revoking an identity_center_group grant",
    },
    Permission {
        action: "identitystore:GetGroupId",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityStoreMemberships,
        why: "before an assignment to a group changes: the group of the grant's name is still the one approved",
    },
    Permission {
        action: "sso:ListAccountAssignments",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityCenterAssignments,
        why: "whether the principal is assigned already (never made twice; an assignment made before any grant never deleted)",
    },
    Permission {
        action: "sso:CreateAccountAssignment",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityCenterAssignments,
        why: "applying a permission_set grant",
    },
    Permission {
        action: "sso:DescribeAccountAssignmentCreationStatus",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityCenterAssignments,
        why: "a permission_set grant is active only once its assignment is provisioned",
    },
    Permission {
        action: "sso:DeleteAccountAssignment",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityCenterAssignments,
        why: "revoking a permission_set grant",
    },
    Permission {
        action: "sso:DescribeAccountAssignmentDeletionStatus",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityCenterAssignments,
        why: "a permission_set grant is revoked only once its assignment is deleted",
    },
    Permission {
        action: "sso:CreatePermissionSet",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityCenterAssignments,
        why: "the temporary permission set of an EC2, S3 or IAM role grant to an Identity Center user or group",
    },
    Permission {
        action: "sso:PutInlinePolicyToPermissionSet",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityCenterAssignments,
        why: "the temporary permission set's inline policy: the grant's document",
    },
    Permission {
        action: "sso:DeletePermissionSet",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityCenterAssignments,
        why: "revoking a temporary permission set grant: its role in the account goes, and the sessions it gave",
    },
    Permission {
        action: "sso:GetInlinePolicyForPermissionSet",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityCenterAssignments,
        why: "reconciliation: a temporary permission set deleted or its inline policy edited",
    },
    Permission {
        action: "sso:ProvisionPermissionSet",
        purpose: Purpose::IdentityCenterGrants,
        resources: Resources::IdentityCenterAssignments,
        why: "reconciliation: an edited inline policy written back reaches the account's role",
    },
];

impl Resources {
    /// The resource ARN patterns in `account` (`*` in the member template: IAM
    /// calls only ever act on the caller's own account). Identity Center's
    /// instance, permission set, user and group ARNs carry no account (AWS's
    /// service authorization reference), its identity stores do.
    fn arns(self, partition: &str, account: &str) -> Vec<String> {
        let iam = |kind: &str| vec![format!("arn:{partition}:iam::{account}:{kind}")];
        match self {
            Resources::OwnPolicies => iam(&format!("policy{JIT_IAM_POLICY_PATH}*")),
            Resources::Users => iam("user/*"),
            Resources::Roles => iam("role/*"),
            Resources::Groups => iam("group/*"),
            Resources::IdentityCenterInstances => {
                vec![format!("arn:{partition}:sso:::instance/*"), format!("arn:{partition}:sso:::permissionSet/*/*")]
            }
            Resources::IdentityStores => vec![
                format!("arn:{partition}:identitystore::{account}:identitystore/*"),
                format!("arn:{partition}:identitystore:::user/*"),
                format!("arn:{partition}:identitystore:::group/*"),
            ],
            Resources::IdentityStoreMemberships => vec![
                format!("arn:{partition}:identitystore::{account}:identitystore/*"),
                format!("arn:{partition}:identitystore:::user/*"),
                format!("arn:{partition}:identitystore:::group/*"),
                format!("arn:{partition}:identitystore:::membership/*"),
            ],
            Resources::IdentityCenterAssignments => vec![
                format!("arn:{partition}:sso:::instance/*"),
                format!("arn:{partition}:sso:::permissionSet/*/*"),
                format!("arn:{partition}:sso:::account/*"),
            ],
            Resources::Any(_) => vec!["*".to_string()],
        }
    }

    fn sid(self) -> &'static str {
        match self {
            Resources::OwnPolicies => "OwnPolicies",
            Resources::Users => "Users",
            Resources::Roles => "Roles",
            Resources::Groups => "Groups",
            Resources::IdentityCenterInstances => "Instances",
            Resources::IdentityStores => "IdentityStores",
            Resources::IdentityStoreMemberships => "Memberships",
            Resources::IdentityCenterAssignments => "Assignments",
            Resources::Any(_) => "",
        }
    }
}

/// The IAM action a call needs: its own name, except where AWS names it differently.
pub fn permission_for(operation: &str) -> &str {
    match operation {
        "s3:ListBuckets" => "s3:ListAllMyBuckets",
        other => other,
    }
}

/// What a role's permission policy covers beside the inventory and grants of its own account.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras {
    /// Listing the organization's accounts (an organization's root).
    pub organization: bool,
    /// Reading IAM Identity Center (the root, with `options.identity_center`).
    pub identity_center: bool,
}

/// The permission policy of the access role in `account` (`*`: the template
/// for every member account); member accounts need neither Organizations nor
/// Identity Center access. One statement per purpose and resource.
pub fn permission_policy(partition: &str, account: &str, extras: Extras) -> PolicyDocument {
    let included = PERMISSIONS.iter().filter(|p| match p.purpose {
        Purpose::Organization => extras.organization,
        Purpose::IdentityCenter | Purpose::IdentityCenterGrants => extras.identity_center,
        Purpose::Inventory | Purpose::Grants => true,
    });
    let mut groups: Vec<(Purpose, Resources)> = Vec::new();
    for key in included.clone().map(|p| (p.purpose, scope(p.resources))) {
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    let statements = groups.into_iter().map(|(purpose, resources)| {
        let mut actions: Vec<&str> = included
            .clone()
            .filter(|p| (p.purpose, scope(p.resources)) == (purpose, resources))
            .map(|p| p.action)
            .collect();
        actions.sort_unstable();
        Statement::allow(&statement_sid(purpose, resources), actions, resources.arns(partition, account))
    });
    PolicyDocument::new(statements.collect())
}

/// `Any` with different reasons is one statement on `*`.
fn scope(resources: Resources) -> Resources {
    match resources {
        Resources::Any(_) => Resources::Any(""),
        other => other,
    }
}

fn statement_sid(purpose: Purpose, resources: Resources) -> String {
    let purpose = match purpose {
        Purpose::Inventory => "JitIamInventory",
        Purpose::Grants => "JitIamGrants",
        Purpose::Organization => "JitIamOrganization",
        Purpose::IdentityCenter => "JitIamIdentityCenter",
        Purpose::IdentityCenterGrants => "JitIamIdentityCenterGrants",
    };
    format!("{purpose}{}", resources.sid())
}

/// What the customer pastes into AWS for one integration.
#[derive(Debug)]
pub struct SetupDocuments {
    pub integration_id: Uuid,
    /// jit-iam's own identity, trusted by the access role.
    pub service_principal_arn: String,
    pub external_id: String,
    pub root_account: RoleSetup,
    /// The role to create in every member account (organizations only).
    pub member_accounts: Option<RoleSetup>,
}

#[derive(Debug)]
pub struct RoleSetup {
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
    let partition = root_role.partition.as_str();
    let member_accounts = is_organization.then(|| RoleSetup {
        role_name: integration.options.member_role_name.clone().unwrap_or_else(|| root_role.name.clone()),
        trust_policy: trust(),
        permission_policy: permission_policy(partition, "*", Extras::default()),
    });
    let root_extras =
        Extras { organization: is_organization, identity_center: integration.options.identity_center.is_some() };
    SetupDocuments {
        integration_id: integration.id,
        service_principal_arn: principal.as_str().to_string(),
        external_id: external_id.clone(),
        root_account: RoleSetup {
            role_name: root_role.name,
            trust_policy: trust(),
            permission_policy: permission_policy(partition, &integration.root_account.account_id, root_extras),
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
        let member = permission_policy("aws", "*", Extras::default()).to_json();
        assert!(!member.contains("organizations:") && !member.contains("sso:") && !member.contains("identitystore:"));
        let organization = Extras { organization: true, identity_center: false };
        let root = permission_policy("aws", "111122223333", organization).to_json();
        assert!(root.contains("organizations:ListAccounts"));
        assert!(!root.contains("sso:") && !root.contains("identitystore:"), "only with options.identity_center");
    }

    /// Identity Center reads name instances and permission sets, and the
    /// account's identity stores with their users and groups; only
    /// sso:ListInstances (a list of the account's instances) is on `*`.
    #[test]
    fn identity_center_reads_are_scoped_where_aws_allows() {
        let extras = Extras { organization: false, identity_center: true };
        let document = permission_policy("aws-us-gov", "111122223333", extras);
        let statement = |sid: &str| document.statement.iter().find(|s| s.sid.as_deref() == Some(sid)).unwrap();
        let instances = statement("JitIamIdentityCenterInstances");
        assert_eq!(
            instances.action,
            [
                "sso:DescribePermissionSet",
                "sso:ListAccountsForProvisionedPermissionSet",
                "sso:ListPermissionSets",
                "sso:ListTagsForResource"
            ]
        );
        assert_eq!(
            instances.resource.as_deref().unwrap(),
            ["arn:aws-us-gov:sso:::instance/*", "arn:aws-us-gov:sso:::permissionSet/*/*"]
        );
        let stores = statement("JitIamIdentityCenterIdentityStores");
        assert_eq!(stores.action, ["identitystore:ListGroups", "identitystore:ListUsers"]);
        assert_eq!(
            stores.resource.as_deref().unwrap(),
            [
                "arn:aws-us-gov:identitystore::111122223333:identitystore/*",
                "arn:aws-us-gov:identitystore:::user/*",
                "arn:aws-us-gov:identitystore:::group/*"
            ]
        );
        let any = statement("JitIamIdentityCenter");
        assert_eq!(
            (any.action.as_slice(), any.resource.as_deref().unwrap()),
            (&["sso:ListInstances".to_string()][..], &["*".to_string()][..])
        );
        let memberships = statement("JitIamIdentityCenterGrantsMemberships");
        assert_eq!(
            memberships.action,
            [
                "identitystore:CreateGroupMembership",
                "identitystore:DeleteGroupMembership",
                "identitystore:GetGroupId",
                "identitystore:GetGroupMembershipId",
                "identitystore:GetUserId"
            ]
        );
        let assignments = statement("JitIamIdentityCenterGrantsAssignments");
        assert_eq!(
            assignments.action,
            [
                "sso:CreateAccountAssignment",
                "sso:CreatePermissionSet",
                "sso:DeleteAccountAssignment",
                "sso:DeletePermissionSet",
                "sso:DescribeAccountAssignmentCreationStatus",
                "sso:DescribeAccountAssignmentDeletionStatus",
                "sso:GetInlinePolicyForPermissionSet",
                "sso:ListAccountAssignments",
                "sso:ProvisionPermissionSet",
                "sso:PutInlinePolicyToPermissionSet"
            ]
        );
        assert_eq!(
            assignments.resource.as_deref().unwrap(),
            [
                "arn:aws-us-gov:sso:::instance/*",
                "arn:aws-us-gov:sso:::permissionSet/*/*",
                "arn:aws-us-gov:sso:::account/*"
            ]
        );
        assert_eq!(
            memberships.resource.as_deref().unwrap(),
            [
                "arn:aws-us-gov:identitystore::111122223333:identitystore/*",
                "arn:aws-us-gov:identitystore:::user/*",
                "arn:aws-us-gov:identitystore:::group/*",
                "arn:aws-us-gov:identitystore:::membership/*"
            ]
        );
        let writes = PERMISSIONS.iter().filter(|p| p.purpose == Purpose::IdentityCenter);
        for p in writes {
            let verb = p.action.split(':').nth(1).unwrap();
            assert!(verb.starts_with("List") || verb.starts_with("Describe"), "{} reads only", p.action);
        }
    }

    /// A write (anything but Get, List, Describe) on `Resource: "*"` needs a
    /// reason recorded in the table; policy writes are confined to jit-iam's path.
    #[test]
    fn no_write_on_every_resource_without_a_recorded_reason() {
        let document = permission_policy("aws", "111122223333", Extras { organization: true, identity_center: true });
        for statement in &document.statement {
            for action in &statement.action {
                let verb = action.split(':').nth(1).unwrap_or_default();
                let reads = ["Get", "List", "Describe"].iter().any(|read| verb.starts_with(read));
                let permission = PERMISSIONS.iter().find(|p| p.action == action).unwrap();
                if statement.resource == Some(vec!["*".to_string()]) && !reads {
                    assert!(
                        matches!(permission.resources, Resources::Any(reason) if !reason.is_empty()),
                        "{action} may write to every resource and no reason says why"
                    );
                }
            }
        }
        let resources_of = |action: &str| {
            let statement = document.statement.iter().find(|s| s.action.iter().any(|a| a == action));
            statement.and_then(|s| s.resource.clone()).unwrap_or_default()
        };
        for write in ["iam:CreatePolicy", "iam:TagPolicy", "iam:DeletePolicy"] {
            assert_eq!(resources_of(write), ["arn:aws:iam::111122223333:policy/jit-iam/*"], "{write}");
        }
        assert_eq!(resources_of("iam:AttachRolePolicy"), ["arn:aws:iam::111122223333:role/*"]);
        assert_eq!(resources_of("iam:AddUserToGroup"), ["arn:aws:iam::111122223333:group/*"]);
        assert_eq!(resources_of("iam:DetachUserPolicy"), ["arn:aws:iam::111122223333:user/*"]);
    }
}
