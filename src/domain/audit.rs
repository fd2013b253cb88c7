//! The audit trail: who changed what through the API, and how.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::caller::{Caller, Role};
use super::wire_enum;

wire_enum! {
    /// What was done. Stable names: filters and alerting depend on them.
    pub enum AuditAction {
        IntegrationCreated = "integration.created",
        IntegrationUpdated = "integration.updated",
        /// Deletion asked for: at once without live grants, else after revoking them.
        IntegrationDeleted = "integration.deleted",
        SyncRequested = "integration.sync_requested",
        CheckRun = "integration.checked",
        ReconcileRequested = "integration.reconcile_requested",
        GrantSubmitted = "grant.submitted",
        GrantRevoked = "grant.revoked",
        GrantExtended = "grant.extended",
        WebhookCreated = "webhook.created",
        WebhookUpdated = "webhook.updated",
        WebhookDeleted = "webhook.deleted",
        /// The signing secret was replaced (the trail never holds a secret).
        WebhookSecretRotated = "webhook.secret_rotated",
        WebhookTestSent = "webhook.test_sent",
        WebhookDeliveryRetried = "webhook.delivery_retried",
        /// jit-iam put a grant's access back as the grant says (reconciliation).
        GrantDriftRepaired = "grant.drift_repaired",
        /// jit-iam denied the sessions an ended `assume` grant gave (an inline policy on the role).
        GrantSessionsDenied = "grant.sessions_denied",
        /// jit-iam removed that deny once every such session had run out.
        GrantSessionsDenyRemoved = "grant.sessions_deny_removed",
        /// jit-iam detached and deleted a policy of its own that no grant knows (reconciliation).
        OrphanDeleted = "reconciliation.orphan_deleted",
    }
}

impl AuditAction {
    /// The kind of object the action is about (`target_type`).
    pub fn target_type(self) -> &'static str {
        self.as_str().split('.').next().unwrap_or_default()
    }
}

/// The actor of the changes jit-iam makes by itself.
pub const SERVICE_ACTOR: &str = "jit-iam";

/// Shown instead of a secret's value (an external id): the trail records that
/// it changed, never what it is.
pub const SECRET: &str = "(secret)";

/// One change to record, in the transaction that makes it.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub actor: String,
    pub role: Role,
    pub request_id: Option<String>,
    pub action: AuditAction,
    pub target_id: Uuid,
    /// Field → `{"before", "after"}` of what changed.
    pub changes: Value,
}

impl AuditRecord {
    pub fn new(caller: &Caller, request_id: Option<String>, action: AuditAction, target_id: Uuid) -> Self {
        AuditRecord {
            actor: caller.name.clone(),
            role: caller.role,
            request_id,
            action,
            target_id,
            changes: Value::Object(Map::new()),
        }
    }

    /// A change jit-iam's workers made by themselves (actor `jit-iam`, role `service`).
    pub fn service(action: AuditAction, target_id: Uuid) -> Self {
        let caller = Caller { name: SERVICE_ACTOR.into(), role: Role::Service };
        Self::new(&caller, None, action, target_id)
    }

    /// Records the fields that differ between two JSON views of the target
    /// (`Value::Null` for none); the values of `secrets` show as [`SECRET`].
    pub fn changes(mut self, before: &Value, after: &Value, secrets: &[&str]) -> Self {
        let mut changes = Map::new();
        diff(before, after, String::new(), &mut changes);
        for (field, change) in changes.iter_mut() {
            if secrets.contains(&field.as_str()) {
                for side in ["before", "after"] {
                    if !change[side].is_null() {
                        change[side] = Value::from(SECRET);
                    }
                }
            }
        }
        self.changes = Value::Object(changes);
        self
    }

    /// Records one field's before and after.
    pub fn change(mut self, field: &str, before: impl Serialize, after: impl Serialize) -> Self {
        let entry = serde_json::json!({"before": before, "after": after});
        self.changes.as_object_mut().expect("changes is an object").insert(field.to_string(), entry);
        self
    }
}

/// Leaf fields (`a.b`) whose values differ; arrays compare whole.
fn diff(before: &Value, after: &Value, path: String, out: &mut Map<String, Value>) {
    let none = Map::new();
    let fields = match (before, after) {
        (Value::Object(b), Value::Object(a)) => Some((b, a)),
        (Value::Null, Value::Object(a)) => Some((&none, a)),
        (Value::Object(b), Value::Null) => Some((b, &none)),
        _ => None,
    };
    match fields {
        Some((b, a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let field = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                diff(b.get(key).unwrap_or(&Value::Null), a.get(key).unwrap_or(&Value::Null), field, out);
            }
        }
        None if before != after => {
            out.insert(path, serde_json::json!({"before": before, "after": after}));
        }
        None => {}
    }
}

/// A recorded change, as the trail holds it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// The API token's name; `jit-iam` for changes the service made by itself.
    pub actor: String,
    pub role: Role,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
    pub action: AuditAction,
    pub target_type: String,
    pub target_id: Uuid,
    /// Field → `{"before", "after"}`; secrets show as `"(secret)"`.
    pub changes: Value,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changes_name_the_leaf_fields_that_differ() {
        let caller = Caller { name: "ops".into(), role: Role::Admin };
        let record = AuditRecord::new(&caller, None, AuditAction::IntegrationUpdated, Uuid::nil()).changes(
            &json!({"name": "a", "root": {"region": "us-east-1", "account_id": "1", "secret": "s1"}, "tags": [1]}),
            &json!({"name": "a", "root": {"region": "eu-west-1", "account_id": "1", "secret": "s2"}, "tags": [1, 2], "x": 1}),
            &["root.secret"],
        );
        assert_eq!(
            record.changes,
            json!({
                "root.region": {"before": "us-east-1", "after": "eu-west-1"},
                "root.secret": {"before": SECRET, "after": SECRET},
                "tags": {"before": [1], "after": [1, 2]},
                "x": {"before": null, "after": 1},
            })
        );
        // Created: every leaf, secrets hidden, nothing nested left whole.
        let created = AuditRecord::new(&caller, None, AuditAction::IntegrationCreated, Uuid::nil()).changes(
            &Value::Null,
            &json!({"root": {"secret": "s1", "region": "us-east-1"}}),
            &["root.secret"],
        );
        assert_eq!(
            created.changes,
            json!({
                "root.region": {"before": null, "after": "us-east-1"},
                "root.secret": {"before": null, "after": SECRET},
            })
        );
        assert_eq!(AuditAction::SyncRequested.target_type(), "integration");
        for action in AuditAction::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), json!(action.as_str()));
        }
    }
}
