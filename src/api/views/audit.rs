//! The audit trail.

use super::enum_schema;
use crate::domain::audit::AuditAction;
use crate::domain::caller::Role;

enum_schema!(AuditAction, "What was done. Stable names: filters and alerting depend on them.");
enum_schema!(Role, "The role of an API token (`JIT_IAM_API_TOKENS=name:token:role`).");
