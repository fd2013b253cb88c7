//! Resources of the inventory and the access levels grants offer on them.

use super::text_enum;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Ec2Instance,
    S3Bucket,
    IamRole,
    IamPolicy,
    IamGroup,
    /// The grantees: users receive access, they are not offered as resources.
    IamUser,
    /// An IAM Identity Center user: a grantee, like an IAM user.
    IdentityCenterUser,
    /// An IAM Identity Center group.
    IdentityCenterGroup,
    /// An IAM Identity Center permission set.
    PermissionSet,
}

text_enum!(ResourceType { Ec2Instance = "ec2_instance", S3Bucket = "s3_bucket", IamRole = "iam_role", IamPolicy = "iam_policy", IamGroup = "iam_group", IamUser = "iam_user", IdentityCenterUser = "identity_center_user", IdentityCenterGroup = "identity_center_group", PermissionSet = "permission_set" });

impl ResourceType {
    /// The access levels a grant may ask for on a resource of this type.
    pub fn access_levels(self) -> &'static [AccessLevel] {
        use AccessLevel::*;
        match self {
            Self::Ec2Instance => &[Connect, Operate, Admin],
            Self::S3Bucket => &[Read, Write, Admin],
            Self::IamRole => &[Assume],
            Self::IamPolicy => &[Attach],
            Self::IamGroup => &[Member],
            Self::IamUser | Self::IdentityCenterUser => &[],
            Self::IdentityCenterGroup => &[Member],
            Self::PermissionSet => &[Assign],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    Connect,
    Operate,
    Admin,
    Read,
    Write,
    Assume,
    Attach,
    Member,
    Assign,
}

text_enum!(AccessLevel { Connect = "connect", Operate = "operate", Admin = "admin", Read = "read", Write = "write", Assume = "assume", Attach = "attach", Member = "member", Assign = "assign" });

/// A resource as the browse API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Resource {
    pub id: Uuid,
    pub integration_id: Uuid,
    #[schema(example = "123456789012")]
    pub account_id: String,
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    #[schema(example = "arn:aws:s3:::example-bucket")]
    pub arn: String,
    #[schema(example = "example-bucket")]
    pub name: String,
    /// The region, for regional resources (EC2 instances, S3 buckets).
    #[schema(example = "us-east-1", required = true)]
    pub region: Option<String>,
    #[schema(example = json!({"env": "prod"}))]
    pub tags: BTreeMap<String, String>,
    pub access_levels: Vec<AccessLevel>,
    pub synced_at: DateTime<Utc>,
}

/// A resource as a sync finds it in AWS.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoveredResource {
    pub resource_type: ResourceType,
    pub arn: String,
    pub name: String,
    pub region: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Type-specific facts kept for grants (a user's or role's policies, a user's groups).
    pub details: serde_json::Value,
}

/// What jit-iam records about a grantee (IAM user or role), to check quotas before a grant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalDetails {
    pub attached_policy_arns: Vec<String>,
    pub group_names: Vec<String>,
    /// IAM's unique id (`AIDA…` for users, `AROA…` for roles): a name can be
    /// given to someone else, the id never is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_and_users_offer_nothing() {
        for &t in ResourceType::ALL {
            assert_eq!(ResourceType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert!(ResourceType::IamUser.access_levels().is_empty());
        assert!(ResourceType::IdentityCenterUser.access_levels().is_empty());
        assert_eq!(ResourceType::PermissionSet.access_levels(), [AccessLevel::Assign]);
        assert_eq!(ResourceType::IdentityCenterGroup.access_levels(), [AccessLevel::Member]);
        assert_eq!(ResourceType::parse("ec2"), None);
    }
}
