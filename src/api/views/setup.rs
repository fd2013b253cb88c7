//! What the customer pastes into AWS for an integration.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::policy::PolicyDocument;
use crate::aws::permissions;

/// What the customer pastes into AWS for one integration.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupDocuments {
    pub integration_id: Uuid,
    /// jit-iam's own identity, trusted by the access role.
    #[schema(example = "arn:aws:iam::111122223333:role/jit-iam")]
    pub service_principal_arn: String,
    pub external_id: String,
    pub root_account: RoleSetup,
    /// The role to create in every member account (organizations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub member_accounts: Option<RoleSetup>,
}

impl From<permissions::SetupDocuments> for SetupDocuments {
    fn from(value: permissions::SetupDocuments) -> Self {
        Self {
            integration_id: value.integration_id,
            service_principal_arn: value.service_principal_arn,
            external_id: value.external_id,
            root_account: value.root_account.into(),
            member_accounts: value.member_accounts.map(Into::into),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleSetup {
    #[schema(example = "jit-iam-access")]
    pub role_name: String,
    /// The role's trust relationship.
    pub trust_policy: PolicyDocument,
    /// The role's inline permission policy.
    pub permission_policy: PolicyDocument,
}

impl From<permissions::RoleSetup> for RoleSetup {
    fn from(value: permissions::RoleSetup) -> Self {
        Self {
            role_name: value.role_name,
            trust_policy: value.trust_policy.into(),
            permission_policy: value.permission_policy.into(),
        }
    }
}
