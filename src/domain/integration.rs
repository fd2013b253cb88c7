//! Integrations: an AWS account (or an Organizations root and its members)
//! that jit-iam reaches through a role the customer created for it.

use super::text_enum;
use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::arn::{is_account_id, is_iam_name, is_region_code, Partition, RoleArn};
use super::tags::{validate_tag, TagPair};
use super::FieldError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    /// One AWS account.
    SingleAccount,
    /// An Organizations management account and every active member account.
    Organization,
}

text_enum!(Connection { SingleAccount = "single_account", Organization = "organization" });

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    Active,
    /// Deletion was asked for; its live grants are being revoked first.
    Deleting,
}

text_enum!(IntegrationStatus { Active = "active", Deleting = "deleting" });

/// How jit-iam reaches the root account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

/// Options of an integration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
}

#[derive(Clone, Debug, Serialize, ToSchema)]
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

pub fn validate_options(options: &IntegrationOptions, connection: Connection) -> Result<(), FieldError> {
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
    Ok(())
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

    #[test]
    fn options_rules() {
        let mut o = IntegrationOptions { regions: Some(vec![]), ..Default::default() };
        assert_eq!(validate_options(&o, Connection::SingleAccount).unwrap_err().field, "options.regions");
        o.regions = Some(vec!["us-east-1".into(), "us-east-1".into()]);
        assert_eq!(validate_options(&o, Connection::SingleAccount).unwrap_err().field, "options.regions[1]");
        o.regions = None;
        o.member_role_name = Some("r".into());
        assert_eq!(validate_options(&o, Connection::SingleAccount).unwrap_err().field, "options.member_role_name");
        assert!(validate_options(&o, Connection::Organization).is_ok());
    }
}
