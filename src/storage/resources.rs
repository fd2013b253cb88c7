//! Queries on `resources`: batched replacement of an account's inventory, and browsing.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::grant::PrincipalType;
use crate::domain::resource::{DiscoveredResource, Resource, ResourceType};

/// The types that are grantees only (IAM users, Identity Center users): the
/// tag filter chooses what may be granted, not who may receive it, so these
/// are always offered (browsable). Every other type, Identity Center groups
/// and IAM groups included, passes the filter or is not offered.
const GRANTEE_TYPES: &str = "('iam_user', 'identity_center_user')";

/// Rows per statement: large enough to need few round trips, small enough to keep statements light.
const BATCH: usize = 2000;

/// Makes the stored inventory of one account exactly `found`, in the caller's
/// transaction: upserts in batches (a resource keeps its id across syncs),
/// then removes what AWS no longer has. `filter` is the integration's tag filter.
pub async fn replace_account(
    tx: &mut sqlx::PgConnection,
    integration_id: Uuid,
    account_id: &str,
    sync_id: Uuid,
    found: &[DiscoveredResource],
    filter: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    // One row per ARN: an upsert may not touch a row twice.
    let mut by_arn: HashMap<&str, &DiscoveredResource> = HashMap::with_capacity(found.len());
    for resource in found {
        by_arn.insert(&resource.arn, resource);
    }
    let unique: Vec<&DiscoveredResource> = by_arn.into_values().collect();
    for batch in unique.chunks(BATCH) {
        let types: Vec<&str> = batch.iter().map(|r| r.resource_type.as_str()).collect();
        let arns: Vec<&str> = batch.iter().map(|r| r.arn.as_str()).collect();
        let names: Vec<&str> = batch.iter().map(|r| r.name.as_str()).collect();
        let regions: Vec<Option<&str>> = batch.iter().map(|r| r.region.as_deref()).collect();
        let tags: Vec<serde_json::Value> = batch.iter().map(|r| serde_json::json!(r.tags)).collect();
        let details: Vec<&serde_json::Value> = batch.iter().map(|r| &r.details).collect();
        sqlx::query(&format!(
            "insert into resources (integration_id, account_id, type, arn, name, region, tags, offered, details, sync_id, synced_at)
             select $1, $2, t.type, t.arn, t.name, t.region, t.tags,
                    t.type in {GRANTEE_TYPES} or tags_match_filter(t.tags, $3), t.details, $4, now()
             from unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::jsonb[])
                  as t(type, arn, name, region, tags, details)
             on conflict (integration_id, arn) do update
             set account_id = excluded.account_id, type = excluded.type, name = excluded.name,
                 region = excluded.region, tags = excluded.tags, offered = excluded.offered,
                 details = excluded.details, sync_id = excluded.sync_id, synced_at = excluded.synced_at",
        ))
        .bind(integration_id)
        .bind(account_id)
        .bind(filter)
        .bind(sync_id)
        .bind(&types)
        .bind(&arns)
        .bind(&names)
        .bind(&regions)
        .bind(&tags)
        .bind(&details)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("delete from resources where integration_id = $1 and account_id = $2 and sync_id <> $3")
        .bind(integration_id)
        .bind(account_id)
        .bind(sync_id)
        .execute(&mut *tx)
        .await?;
    mark_changed(tx).await
}

/// Bumps the inventory version, in the transaction that changed `resources`:
/// from its commit on, the cached browse pages of every replica are stale.
/// (In a statement of its own, or after `with changed as (...)` in one whose
/// changes might be none.)
pub const MARK_CHANGED: &str = "update inventory_version set version = version + 1";

pub async fn mark_changed(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(MARK_CHANGED).execute(tx).await.map(|_| ())
}

/// The inventory version: read before a page, it says how fresh the page is.
pub async fn version(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select version from inventory_version").fetch_one(db).await
}

/// Re-applies a changed tag filter to what is stored, at once.
pub async fn apply_filter(
    tx: &mut sqlx::PgConnection,
    integration_id: Uuid,
    filter: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "update resources set offered = (type in {GRANTEE_TYPES} or tags_match_filter(tags, $2))
         where integration_id = $1 and offered is distinct from (type in {GRANTEE_TYPES} or tags_match_filter(tags, $2))",
    ))
    .bind(integration_id)
    .bind(filter)
    .execute(&mut *tx)
    .await?;
    mark_changed(tx).await
}

/// What a browse request asks for. Tag filters: key -> accepted values.
#[derive(Debug, Default)]
pub struct BrowseFilter {
    pub integration_id: Option<Uuid>,
    pub account_id: Option<String>,
    pub resource_type: Option<ResourceType>,
    pub region: Option<String>,
    pub tags: BTreeMap<String, Vec<String>>,
    pub query: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ResourceRow {
    resource_id: Uuid,
    integration_id: Uuid,
    account_id: String,
    #[sqlx(rename = "type")]
    resource_type: String,
    arn: String,
    name: String,
    region: Option<String>,
    tags: Json<BTreeMap<String, String>>,
    synced_at: DateTime<Utc>,
}

impl From<ResourceRow> for Resource {
    fn from(row: ResourceRow) -> Self {
        let resource_type = ResourceType::parse(&row.resource_type).expect("checked by the table");
        Resource {
            id: row.resource_id,
            integration_id: row.integration_id,
            account_id: row.account_id,
            resource_type,
            arn: row.arn,
            name: row.name,
            region: row.region,
            tags: row.tags.0,
            access_levels: resource_type.access_levels().to_vec(),
            synced_at: row.synced_at,
        }
    }
}

const COLUMNS: &str = "resource_id, integration_id, account_id, type, arn, name, region, tags, synced_at";

/// One page of offered resources in id order, after `after`.
pub async fn browse(
    db: impl PgExecutor<'_>,
    filter: &BrowseFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Resource>, sqlx::Error> {
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(format!("select {COLUMNS} from resources where offered"));
    if let Some(id) = filter.integration_id {
        sql.push(" and integration_id = ").push_bind(id);
    }
    if let Some(account_id) = &filter.account_id {
        sql.push(" and account_id = ").push_bind(account_id.clone());
    }
    if let Some(resource_type) = filter.resource_type {
        // A literal (from the closed set of types), not a parameter: the
        // prepared plan can then use that type's partial index.
        sql.push(format_args!(" and type = '{}'", resource_type.as_str()));
    }
    if let Some(region) = &filter.region {
        sql.push(" and region = ").push_bind(region.clone());
    }
    // Keys with one value become one containment test (served by the GIN index).
    let mut contains = serde_json::Map::new();
    for (key, values) in &filter.tags {
        match values.as_slice() {
            [value] => {
                contains.insert(key.clone(), serde_json::Value::String(value.clone()));
            }
            _ => {
                sql.push(" and tags ->> ").push_bind(key.clone()).push(" = any(").push_bind(values.clone()).push(")");
            }
        }
    }
    if !contains.is_empty() {
        sql.push(" and tags @> ").push_bind(serde_json::Value::Object(contains));
    }
    if let Some(query) = &filter.query {
        let pattern = format!("%{}%", query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        sql.push(" and (name ilike ").push_bind(pattern.clone()).push(" or arn ilike ").push_bind(pattern).push(")");
    }
    if let Some(after) = after {
        sql.push(" and resource_id > ").push_bind(after);
    }
    sql.push(" order by resource_id limit ").push_bind(limit);
    let rows: Vec<ResourceRow> = sql.build_query_as().fetch_all(db).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Resource>, sqlx::Error> {
    sqlx::query_as::<_, ResourceRow>(&format!("select {COLUMNS} from resources where resource_id = $1 and offered"))
        .bind(id)
        .fetch_optional(db)
        .await
        .map(|row| row.map(Into::into))
}

/// An offered resource of one integration, by id or by ARN: what a grant may target.
pub async fn find_offered(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    id: Option<Uuid>,
    arn: Option<&str>,
) -> Result<Option<Resource>, sqlx::Error> {
    sqlx::query_as::<_, ResourceRow>(&format!(
        "select {COLUMNS} from resources
         where integration_id = $1 and offered and (resource_id = $2 or arn = $3)"
    ))
    .bind(integration_id)
    .bind(id)
    .bind(arn)
    .fetch_optional(db)
    .await
    .map(|row| row.map(Into::into))
}

/// A grantee as the inventory has it.
pub struct FoundGrantee {
    pub principal: Resource,
    /// The managed policies it holds, as far as jit-iam knows.
    pub held: Vec<String>,
    /// Its IAM unique id, as the last sync found it.
    pub unique_id: Option<String>,
}

/// A grantee of a grant on the offered resource `resource_id` (or
/// `resource_arn`): the IAM user or role `name` of that resource's account,
/// as the last sync found it (whatever the tag filter: grantees are not
/// offered), with the managed policies it holds (`grantee_policies`). One
/// round trip, beside the lookup of the resource itself.
pub async fn find_grantee(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    resource_id: Option<Uuid>,
    resource_arn: Option<&str>,
    principal_type: PrincipalType,
    name: &str,
) -> Result<Option<FoundGrantee>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct GranteeRow {
        #[sqlx(flatten)]
        resource: ResourceRow,
        held: Vec<String>,
        unique_id: Option<String>,
    }
    let row = sqlx::query_as::<_, GranteeRow>(&format!(
        "select {COLUMNS}, array(select grantee_policies(account_id, type, name, null)) as held,
                details ->> 'unique_id' as unique_id
         from resources
         where integration_id = $1 and type = $2 and name = $3
           and account_id = case
               -- Identity Center's users and groups live with the instance, in the root account.
               when $6 then (select account_id from accounts where integration_id = $1 and is_root limit 1)
               else (select account_id from resources
                     where integration_id = $1 and offered and (resource_id = $4 or arn = $5) limit 1)
           end"
    ))
    .bind(integration_id)
    .bind(principal_type.resource_type().as_str())
    .bind(name)
    .bind(resource_id)
    .bind(resource_arn)
    .bind(principal_type.is_identity_center())
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| FoundGrantee { principal: row.resource.into(), held: row.held, unique_id: row.unique_id }))
}
