//! The audit trail.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::enum_schema;
use crate::domain::audit::{self, AuditAction};
use crate::domain::caller::Role;

enum_schema!(AuditAction, "What was done. Stable names: filters and alerting depend on them.");
enum_schema!(Role, "The role of an API token (`JIT_IAM_API_TOKENS=name:token:role`).");
/// A recorded change, as `GET /v1/audit-events` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// The API token's name; `jit-iam` for changes the service made by itself.
    #[schema(example = "portal")]
    pub actor: String,
    pub role: Role,
    /// The request's `x-request-id`.
    #[schema(required = true)]
    pub request_id: Option<String>,
    pub action: AuditAction,
    #[schema(example = "grant")]
    pub target_type: String,
    pub target_id: Uuid,
    /// Field → `{"before", "after"}`; secrets show as `"(secret)"`.
    #[schema(value_type = Object, example = json!({"expires_at": {"before": "2026-12-01T10:00:00Z", "after": "2026-12-01T12:00:00Z"}}))]
    pub changes: Value,
}

impl From<audit::AuditEvent> for AuditEvent {
    fn from(value: audit::AuditEvent) -> Self {
        Self {
            id: value.id,
            occurred_at: value.occurred_at,
            actor: value.actor,
            role: value.role,
            request_id: value.request_id,
            action: value.action,
            target_type: value.target_type,
            target_id: value.target_id,
            changes: value.changes,
        }
    }
}
