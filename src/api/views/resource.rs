//! Resources of the inventory.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::enum_schema;
use crate::domain::resource::{self, AccessLevel, ResourceType};

enum_schema!(ResourceType);
enum_schema!(AccessLevel);
/// A resource as the browse API shows it.
#[derive(Debug, Serialize, ToSchema)]
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

impl From<resource::Resource> for Resource {
    fn from(value: resource::Resource) -> Self {
        Self {
            id: value.id,
            integration_id: value.integration_id,
            account_id: value.account_id,
            resource_type: value.resource_type,
            arn: value.arn,
            name: value.name,
            region: value.region,
            tags: value.tags,
            access_levels: value.access_levels,
            synced_at: value.synced_at,
        }
    }
}
