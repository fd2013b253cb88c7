//! A revocation asked for through the API: a pending or active grant starts
//! revoking, recorded on its events and in the audit trail; the worker then
//! takes its access away ([`super::revoke`]).

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::submission::{check_reason, no_grant};
use super::{Failure, Handoff, Refusal, Requester};
use crate::domain::audit::AuditAction;
use crate::domain::grant::Grant;
use crate::domain::grant::{GrantStatus, RevokeReason};
use crate::storage;
use crate::storage::grants::NewEvent;

/// Starts revoking grant `id`, for `reason`. A grant revoking or revoked
/// already is answered as it is; a failed one has nothing to revoke.
pub async fn request(
    db: &PgPool,
    by: Requester<'_>,
    id: Uuid,
    reason: Option<&str>,
    worker: impl Handoff,
) -> Result<Grant, Failure> {
    check_reason(reason)?;
    let current = storage::grants::get(db, id).await?.ok_or_else(|| no_grant(id))?;
    if current.status() == GrantStatus::Failed {
        let message = "the grant failed; there is nothing to revoke".into();
        return Err(Refusal::InvalidState { field: None, message }.into());
    }
    let mut tx = db.begin().await?;
    let Some(revoking) = storage::grants::request_revoke(&mut *tx, id, RevokeReason::Revoked).await? else {
        // Revoking or revoked already. Read on the transaction's connection:
        // waiting for a second one while holding it could exhaust the pool.
        return Ok(storage::grants::get(&mut *tx, id).await?.ok_or_else(|| no_grant(id))?);
    };
    let message = match reason {
        Some(reason) => format!("revocation requested: {reason}"),
        None => "revocation requested".to_string(),
    };
    let event = NewEvent::transition(Some(current.status()), GrantStatus::Revoking, message);
    storage::grants::insert_events(&mut *tx, id, &by.caller.name, &[event]).await?;
    let record = by
        .record(AuditAction::GrantRevoked, id)
        .change("status", current.status(), GrantStatus::Revoking)
        .change("reason", Value::Null, reason);
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    worker.changed();
    tracing::info!(grant_id = %id, caller = %by.caller.name, "grant revocation requested");
    Ok(revoking)
}
