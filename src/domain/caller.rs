//! Who calls the API and what their token's role lets them do.

use super::wire_enum;

wire_enum! {
    /// The role of an API token (`JIT_IAM_API_TOKENS=name:token:role`).
    pub enum Role {
        /// Everything, connection secrets included.
        Admin = "admin",
        /// What an approval portal needs: browse, read integrations without secrets, submit and manage grants.
        Portal = "portal",
        /// Every read, no write.
        Auditor = "auditor",
        /// jit-iam itself, in the audit trail: IAM changes its workers make on
        /// their own (repairs, orphan deletions, session denies). No token has it.
        Service = "service",
    }
}

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
