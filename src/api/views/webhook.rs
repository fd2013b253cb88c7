//! Webhook endpoints, deliveries and the bodies sent.

use super::enum_schema;
use crate::domain::webhook::{DeliveryStatus, DisabledReason, EventType};

enum_schema!(EventType, "What happened. Stable names: receivers switch on them.");
enum_schema!(DisabledReason, "Why an endpoint receives nothing.");
enum_schema!(DeliveryStatus);
