//! Webhooks to the approval portal as the API shows them: endpoints, the
//! events they are sent, deliveries and their attempts. Where webhooks may go,
//! signing and sending are in `crate::webhooks`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::grant::Grant;
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

/// A receiver of events.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    #[schema(example = "https://portal.example.com/hooks/jit-iam")]
    pub url: String,
    #[schema(required = true)]
    pub description: Option<String>,
    /// The event types sent to it; null: all of them.
    #[schema(required = true)]
    pub event_types: Option<Vec<EventType>>,
    /// False: nothing is sent (`disabled_reason` says why); deliveries waiting stay pending.
    pub enabled: bool,
    #[schema(required = true)]
    pub disabled_reason: Option<DisabledReason>,
    /// Since when every attempt has failed; null after a success.
    #[schema(required = true)]
    pub failing_since: Option<DateTime<Utc>>,
    /// Until then deliveries also carry a signature made with the secret before the last rotation.
    #[schema(required = true)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint with its signing secret: answered only at creation and rotation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookEndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_` + base64), for a Standard Webhooks verifier. Shown only now.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
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
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// Sent as `webhook-id`, the same on every attempt: the receiver's idempotency key.
    pub message_id: Uuid,
    pub event_type: EventType,
    /// The grant the event is about, for grant events.
    #[schema(required = true)]
    pub grant_id: Option<Uuid>,
    pub status: DeliveryStatus,
    /// When the event happened.
    pub occurred_at: DateTime<Utc>,
    /// When the next attempt is due (pending deliveries).
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub duration_ms: i32,
    /// The receiver's HTTP status; null when no answer came.
    #[schema(required = true)]
    pub http_status: Option<i32>,
    /// Why no answer came (network error, timeout, refused address).
    #[schema(required = true)]
    pub error: Option<String>,
    /// At most 1 KB of the receiver's answer.
    #[schema(required = true)]
    pub response_body: Option<String>,
}

/// The body of every webhook (Standard Webhooks payload structure).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventBody<D> {
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the event happened (not when it is sent).
    pub timestamp: DateTime<Utc>,
    pub data: D,
}

/// `data` of the grant events: the grant exactly as `GET /v1/grants/{id}`
/// returned it at that moment, and the event's place among the grant's events.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GrantEventData {
    #[serde(flatten)]
    pub grant: Grant,
    /// Grows with each event of one grant: order a grant's events by it (they may arrive in any order).
    pub event_sequence: i64,
}
