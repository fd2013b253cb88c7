//! IAM policy documents.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::enum_schema;
use crate::domain::policy::{self, Effect};

enum_schema!(Effect);

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(example = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::example/*"]}]}))]
pub struct PolicyDocument {
    pub version: String,
    pub statement: Vec<Statement>,
}

impl From<policy::PolicyDocument> for PolicyDocument {
    fn from(value: policy::PolicyDocument) -> Self {
        Self { version: value.version, statement: value.statement.into_iter().map(Into::into).collect() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sid: Option<String>,
    pub effect: Effect,
    /// Only in trust policies: principal type (`AWS`, `Service`, ...) → one ARN or name, or a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<BTreeMap<String, Value>>, example = json!({"AWS": "arn:aws:iam::111122223333:role/jit-iam"}))]
    pub principal: Option<Value>,
    /// Absent when `NotAction` is given instead (IAM takes exactly one of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub action: Vec<String>,
    /// Every action but these (on `Resource`): jit-iam uses it in an Allow,
    /// never a Deny, which would take away what the principal has from elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub not_action: Option<Vec<String>>,
    /// Absent in trust policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub resource: Option<Vec<String>>,
    /// Condition operator → condition key → one value or a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<BTreeMap<String, BTreeMap<String, Value>>>,
             example = json!({"StringEquals": {"sts:ExternalId": "external-id-123"}}))]
    pub condition: Option<Value>,
}

impl From<policy::Statement> for Statement {
    fn from(value: policy::Statement) -> Self {
        Self {
            sid: value.sid,
            effect: value.effect,
            principal: value.principal,
            action: value.action,
            not_action: value.not_action,
            resource: value.resource,
            condition: value.condition,
        }
    }
}
