//! What jit-iam records about the access grants hold, as the mechanisms need
//! it: Postgres in the service, memory in unit tests.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::grant::Grant;
use crate::domain::grant::Grantee;
use crate::storage;
use crate::storage::grants::{AttachmentKey, SharedAttachment};

#[allow(async_fn_in_trait)] // used with concrete types only, whose futures are Send
pub trait Ledger {
    /// The managed policies the grantee has, as far as jit-iam knows: the
    /// inventory's plus those other live grants hold.
    async fn policies_held(&mut self, grantee: &Grantee, excluding_grant: Uuid) -> Result<Vec<String>, sqlx::Error>;
    async fn attachment(&mut self, key: &AttachmentKey<'_>) -> Result<Option<SharedAttachment>, sqlx::Error>;
    /// Records a shared attachment as in place, within the step.
    async fn record_attached(&mut self, key: &AttachmentKey<'_>, preexisting: bool) -> Result<(), sqlx::Error>;
    /// Records an attachment about to be made, durably before the IAM call, so
    /// that a crash right after it is recognised as jit-iam's own change.
    async fn record_attaching(&mut self, key: &AttachmentKey<'_>) -> Result<(), sqlx::Error>;
    async fn forget(&mut self, key: &AttachmentKey<'_>) -> Result<(), sqlx::Error>;
    /// Other live grants holding the same attachment for the same grantee.
    async fn other_holders(&mut self, grant: &Grant) -> Result<i64, sqlx::Error>;
    /// Records the ARN of the permission set made for a grant, durably, before it is used.
    async fn record_permission_set(&mut self, grant_id: Uuid, arn: &str) -> Result<(), sqlx::Error>;
}

/// The ledger in Postgres: within the step's transaction (which holds the
/// grantee's lock) when there is one, else on the pool.
pub struct PgLedger<'a> {
    pool: &'a PgPool,
    step: Option<&'a mut PgConnection>,
}

impl<'a> PgLedger<'a> {
    pub fn new(pool: &'a PgPool, step: Option<&'a mut PgConnection>) -> Self {
        Self { pool, step }
    }
}

/// Runs `$query` on the step's transaction, or on the pool without one.
macro_rules! on_step {
    ($ledger:expr, |$db:ident| $query:expr) => {
        match $ledger.step.as_deref_mut() {
            Some($db) => $query.await,
            None => {
                let $db = $ledger.pool;
                $query.await
            }
        }
    };
}

impl Ledger for PgLedger<'_> {
    async fn policies_held(&mut self, grantee: &Grantee, excluding_grant: Uuid) -> Result<Vec<String>, sqlx::Error> {
        on_step!(self, |db| storage::grants::managed_policies_of(db, grantee, excluding_grant))
    }

    async fn attachment(&mut self, key: &AttachmentKey<'_>) -> Result<Option<SharedAttachment>, sqlx::Error> {
        on_step!(self, |db| storage::grants::shared_attachment(db, key))
    }

    async fn record_attached(&mut self, key: &AttachmentKey<'_>, preexisting: bool) -> Result<(), sqlx::Error> {
        on_step!(self, |db| storage::grants::put_shared_attachment(db, key, preexisting, "attached"))
    }

    async fn record_attaching(&mut self, key: &AttachmentKey<'_>) -> Result<(), sqlx::Error> {
        // On the pool: committed at once, whatever becomes of the step.
        storage::grants::put_shared_attachment(self.pool, key, false, "attaching").await
    }

    async fn forget(&mut self, key: &AttachmentKey<'_>) -> Result<(), sqlx::Error> {
        on_step!(self, |db| storage::grants::delete_shared_attachment(db, key))
    }

    async fn other_holders(&mut self, grant: &Grant) -> Result<i64, sqlx::Error> {
        on_step!(self, |db| storage::grants::other_holders(db, grant))
    }

    /// On the pool, never in the step's transaction: it must outlive a step that fails.
    async fn record_permission_set(&mut self, grant_id: Uuid, arn: &str) -> Result<(), sqlx::Error> {
        storage::grants::record_permission_set(self.pool, grant_id, arn).await
    }
}
