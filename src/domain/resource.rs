//! Resources of the inventory and the access levels grants offer on them.

use super::wire_enum;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

wire_enum! {
    #[derive(Hash, PartialOrd, Ord)]
    pub enum ResourceType {
        Ec2Instance = "ec2_instance",
        S3Bucket = "s3_bucket",
        IamRole = "iam_role",
        IamPolicy = "iam_policy",
        IamGroup = "iam_group",
        /// The grantees: users receive access, they are not offered as resources.
        IamUser = "iam_user",
        /// An IAM Identity Center user: a grantee, like an IAM user.
        IdentityCenterUser = "identity_center_user",
        /// An IAM Identity Center group.
        IdentityCenterGroup = "identity_center_group",
        /// An IAM Identity Center permission set.
        PermissionSet = "permission_set",
    }
}

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

wire_enum! {
    #[derive(Hash)]
    pub enum AccessLevel {
        Connect = "connect",
        Operate = "operate",
        Admin = "admin",
        Read = "read",
        Write = "write",
        Assume = "assume",
        Attach = "attach",
        Member = "member",
        Assign = "assign",
    }
}

/// A resource of the inventory, with the levels it offers.
#[derive(Clone, Debug, Serialize)]
pub struct Resource {
    pub id: Uuid,
    pub integration_id: Uuid,
    pub account_id: String,
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    pub arn: String,
    pub name: String,
    /// The region, for regional resources (EC2 instances, S3 buckets).
    pub region: Option<String>,
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
