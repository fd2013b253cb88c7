//! Who calls the API and what their token's role lets them do.

use serde::Serialize;
use utoipa::ToSchema;

use super::text_enum;

/// The role of an API token (`JIT_IAM_API_TOKENS=name:token:role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, connection secrets included.
    Admin,
    /// What an approval portal needs: browse, read integrations without secrets, submit and manage grants.
    Portal,
    /// Every read, no write.
    Auditor,
    /// jit-iam itself, in the audit trail: IAM changes its workers make on
    /// their own (repairs, orphan deletions, session denies). No token has it.
    Service,
}

text_enum!(Role { Admin = "admin", Portal = "portal", Auditor = "auditor", Service = "service" });

/// The configured token a request presented: its name (logs, audit trail) and role.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Whether answers to this caller may carry connection secrets (external ids).
    pub fn sees_secrets(&self) -> bool {
        self.role == Role::Admin
    }
}
