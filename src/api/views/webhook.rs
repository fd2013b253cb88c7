//! Webhook endpoints, deliveries and the bodies sent.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::enum_schema;
use super::grant::Grant;
use crate::domain::webhook::{self, DeliveryStatus, DisabledReason, EventType};
use crate::storage::webhooks::EndpointRow;

enum_schema!(EventType, "What happened. Stable names: receivers switch on them.");
enum_schema!(DisabledReason, "Why an endpoint receives nothing.");
enum_schema!(DeliveryStatus);

/// A receiver of events.
#[derive(Debug, Serialize, ToSchema)]
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

impl From<&EndpointRow> for WebhookEndpoint {
    fn from(row: &EndpointRow) -> Self {
        WebhookEndpoint {
            id: row.endpoint_id,
            url: row.url.clone(),
            description: row.description.clone(),
            event_types: row
                .event_types
                .as_ref()
                .map(|types| types.iter().map(|t| EventType::parse(t).expect("stored from the enum")).collect()),
            enabled: row.enabled,
            disabled_reason: row
                .disabled_reason
                .as_deref()
                .map(|r| DisabledReason::parse(r).expect("checked by the table")),
            failing_since: row.failing_since,
            previous_secret_expires_at: row.previous_secret_expires_at.filter(|at| *at > Utc::now()),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// An endpoint with its signing secret: answered only at creation and rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_` + base64), for a Standard Webhooks verifier. Shown only now.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// One event sent to one endpoint, with every attempt.
#[derive(Debug, Serialize, ToSchema)]
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

impl From<webhook::Delivery> for Delivery {
    fn from(value: webhook::Delivery) -> Self {
        Self {
            id: value.id,
            endpoint_id: value.endpoint_id,
            message_id: value.message_id,
            event_type: value.event_type,
            grant_id: value.grant_id,
            status: value.status,
            occurred_at: value.occurred_at,
            next_attempt_at: value.next_attempt_at,
            finished_at: value.finished_at,
            attempts: value.attempts.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
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

impl From<webhook::DeliveryAttempt> for DeliveryAttempt {
    fn from(value: webhook::DeliveryAttempt) -> Self {
        Self {
            attempt: value.attempt,
            attempted_at: value.attempted_at,
            duration_ms: value.duration_ms,
            http_status: value.http_status,
            error: value.error,
            response_body: value.response_body,
        }
    }
}

/// The body of every webhook (Standard Webhooks payload structure).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventBody<D> {
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the event happened (not when it is sent).
    pub timestamp: DateTime<Utc>,
    pub data: D,
}

/// `data` of the grant events: the grant exactly as `GET /v1/grants/{id}`
/// returned it at that moment, and the event's place among the grant's events.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantEventData {
    #[serde(flatten)]
    pub grant: Grant,
    /// Grows with each event of one grant: order a grant's events by it (they may arrive in any order).
    pub event_sequence: i64,
}
