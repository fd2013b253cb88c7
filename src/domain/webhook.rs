//! Webhooks to the approval portal: the events, why an endpoint is disabled,
//! deliveries and their attempts. Where webhooks may go, signing and sending
//! are in `crate::webhooks`; what the API shows and sends, in `api::views::webhook`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::wire_enum;

wire_enum! {
    /// What happened. Stable names: receivers switch on them.
    #[derive(Hash)]
    pub enum EventType {
        /// The grant's access is in IAM.
        GrantActivated = "grant.activated",
        /// The grant could not be applied; whatever was done is undone (`last_error` says why).
        GrantFailed = "grant.failed",
        /// The grant's access is gone (`revoke_reason`: expired, revoked, integration_deleted).
        GrantRevoked = "grant.revoked",
        /// A revocation failed for the first time; it is retried until it succeeds.
        GrantRevokeFailing = "grant.revoke_failing",
        /// A revocation that had failed succeeded (`grant.revoked` or `grant.failed` follows too).
        GrantRevokeRecovered = "grant.revoke_recovered",
        /// The expiry moved (`expires_at` is the new one).
        GrantExtended = "grant.extended",
        /// The grant expires within `JIT_IAM_EXPIRY_NOTICE` (once per expiry).
        GrantExpiring = "grant.expiring",
        /// Reconciliation found the grant's access differs from IAM.
        GrantDriftDetected = "grant.drift_detected",
        /// Reconciliation put the grant's access back.
        GrantDriftRepaired = "grant.drift_repaired",
        /// An account of an inventory sync failed.
        SyncFailed = "sync.failed",
        /// Sent by `POST /v1/webhooks/{id}/test`, whatever the endpoint's event types.
        WebhookTest = "webhook.test",
    }
}

wire_enum! {
    /// Why an endpoint receives nothing.
    pub enum DisabledReason {
        /// Disabled through the API (`"enabled": false`).
        Manual = "manual",
        /// The receiver answered 410 Gone.
        Gone = "gone",
        /// Every attempt failed for `JIT_IAM_WEBHOOK_DISABLE_AFTER`.
        Failing = "failing",
    }
}

wire_enum! {
    pub enum DeliveryStatus {
        /// Waiting for its next attempt (or its endpoint to be enabled again).
        Pending = "pending",
        Succeeded = "succeeded",
        /// Every attempt of the retry schedule failed, or the endpoint answered 410.
        Failed = "failed",
    }
}

/// One event sent to one endpoint, with every attempt.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// Sent as `webhook-id`, the same on every attempt: the receiver's idempotency key.
    pub message_id: Uuid,
    pub event_type: EventType,
    /// The grant the event is about, for grant events.
    pub grant_id: Option<Uuid>,
    pub status: DeliveryStatus,
    /// When the event happened.
    pub occurred_at: DateTime<Utc>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub duration_ms: i32,
    /// The receiver's HTTP status; null when no answer came.
    pub http_status: Option<i32>,
    /// Why no answer came (network error, timeout, refused address).
    pub error: Option<String>,
    /// At most 1 KB of the receiver's answer.
    pub response_body: Option<String>,
}
