//! Queries on `integrations`.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::resources::MARK_CHANGED;
use crate::domain::integration::{Connection, Integration, IntegrationOptions, IntegrationStatus, RootAccount};
use crate::domain::tags::TagPair;

pub const NAME_CONSTRAINT: &str = "integrations_name_key";

#[derive(sqlx::FromRow)]
struct IntegrationRow {
    integration_id: Uuid,
    name: String,
    connection: String,
    account_id: String,
    access_role_arn: String,
    external_id: String,
    region: String,
    options: Json<IntegrationOptions>,
    status: String,
    revision: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<IntegrationRow> for Integration {
    fn from(row: IntegrationRow) -> Self {
        Integration {
            id: row.integration_id,
            name: row.name,
            connection: Connection::parse(&row.connection).expect("checked by the table"),
            root_account: RootAccount {
                account_id: row.account_id,
                access_role_arn: row.access_role_arn,
                external_id: row.external_id,
                region: row.region,
            },
            options: row.options.0,
            status: IntegrationStatus::parse(&row.status).expect("checked by the table"),
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const COLUMNS: &str = "integration_id, name, connection, account_id, access_role_arn, external_id, \
                       region, options, status, revision, created_at, updated_at";

pub async fn insert(
    db: impl PgExecutor<'_>,
    id: Uuid,
    name: &str,
    connection: Connection,
    root: &RootAccount,
    options: &IntegrationOptions,
) -> Result<Integration, sqlx::Error> {
    sqlx::query_as::<_, IntegrationRow>(&format!(
        "insert into integrations
             (integration_id, name, connection, account_id, access_role_arn, external_id, region, options)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         returning {COLUMNS}"
    ))
    .bind(id)
    .bind(name)
    .bind(connection.as_str())
    .bind(&root.account_id)
    .bind(&root.access_role_arn)
    .bind(&root.external_id)
    .bind(&root.region)
    .bind(Json(options))
    .fetch_one(db)
    .await
    .map(Into::into)
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Integration>, sqlx::Error> {
    sqlx::query_as::<_, IntegrationRow>(&format!("select {COLUMNS} from integrations where integration_id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
        .map(|row| row.map(Into::into))
}

/// Locks the row until the transaction ends, so that changes to one
/// integration are applied one after the other.
pub async fn get_for_update(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Integration>, sqlx::Error> {
    sqlx::query_as::<_, IntegrationRow>(&format!(
        "select {COLUMNS} from integrations where integration_id = $1 for update"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
    .map(|row| row.map(Into::into))
}

/// Share-locks the row until the transaction ends: a grant inserted or
/// extended meanwhile cannot interleave with a change of the integration or
/// with its deletion (both lock the row for update), so a deletion's
/// revocation sweep sees every grant that was let in.
pub async fn get_for_share(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Integration>, sqlx::Error> {
    sqlx::query_as::<_, IntegrationRow>(&format!(
        "select {COLUMNS} from integrations where integration_id = $1 for share"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
    .map(|row| row.map(Into::into))
}

/// The integration's tag filter now, its row share-locked until the caller's
/// transaction ends: a change of the filter (which locks the row for update)
/// happens wholly before or wholly after. None when the integration is gone.
pub async fn tag_filter_for_share(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Vec<TagPair>>, sqlx::Error> {
    let options: Option<Json<IntegrationOptions>> =
        sqlx::query_scalar("select options from integrations where integration_id = $1 for share")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(options.map(|options| options.0.tags))
}

/// One page in id order (ids are time-ordered UUIDv7), after `after` when given.
pub async fn list(db: impl PgExecutor<'_>, after: Option<Uuid>, limit: i64) -> Result<Vec<Integration>, sqlx::Error> {
    sqlx::query_as::<_, IntegrationRow>(&format!(
        "select {COLUMNS} from integrations
         where $1::uuid is null or integration_id > $1
         order by integration_id
         limit $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
    .map(|rows| rows.into_iter().map(Into::into).collect())
}

/// Writes the changeable fields and bumps the revision.
pub async fn update(db: impl PgExecutor<'_>, integration: &Integration) -> Result<Integration, sqlx::Error> {
    sqlx::query_as::<_, IntegrationRow>(&format!(
        "update integrations
         set name = $2, access_role_arn = $3, external_id = $4, region = $5, options = $6,
             revision = revision + 1
         where integration_id = $1
         returning {COLUMNS}"
    ))
    .bind(integration.id)
    .bind(&integration.name)
    .bind(&integration.root_account.access_role_arn)
    .bind(&integration.root_account.external_id)
    .bind(&integration.root_account.region)
    .bind(Json(&integration.options))
    .fetch_one(db)
    .await
    .map(Into::into)
}

/// Deletes an integration and, by cascade, its inventory.
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted: i64 = sqlx::query_scalar(&format!(
        "with deleted as (delete from integrations where integration_id = $1 returning 1),
              changed as ({MARK_CHANGED} where exists (select 1 from deleted))
         select count(*) from deleted"
    ))
    .bind(id)
    .fetch_one(db)
    .await?;
    Ok(deleted == 1)
}

pub async fn set_status(
    db: impl PgExecutor<'_>,
    id: Uuid,
    status: IntegrationStatus,
) -> Result<Integration, sqlx::Error> {
    sqlx::query_as::<_, IntegrationRow>(&format!(
        "update integrations set status = $2 where integration_id = $1 returning {COLUMNS}"
    ))
    .bind(id)
    .bind(status.as_str())
    .fetch_one(db)
    .await
    .map(Into::into)
}
