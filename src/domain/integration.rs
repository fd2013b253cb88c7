//! Integrations: an AWS account (or an Organizations root and its members)
//! that jit-iam reaches through a role the customer created for it.

use super::wire_enum;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::arn::{is_account_id, is_iam_name, is_region_code, Partition, RoleArn};
use super::resource::{AccessLevel, ResourceType};
use super::tags::{validate_tag, TagPair};
use super::FieldError;

wire_enum! {
    pub enum Connection {
        /// One AWS account.
        SingleAccount = "single_account",
        /// An Organizations management account and every active member account.
        Organization = "organization",
    }
}

wire_enum! {
    pub enum IntegrationStatus {
        Active = "active",
        /// Deletion was asked for; its live grants are being revoked first.
        Deleting = "deleting",
    }
}

/// How jit-iam reaches the root account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootAccount {
    pub account_id: String,
    pub access_role_arn: String,
    /// Required by the role's trust policy (`sts:ExternalId`). A secret: only
    /// answers to `admin` tokens carry it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub external_id: String,
    /// Region of the STS endpoint jit-iam uses for this integration.
    pub region: String,
}

/// Options of an integration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationOptions {
    /// Only resources carrying these tags are offered: values of one key are
    /// OR'd, different keys are AND'd. Empty: every resource is offered.
    #[serde(default)]
    pub tags: Vec<TagPair>,
    /// Regions whose EC2 instances are inventoried, each listed once. Unset: every enabled region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// Role assumed in member accounts (organizations). Default: the root access role's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_role_name: Option<String>,
    /// Offer AWS-managed policies as well as customer-managed ones.
    #[serde(default)]
    pub include_aws_managed_policies: bool,
    /// Longest lifetime of a grant, in seconds, counted from its activation
    /// (from its submission while pending), extensions included: at least the
    /// service's `JIT_IAM_MIN_GRANT`, at most its `JIT_IAM_MAX_GRANT`. Unset:
    /// `JIT_IAM_MAX_GRANT`. Checked at submission, preview and extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityCenterOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_store_id: Option<String>,
}

/// Per resource type, the access levels a grant may ask for, each listed once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLevels {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_instance: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_role: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_policy: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_group: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_center_group: Option<Vec<AccessLevel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_set: Option<Vec<AccessLevel>>,
}

impl AccessLevels {
    /// The list given for `resource_type`, if any.
    fn of(&self, resource_type: ResourceType) -> Option<&[AccessLevel]> {
        let list = match resource_type {
            ResourceType::Ec2Instance => &self.ec2_instance,
            ResourceType::S3Bucket => &self.s3_bucket,
            ResourceType::IamRole => &self.iam_role,
            ResourceType::IamPolicy => &self.iam_policy,
            ResourceType::IamGroup => &self.iam_group,
            ResourceType::IdentityCenterGroup => &self.identity_center_group,
            ResourceType::PermissionSet => &self.permission_set,
            // Grantees, not resources granted: no levels.
            ResourceType::IamUser | ResourceType::IdentityCenterUser => return None,
        };
        list.as_deref()
    }
}

/// The deployment's bounds on a grant's length (`JIT_IAM_MIN_GRANT`, `JIT_IAM_MAX_GRANT`).
#[derive(Clone, Copy, Debug)]
pub struct GrantBounds {
    pub min: Duration,
    pub max: Duration,
}

/// Where a grant's longest lifetime comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongestGrant {
    pub length: Duration,
    /// Set by the integration's `options.max_duration`, not by the deployment.
    pub by_integration: bool,
}

impl LongestGrant {
    /// "at most 1h (the integration's options.max_duration)", for refusals.
    pub fn describe(&self) -> String {
        let source = if self.by_integration { "the integration's options.max_duration" } else { "JIT_IAM_MAX_GRANT" };
        format!("at most {} ({source})", humantime::format_duration(self.length))
    }
}

impl IntegrationOptions {
    /// The longest lifetime of a grant: the integration's own limit, never
    /// above the deployment's (which may have been lowered since).
    pub fn longest_grant(&self, bounds: GrantBounds) -> LongestGrant {
        match self.max_duration.map(|seconds| Duration::from_secs(seconds.max(0) as u64)) {
            Some(length) if length <= bounds.max => LongestGrant { length, by_integration: true },
            _ => LongestGrant { length: bounds.max, by_integration: false },
        }
    }

    /// Whether grants may ask for `level` on a resource of `resource_type`;
    /// otherwise the refusal, naming the levels the integration allows.
    pub fn allows(&self, resource_type: ResourceType, level: AccessLevel) -> Result<(), String> {
        let Some(allowed) = self.access_levels.as_ref().and_then(|levels| levels.of(resource_type)) else {
            return Ok(());
        };
        if allowed.contains(&level) {
            return Ok(());
        }
        let listed: Vec<&str> = allowed.iter().map(|level| level.as_str()).collect();
        let allowed = if listed.is_empty() { "no level".to_string() } else { listed.join(", ") };
        Err(format!(
            "access level {} on {} is not allowed by the integration's options.access_levels (allowed: {allowed})",
            level.as_str(),
            resource_type.as_str()
        ))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Integration {
    pub id: Uuid,
    pub name: String,
    pub connection: Connection,
    pub root_account: RootAccount,
    pub options: IntegrationOptions,
    pub status: IntegrationStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped on every change; assumed-role clients are cached per revision.
    #[serde(skip)]
    pub revision: i64,
}

/// Fields of an integration the audit trail records as changed, never by value.
pub const INTEGRATION_SECRETS: &[&str] = &["root_account.external_id"];

impl Integration {
    /// What the audit trail compares: the configuration, without ids and times.
    pub fn audit_view(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "connection": self.connection,
            "root_account": self.root_account,
            "options": self.options,
            "status": self.status,
        })
    }

    /// Whether `other` reaches the accounts the same way: same access role,
    /// external id and member role (what live grants' revocations depend on).
    pub fn same_connection(&self, other: &Integration) -> bool {
        self.root_account.access_role_arn == other.root_account.access_role_arn
            && self.root_account.external_id == other.root_account.external_id
            && self.options.member_role_name == other.options.member_role_name
    }

    /// The integration as shown to a caller who may not see connection secrets.
    pub fn without_secrets(mut self) -> Self {
        self.root_account.external_id.clear();
        self
    }

    pub fn root_role_arn(&self) -> RoleArn {
        RoleArn::parse(&self.root_account.access_role_arn).expect("access_role_arn was validated before it was stored")
    }

    /// The role jit-iam assumes in `account_id`: the access role in the root
    /// account, the member role (same external id) in a member account.
    pub fn role_arn_for(&self, account_id: &str) -> RoleArn {
        let root = self.root_role_arn();
        if account_id == self.root_account.account_id {
            return root;
        }
        let name = self.options.member_role_name.as_deref().unwrap_or(&root.name);
        RoleArn::in_account(root.partition, account_id, name)
    }
}

/// 1-128 characters, not only spaces (trimmed); the document's pattern says the same.
pub fn validate_name(name: &str) -> Result<String, FieldError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || name.chars().count() > 128 {
        return Err(FieldError::new("name", "the name must be 1-128 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new("name", "the name may not contain control characters"));
    }
    Ok(trimmed.to_string())
}

pub fn validate_account_id(account_id: &str, field: &str) -> Result<(), FieldError> {
    if is_account_id(account_id) {
        Ok(())
    } else {
        Err(FieldError::new(field, "an AWS account id is exactly 12 digits"))
    }
}

pub fn validate_region(region: &str, field: &str) -> Result<(), FieldError> {
    if is_region_code(region) {
        Ok(())
    } else {
        Err(FieldError::new(field, format!("`{region}` is not an AWS region code such as us-east-1")))
    }
}

/// `[\w+=,.@:/-]{2,1224}`, as sts:AssumeRole accepts it.
pub fn validate_external_id(external_id: &str, field: &str) -> Result<(), FieldError> {
    let valid_chars = external_id.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if !(2..=1224).contains(&external_id.len()) || !valid_chars {
        return Err(FieldError::new(
            field,
            "the external id must be 2-1224 characters of letters, digits and _+=,.@:/-",
        ));
    }
    Ok(())
}

/// A fresh external id for integrations created without one.
pub fn generate_external_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

/// Checks a root account; `field` is where it sits in the request body.
pub fn validate_root_account(root: &RootAccount, field: &str) -> Result<(), FieldError> {
    validate_account_id(&root.account_id, &format!("{field}.account_id"))?;
    let arn_field = format!("{field}.access_role_arn");
    let role = RoleArn::parse(&root.access_role_arn).map_err(|e| FieldError::new(&arn_field, e))?;
    if role.account_id != root.account_id {
        return Err(FieldError::new(
            arn_field,
            format!("the role is in account {}, not in {}", role.account_id, root.account_id),
        ));
    }
    validate_external_id(&root.external_id, &format!("{field}.external_id"))?;
    validate_region(&root.region, &format!("{field}.region"))?;
    if Partition::of_region(&root.region) != role.partition {
        return Err(FieldError::new(
            format!("{field}.region"),
            format!("region {} is not in partition {} of the role", root.region, role.partition.as_str()),
        ));
    }
    Ok(())
}

pub const MAX_TAG_FILTERS: usize = 50;

pub fn validate_options(
    options: &IntegrationOptions,
    connection: Connection,
    bounds: GrantBounds,
) -> Result<(), FieldError> {
    if options.tags.len() > MAX_TAG_FILTERS {
        return Err(FieldError::new("options.tags", "at most 50 tag filters"));
    }
    for (i, tag) in options.tags.iter().enumerate() {
        validate_tag(&tag.key, &tag.value, &format!("options.tags[{i}]"))?;
    }
    if let Some(regions) = &options.regions {
        if regions.is_empty() {
            return Err(FieldError::new("options.regions", "list at least one region, or leave it out for all"));
        }
        for (i, region) in regions.iter().enumerate() {
            validate_region(region, &format!("options.regions[{i}]"))?;
            if regions[..i].contains(region) {
                return Err(FieldError::new(format!("options.regions[{i}]"), format!("{region} is listed twice")));
            }
        }
    }
    if let Some(name) = &options.member_role_name {
        if connection != Connection::Organization {
            return Err(FieldError::new(
                "options.member_role_name",
                "member_role_name applies only to connection `organization`",
            ));
        }
        if !is_iam_name(name, 64) {
            return Err(FieldError::new(
                "options.member_role_name",
                "a role name is 1-64 characters of letters, digits and +=,.@_-",
            ));
        }
    }
    if let Some(seconds) = options.max_duration {
        let (min, max) = (bounds.min.as_secs() as i64, bounds.max.as_secs() as i64);
        if seconds < min || seconds > max {
            return Err(FieldError::new(
                "options.max_duration",
                format!("max_duration must be between {min} (JIT_IAM_MIN_GRANT) and {max} (JIT_IAM_MAX_GRANT) seconds"),
            ));
        }
    }
    if let Some(identity_center) = &options.identity_center {
        validate_identity_center(identity_center)?;
    }
    if let Some(levels) = &options.access_levels {
        for resource_type in ResourceType::ALL.iter().copied() {
            let Some(listed) = levels.of(resource_type) else { continue };
            let offered = resource_type.access_levels();
            for (i, level) in listed.iter().enumerate() {
                let field = format!("options.access_levels.{}[{i}]", resource_type.as_str());
                if !offered.contains(level) {
                    let names: Vec<&str> = offered.iter().map(|level| level.as_str()).collect();
                    return Err(FieldError::new(
                        field,
                        format!(
                            "{} has no level {}; its levels: {}",
                            resource_type.as_str(),
                            level.as_str(),
                            names.join(", ")
                        ),
                    ));
                }
                if listed[..i].contains(level) {
                    return Err(FieldError::new(field, format!("{} is listed twice", level.as_str())));
                }
            }
        }
    }
    Ok(())
}

/// `arn:<partition>:sso:::instance/(sso)ins-<16>`, as sso-admin accepts it.
fn is_instance_arn(arn: &str) -> bool {
    let Some(rest) = ["aws", "aws-cn", "aws-us-gov"]
        .iter()
        .find_map(|partition| arn.strip_prefix(&format!("arn:{partition}:sso:::instance/")))
    else {
        return false;
    };
    let id = rest.strip_prefix("sso").unwrap_or(rest);
    id.strip_prefix("ins-")
        .is_some_and(|id| id.len() == 16 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
}

/// `d-` and ten lowercase letters or digits, or a UUID.
fn is_identity_store_id(id: &str) -> bool {
    let short = id
        .strip_prefix("d-")
        .is_some_and(|rest| rest.len() == 10 && rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    let uuid = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        });
    short || uuid
}

fn validate_identity_center(options: &IdentityCenterOptions) -> Result<(), FieldError> {
    const FIELD: &str = "options.identity_center";
    match (&options.instance_arn, &options.identity_store_id) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(FieldError::new(
            format!("{FIELD}.identity_store_id"),
            "give the instance's identity_store_id with its instance_arn, or neither to discover both",
        )),
        (None, Some(_)) => Err(FieldError::new(
            format!("{FIELD}.instance_arn"),
            "give the instance_arn with the identity_store_id, or neither to discover both",
        )),
        (Some(arn), Some(id)) => {
            if !is_instance_arn(arn) {
                return Err(FieldError::new(
                    format!("{FIELD}.instance_arn"),
                    "an Identity Center instance ARN looks like arn:aws:sso:::instance/ssoins-1234567890abcdef",
                ));
            }
            if !is_identity_store_id(id) {
                return Err(FieldError::new(
                    format!("{FIELD}.identity_store_id"),
                    "an identity store id looks like d-1234567890",
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> RootAccount {
        RootAccount {
            account_id: "123456789012".into(),
            access_role_arn: "arn:aws:iam::123456789012:role/jit-iam-access".into(),
            external_id: "ext-123".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn root_account_rules_name_the_field() {
        assert!(validate_root_account(&root(), "root_account").is_ok());
        let cases: [(fn(&mut RootAccount), &str); 6] = [
            (|r| r.account_id = "12345".into(), "root_account.account_id"),
            (|r| r.access_role_arn = "arn:aws:iam::999999999999:role/x".into(), "root_account.access_role_arn"),
            (|r| r.access_role_arn = "role/x".into(), "root_account.access_role_arn"),
            (|r| r.external_id = "x".into(), "root_account.external_id"),
            (|r| r.external_id = "has space".into(), "root_account.external_id"),
            (|r| r.region = "cn-north-1".into(), "root_account.region"),
        ];
        for (mutate, field) in cases {
            let mut r = root();
            mutate(&mut r);
            assert_eq!(validate_root_account(&r, "root_account").unwrap_err().field, field);
        }
    }

    #[test]
    fn generated_external_ids_are_valid_and_long() {
        let id = generate_external_id();
        assert!(id.len() >= 32);
        assert!(validate_external_id(&id, "x").is_ok());
        assert_ne!(id, generate_external_id());
    }

    #[test]
    fn member_roles_reuse_the_root_role_name_by_default() {
        let mut integration = Integration {
            id: Uuid::nil(),
            name: "n".into(),
            connection: Connection::Organization,
            root_account: root(),
            options: IntegrationOptions::default(),
            status: IntegrationStatus::Active,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            revision: 1,
        };
        assert_eq!(
            integration.role_arn_for("210987654321").to_string(),
            "arn:aws:iam::210987654321:role/jit-iam-access"
        );
        integration.options.member_role_name = Some("OrganizationAccountAccessRole".into());
        assert_eq!(
            integration.role_arn_for("210987654321").to_string(),
            "arn:aws:iam::210987654321:role/OrganizationAccountAccessRole"
        );
        assert_eq!(integration.role_arn_for("123456789012").to_string(), root().access_role_arn);
    }

    const BOUNDS: GrantBounds = GrantBounds { min: Duration::from_secs(60), max: Duration::from_secs(86_400) };

    #[test]
    fn options_rules() {
        let check = |o: &IntegrationOptions, c| validate_options(o, c, BOUNDS);
        let mut o = IntegrationOptions { regions: Some(vec![]), ..Default::default() };
        assert_eq!(check(&o, Connection::SingleAccount).unwrap_err().field, "options.regions");
        o.regions = Some(vec!["us-east-1".into(), "us-east-1".into()]);
        assert_eq!(check(&o, Connection::SingleAccount).unwrap_err().field, "options.regions[1]");
        o.regions = None;
        o.member_role_name = Some("r".into());
        assert_eq!(check(&o, Connection::SingleAccount).unwrap_err().field, "options.member_role_name");
        assert!(check(&o, Connection::Organization).is_ok());
    }

    #[test]
    fn identity_center_is_discovered_or_given_whole() {
        let check = |instance_arn: Option<&str>, identity_store_id: Option<&str>| {
            let identity_center = IdentityCenterOptions {
                instance_arn: instance_arn.map(str::to_string),
                identity_store_id: identity_store_id.map(str::to_string),
            };
            let o = IntegrationOptions { identity_center: Some(identity_center), ..Default::default() };
            validate_options(&o, Connection::Organization, BOUNDS).map_err(|e| e.field)
        };
        const ARN: &str = "arn:aws:sso:::instance/ssoins-1234567890abcdef";
        assert_eq!(check(None, None), Ok(()));
        assert_eq!(check(Some(ARN), Some("d-1234567890")), Ok(()));
        assert_eq!(check(Some("arn:aws-us-gov:sso:::instance/ins-abcdefgh.1234-67"), Some("d-abcdefghij")), Ok(()));
        assert_eq!(check(Some(ARN), Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")), Ok(()));
        let field = |name: &str| Err(format!("options.identity_center.{name}"));
        assert_eq!(check(Some(ARN), None), field("identity_store_id"));
        assert_eq!(check(None, Some("d-1234567890")), field("instance_arn"));
        for arn in [
            "arn:aws:sso:::instance/ssoins-123",
            "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1234567890abcdef",
            "arn:aws:iam::123456789012:role/x",
            "arn:aws:sso::123456789012:instance/ssoins-1234567890abcdef",
            "ssoins-1234567890abcdef",
        ] {
            assert_eq!(check(Some(arn), Some("d-1234567890")), field("instance_arn"), "{arn}");
        }
        for id in ["d-123", "D-1234567890", "1234567890", "d-12345678901", "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"] {
            assert_eq!(check(Some(ARN), Some(id)), field("identity_store_id"), "{id}");
        }
        let unknown =
            serde_json::from_value::<IntegrationOptions>(serde_json::json!({"identity_center": {"arn": "x"}}));
        assert!(unknown.is_err(), "unknown fields are refused");
        let off: IntegrationOptions = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(off.identity_center, None);
        let discover: IntegrationOptions = serde_json::from_value(serde_json::json!({"identity_center": {}})).unwrap();
        assert_eq!(discover.identity_center, Some(IdentityCenterOptions::default()));
    }

    #[test]
    fn grant_policy_rules_name_the_field() {
        let check = |o: &IntegrationOptions| validate_options(o, Connection::SingleAccount, BOUNDS);
        for (seconds, ok) in [(59, false), (60, true), (86_400, true), (86_401, false), (-1, false)] {
            let o = IntegrationOptions { max_duration: Some(seconds), ..Default::default() };
            assert_eq!(check(&o).map_err(|e| e.field), if ok { Ok(()) } else { Err("options.max_duration".into()) });
        }
        let levels = |s3: Vec<AccessLevel>| IntegrationOptions {
            access_levels: Some(AccessLevels { s3_bucket: Some(s3), ..Default::default() }),
            ..Default::default()
        };
        assert!(check(&levels(vec![])).is_ok());
        assert!(check(&levels(vec![AccessLevel::Read, AccessLevel::Write])).is_ok());
        let wrong = check(&levels(vec![AccessLevel::Read, AccessLevel::Connect])).unwrap_err();
        assert_eq!(wrong.field, "options.access_levels.s3_bucket[1]");
        let twice = check(&levels(vec![AccessLevel::Read, AccessLevel::Read])).unwrap_err();
        assert_eq!(twice.field, "options.access_levels.s3_bucket[1]");
    }

    #[test]
    fn grant_policy_limits_levels_and_lifetimes() {
        let o = IntegrationOptions {
            access_levels: Some(AccessLevels { s3_bucket: Some(vec![AccessLevel::Read]), ..Default::default() }),
            max_duration: Some(3600),
            ..Default::default()
        };
        assert!(o.allows(ResourceType::S3Bucket, AccessLevel::Read).is_ok());
        assert!(o.allows(ResourceType::S3Bucket, AccessLevel::Write).unwrap_err().contains("allowed: read"));
        assert!(o.allows(ResourceType::Ec2Instance, AccessLevel::Admin).is_ok(), "a type left out offers all");
        assert_eq!(o.longest_grant(BOUNDS), LongestGrant { length: Duration::from_secs(3600), by_integration: true });
        let lowered = GrantBounds { max: Duration::from_secs(1800), ..BOUNDS };
        assert_eq!(o.longest_grant(lowered), LongestGrant { length: Duration::from_secs(1800), by_integration: false });
        let unset = IntegrationOptions::default();
        assert_eq!(unset.longest_grant(BOUNDS).length, BOUNDS.max);
        assert!(unset.allows(ResourceType::S3Bucket, AccessLevel::Admin).is_ok());
    }

    #[test]
    fn identity_center_groups_and_permission_sets_can_be_narrowed() {
        let o = IntegrationOptions {
            access_levels: Some(AccessLevels {
                identity_center_group: Some(vec![]),
                permission_set: Some(vec![AccessLevel::Assign]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(validate_options(&o, Connection::Organization, BOUNDS).is_ok());
        let refused = o.allows(ResourceType::IdentityCenterGroup, AccessLevel::Member).unwrap_err();
        assert!(refused.contains("on identity_center_group") && refused.contains("allowed: no level"), "{refused}");
        assert!(o.allows(ResourceType::PermissionSet, AccessLevel::Assign).is_ok());
        let wrong = IntegrationOptions {
            access_levels: Some(AccessLevels {
                identity_center_group: Some(vec![AccessLevel::Assign]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let error = validate_options(&wrong, Connection::Organization, BOUNDS).unwrap_err();
        assert_eq!(error.field, "options.access_levels.identity_center_group[0]");
    }
}
