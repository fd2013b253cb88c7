//! Grants and their history.

use super::enum_schema;
use crate::domain::grant::{CallOutcome, EventKind, GrantErrorCode, GrantStatus, PrincipalType, RevokeReason};

enum_schema!(GrantStatus);
enum_schema!(RevokeReason);
enum_schema!(PrincipalType, "Who receives a grant's access.");
enum_schema!(GrantErrorCode, "The codes a grant's `last_error` carries (stored with the grant: add, never rename).");
enum_schema!(EventKind);
enum_schema!(CallOutcome);
