//! Integrations.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::enum_schema;
use crate::domain::integration::{self, Connection, IntegrationStatus};
use crate::domain::resource::{AccessLevel, ResourceType};
use crate::domain::tags;

enum_schema!(Connection);
enum_schema!(IntegrationStatus);

/// How jit-iam reaches the root account.
#[derive(Debug, Serialize, ToSchema)]
pub struct RootAccount {
    #[schema(example = "123456789012")]
    pub account_id: String,
    #[schema(example = "arn:aws:iam::123456789012:role/jit-iam-access")]
    pub access_role_arn: String,
    /// Required by the role's trust policy (`sts:ExternalId`). A secret: only
    /// answers to `admin` tokens carry it.
    #[schema(example = "4c9f0d6b2a7e41e3b8d5c0a9f6e2d1b7", required = false)]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub external_id: String,
    /// Region of the STS endpoint jit-iam uses for this integration.
    #[schema(example = "us-east-1")]
    pub region: String,
}

impl From<integration::RootAccount> for RootAccount {
    fn from(value: integration::RootAccount) -> Self {
        Self {
            account_id: value.account_id,
            access_role_arn: value.access_role_arn,
            external_id: value.external_id,
            region: value.region,
        }
    }
}

/// Options of an integration.
#[derive(Debug, Serialize, ToSchema)]
// Also the schema of request bodies, which are closed (`api::document` splits it).
#[serde(deny_unknown_fields)]
pub struct IntegrationOptions {
    /// Only resources carrying these tags are offered: values of one key are
    /// OR'd, different keys are AND'd. Empty: every resource is offered.
    #[serde(default)]
    pub tags: Vec<TagPair>,
    /// Regions whose EC2 instances are inventoried, each listed once. Unset: every enabled region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["us-east-1"]), min_items = 1, pattern = "^[a-z]{2}-(gov-|iso[a-z]*-)?(east|west|north|south|central|northeast|northwest|southeast|southwest)-[0-9]{1,2}$")]
    pub regions: Option<Vec<String>>,
    /// Role assumed in member accounts (organizations). Default: the root access role's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "jit-iam-access", pattern = "^[A-Za-z0-9_+=,.@-]{1,64}$")]
    pub member_role_name: Option<String>,
    /// Offer AWS-managed policies as well as customer-managed ones.
    #[serde(default)]
    pub include_aws_managed_policies: bool,
    /// Longest lifetime of a grant, in seconds, counted from its activation
    /// (from its submission while pending), extensions included: at least the
    /// service's `JIT_IAM_MIN_GRANT`, at most its `JIT_IAM_MAX_GRANT`. Unset:
    /// `JIT_IAM_MAX_GRANT`. Checked at submission, preview and extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 3600, minimum = 1)]
    pub max_duration: Option<i64>,
    /// The access levels grants may ask for, per resource type: a type left
    /// out offers all its levels, an empty list none. Unset: every level.
    /// Checked at submission, preview and extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_levels: Option<AccessLevels>,
    /// IAM Identity Center, reached in the root account (an organization's
    /// management or delegated administrator account) in the integration's
    /// region: its users, groups and permission sets are inventoried. Unset: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_center: Option<IdentityCenterOptions>,
}

/// Which IAM Identity Center instance: `{}` discovers it (sso:ListInstances in
/// the integration's region); otherwise both fields are given.
#[derive(Debug, Serialize, ToSchema)]
// Also the schema of request bodies, which are closed (`api::document` splits it).
#[serde(deny_unknown_fields)]
pub struct IdentityCenterOptions {
    /// The instance's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        example = "arn:aws:sso:::instance/ssoins-1234567890abcdef",
        pattern = "^arn:(aws|aws-cn|aws-us-gov):sso:::instance/(sso)?ins-[a-zA-Z0-9-.]{16}$"
    )]
    pub instance_arn: Option<String>,
    /// The instance's identity store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        example = "d-1234567890",
        pattern = "^(d-[0-9a-z]{10}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
    )]
    pub identity_store_id: Option<String>,
}

impl From<integration::IdentityCenterOptions> for IdentityCenterOptions {
    fn from(value: integration::IdentityCenterOptions) -> Self {
        Self { instance_arn: value.instance_arn, identity_store_id: value.identity_store_id }
    }
}

impl From<integration::IntegrationOptions> for IntegrationOptions {
    fn from(value: integration::IntegrationOptions) -> Self {
        Self {
            tags: value.tags.into_iter().map(Into::into).collect(),
            regions: value.regions,
            member_role_name: value.member_role_name,
            include_aws_managed_policies: value.include_aws_managed_policies,
            max_duration: value.max_duration,
            access_levels: value.access_levels.map(Into::into),
            identity_center: value.identity_center.map(Into::into),
        }
    }
}

/// Per resource type, the access levels a grant may ask for, each listed once.
#[derive(Debug, Serialize, ToSchema)]
// Also the schema of request bodies, which are closed (`api::document` splits it).
#[serde(deny_unknown_fields)]
#[schema(example = json!({"s3_bucket": ["read", "write"], "ec2_instance": ["connect"]}))]
pub struct AccessLevels {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = ec2_instance_levels)]
    pub ec2_instance: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = s3_bucket_levels)]
    pub s3_bucket: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = iam_role_levels)]
    pub iam_role: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = iam_policy_levels)]
    pub iam_policy: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = iam_group_levels)]
    pub iam_group: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = identity_center_group_levels)]
    pub identity_center_group: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = permission_set_levels)]
    pub permission_set: Option<Vec<AccessLevel>>,
}

impl From<integration::AccessLevels> for AccessLevels {
    fn from(value: integration::AccessLevels) -> Self {
        Self {
            ec2_instance: value.ec2_instance,
            s3_bucket: value.s3_bucket,
            iam_role: value.iam_role,
            iam_policy: value.iam_policy,
            iam_group: value.iam_group,
            identity_center_group: value.identity_center_group,
            permission_set: value.permission_set,
        }
    }
}

/// One `key`/`value` pair, as the product page's `options.tags` lists them.
#[derive(Debug, Serialize, ToSchema)]
// Also the schema of request bodies, which are closed (`api::document` splits it).
#[serde(deny_unknown_fields)]
pub struct TagPair {
    /// 1-128 characters, no control characters.
    #[schema(example = "jit", pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,128}$")]
    pub key: String,
    /// At most 256 characters, no control characters.
    #[schema(example = "enabled", pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]{0,256}$")]
    pub value: String,
}

impl From<tags::TagPair> for TagPair {
    fn from(value: tags::TagPair) -> Self {
        Self { key: value.key, value: value.value }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Integration {
    pub id: Uuid,
    #[schema(example = "prod")]
    pub name: String,
    pub connection: Connection,
    pub root_account: RootAccount,
    pub options: IntegrationOptions,
    pub status: IntegrationStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<integration::Integration> for Integration {
    fn from(value: integration::Integration) -> Self {
        Self {
            id: value.id,
            name: value.name,
            connection: value.connection,
            root_account: value.root_account.into(),
            options: value.options.into(),
            status: value.status,
            created_at: value.created_at,
            updated_at: value.updated_at,
        }
    }
}

/// The schema of one type's list: only the levels that type has (the server refuses others).
fn levels_schema(resource_type: ResourceType) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let levels = resource_type.access_levels().iter().map(|level| level.as_str());
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(levels)))
        .unique_items(true)
        .description(Some(format!("Levels of `{}` grants may ask for; left out: all of them.", resource_type.as_str())))
        .build()
}

fn ec2_instance_levels() -> utoipa::openapi::schema::Array {
    levels_schema(ResourceType::Ec2Instance)
}

fn s3_bucket_levels() -> utoipa::openapi::schema::Array {
    levels_schema(ResourceType::S3Bucket)
}

fn iam_role_levels() -> utoipa::openapi::schema::Array {
    levels_schema(ResourceType::IamRole)
}

fn iam_policy_levels() -> utoipa::openapi::schema::Array {
    levels_schema(ResourceType::IamPolicy)
}

fn iam_group_levels() -> utoipa::openapi::schema::Array {
    levels_schema(ResourceType::IamGroup)
}

fn identity_center_group_levels() -> utoipa::openapi::schema::Array {
    levels_schema(ResourceType::IdentityCenterGroup)
}

fn permission_set_levels() -> utoipa::openapi::schema::Array {
    levels_schema(ResourceType::PermissionSet)
}
