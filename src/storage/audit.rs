//! Queries on `audit_events` (append-only: triggers refuse UPDATE and DELETE).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::audit::{AuditAction, AuditEvent, AuditRecord};
use crate::domain::caller::Role;

/// Appends one record; call it in the transaction of the change it describes.
pub async fn record(db: impl PgExecutor<'_>, record: &AuditRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into audit_events (event_id, actor, role, request_id, action, target_type, target_id, changes)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(&record.actor)
    .bind(record.role.as_str())
    .bind(&record.request_id)
    .bind(record.action.as_str())
    .bind(record.action.target_type())
    .bind(record.target_id)
    .bind(Json(&record.changes))
    .execute(db)
    .await
    .map(|_| ())
}

#[derive(Debug, Default)]
pub struct AuditFilter {
    pub action: Option<AuditAction>,
    pub actor: Option<String>,
    pub target_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    event_id: Uuid,
    occurred_at: DateTime<Utc>,
    actor: String,
    role: String,
    request_id: Option<String>,
    action: String,
    target_type: String,
    target_id: Uuid,
    changes: Json<serde_json::Value>,
}

/// Newest first, `limit` rows older than `before`.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &AuditFilter,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new("select * from audit_events where true");
    if let Some(action) = filter.action {
        sql.push(" and action = ").push_bind(action.as_str());
    }
    if let Some(actor) = &filter.actor {
        sql.push(" and actor = ").push_bind(actor.clone());
    }
    if let Some(target_id) = filter.target_id {
        sql.push(" and target_id = ").push_bind(target_id);
    }
    if let Some(since) = filter.since {
        sql.push(" and occurred_at >= ").push_bind(since);
    }
    if let Some(before) = before {
        sql.push(" and event_id < ").push_bind(before);
    }
    sql.push(" order by event_id desc limit ").push_bind(limit);
    let rows: Vec<AuditRow> = sql.build_query_as().fetch_all(db).await?;
    Ok(rows
        .into_iter()
        .map(|row| AuditEvent {
            id: row.event_id,
            occurred_at: row.occurred_at,
            actor: row.actor,
            role: Role::parse(&row.role).expect("checked by the table"),
            request_id: row.request_id,
            action: AuditAction::parse(&row.action).expect("stored from the enum"),
            target_type: row.target_type,
            target_id: row.target_id,
            changes: row.changes.0,
        })
        .collect())
}
