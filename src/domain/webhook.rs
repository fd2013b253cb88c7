//! Webhooks to the approval portal as the API shows them: endpoints, the
//! events they are sent, deliveries and their attempts. Where webhooks may go,
//! signing and sending are in `crate::webhooks`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::grant::Grant;
use super::text_enum;

/// What happened. Stable names: receivers switch on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    /// The grant's access is in IAM.
    #[serde(rename = "grant.activated")]
    GrantActivated,
    /// The grant could not be applied; whatever was done is undone (`last_error` says why).
    #[serde(rename = "grant.failed")]
    GrantFailed,
    /// The grant's access is gone (`revoke_reason`: expired, revoked, integration_deleted).
    #[serde(rename = "grant.revoked")]
    GrantRevoked,
    /// A revocation failed for the first time; it is retried until it succeeds.
    #[serde(rename = "grant.revoke_failing")]
    GrantRevokeFailing,
    /// A revocation that had failed succeeded (`grant.revoked` or `grant.failed` follows too).
    #[serde(rename = "grant.revoke_recovered")]
    GrantRevokeRecovered,
    /// The expiry moved (`expires_at` is the new one).
    #[serde(rename = "grant.extended")]
    GrantExtended,
    /// The grant expires within `JIT_IAM_EXPIRY_NOTICE` (once per expiry).
    #[serde(rename = "grant.expiring")]
    GrantExpiring,
    /// Reconciliation found the grant's access differs from IAM.
    #[serde(rename = "grant.drift_detected")]
    GrantDriftDetected,
    /// Reconciliation put the grant's access back.
    #[serde(rename = "grant.drift_repaired")]
    GrantDriftRepaired,
    /// An account of an inventory sync failed.
    #[serde(rename = "sync.failed")]
    SyncFailed,
    /// Sent by `POST /v1/webhooks/{id}/test`, whatever the endpoint's event types.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

text_enum!(EventType {
    GrantActivated = "grant.activated",
    GrantFailed = "grant.failed",
    GrantRevoked = "grant.revoked",
    GrantRevokeFailing = "grant.revoke_failing",
    GrantRevokeRecovered = "grant.revoke_recovered",
    GrantExtended = "grant.extended",
    GrantExpiring = "grant.expiring",
    GrantDriftDetected = "grant.drift_detected",
    GrantDriftRepaired = "grant.drift_repaired",
    SyncFailed = "sync.failed",
    WebhookTest = "webhook.test",
});

/// Why an endpoint receives nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// Disabled through the API (`"enabled": false`).
    Manual,
    /// The receiver answered 410 Gone.
    Gone,
    /// Every attempt failed for `JIT_IAM_WEBHOOK_DISABLE_AFTER`.
    Failing,
}

text_enum!(DisabledReason { Manual = "manual", Gone = "gone", Failing = "failing" });

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or its endpoint to be enabled again).
    Pending,
    Succeeded,
    /// Every attempt of the retry schedule failed, or the endpoint answered 410.
    Failed,
}

text_enum!(DeliveryStatus { Pending = "pending", Succeeded = "succeeded", Failed = "failed" });

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
