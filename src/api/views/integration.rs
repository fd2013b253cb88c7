//! Integrations.

use super::enum_schema;
use crate::domain::integration::{Connection, IntegrationStatus};

enum_schema!(Connection);
enum_schema!(IntegrationStatus);
