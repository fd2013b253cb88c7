//! Applying and revoking grants.
//!
//! A grant is claimed with a lease, worked on, and handed back with its next
//! due time. What a step does in IAM is `crate::grants`' (each change
//! idempotent, so a grant taken over from a dead replica is finished, not done
//! twice); here it is claimed, leased, retried and recorded. Shared
//! attachments are changed under the grantee's Postgres advisory lock. A step
//! ends with one statement: the transition, its events and the notification
//! together.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Postgres, Transaction};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::{idle, pause, with_lease, LeaseEnd, Renewal};
use crate::app::{AppState, GrantUpdate};
use crate::aws::iam_changes::{CallRecord, IdentityCenterAccess, SdkIam};
use crate::aws::inventory::CallLimiter;
use crate::aws::{identity_center, AwsClients, AwsError, AwsErrorKind};
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::grant::Grant;
use crate::domain::grant::{backoff, EventKind, GrantError, GrantErrorCode, GrantStatus, RevokeReason};
use crate::domain::integration::{IdentityCenterOptions, IntegrationStatus};
use crate::grants::{self, Mechanism, PgLedger, Quotas, StepError};
use crate::storage;
use crate::storage::grants::{NewEvent, Transition};

/// Longest wait between two tries of a revocation that keeps failing: access
/// outlives a recovered fault by at most this much.
const REVOKE_RETRY_CAP: Duration = Duration::from_secs(60);
/// Longest wait between two tries of an apply.
const APPLY_RETRY_CAP: Duration = Duration::from_secs(60);
/// Longest sleep while nothing is due: also how soon expired leases are noticed.
const POLL: Duration = Duration::from_secs(5);

/// Claims due grants and works on them, up to `JIT_IAM_WORKER_CONCURRENCY` at
/// once: the slots it shares with grants handed over at submission, which it
/// never holds while it looks for work.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let concurrency = state.config.worker.worker_concurrency as usize;
    let lease = state.config.worker.worker_lease;
    while !shutdown.is_cancelled() {
        let free = state.grant_slots.available_permits();
        if free == 0 {
            idle(&shutdown, &state.wake.grants, POLL).await;
            continue;
        }
        let per_account = i64::from(state.config.worker.worker_account_concurrency);
        match storage::grants::claim_due(&state.worker_db, &state.instance_id, lease, free as i64, per_account).await {
            Ok(grants) if !grants.is_empty() => {
                for grant in grants {
                    match state.grant_slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            tokio::spawn(work_on(state.clone(), grant, slot));
                        }
                        // A submission took the slot meanwhile: the grant waits for the next round.
                        Err(_) => {
                            if let Err(e) =
                                storage::grants::release(&state.worker_db, grant.grant_id, &state.instance_id).await
                            {
                                tracing::warn!(error = %e, "cannot release a claimed grant; its lease will run out");
                            }
                        }
                    }
                }
            }
            Ok(_) => {
                // Integrations being deleted go once their last grant is revoked.
                if let Err(e) = storage::grants::finish_integration_deletions(&state.worker_db).await {
                    tracing::warn!(error = %e, "cannot finish integration deletions");
                }
                let due_in = storage::grants::next_due_in(&state.worker_db).await.ok().flatten().unwrap_or(POLL);
                // Due but not claimed: its account is at its cap (or another replica
                // is claiming it). A grant finishing here wakes the loop; one finishing
                // on another replica is noticed within the poll.
                let due_in = if due_in.is_zero() { POLL } else { due_in };
                idle(&shutdown, &state.wake.grants, due_in.min(POLL)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim grants");
                pause(&shutdown, Duration::from_secs(1)).await;
            }
        }
    }
    // Let work in flight finish; whatever does not is taken over after its lease.
    let _ = tokio::time::timeout(Duration::from_secs(10), state.grant_slots.acquire_many(concurrency as u32)).await;
}

/// This process's worker, as the use cases of `grants` hand grants to it.
pub struct LocalWorker {
    state: AppState,
    slot: Option<OwnedSemaphorePermit>,
}

impl LocalWorker {
    pub fn new(state: &AppState) -> Self {
        Self { state: state.clone(), slot: None }
    }
}

impl grants::Handoff for LocalWorker {
    /// A free slot, taken before a grant is stored: the grant is then stored
    /// already leased to this process and worked on at once, saving a claim
    /// (a commit) and a wake-up on the way to active.
    ///
    /// Only while more than half the slots are free: a flood of submissions
    /// must not take the slots that due revocations need. Past that,
    /// submissions queue with the rest and are claimed in order of their due time.
    fn reserve(&mut self) -> Option<(&str, Duration)> {
        let concurrency = self.state.config.worker.worker_concurrency as usize;
        if self.state.grant_slots.available_permits() <= concurrency / 2 {
            return None;
        }
        self.slot = self.state.grant_slots.clone().try_acquire_owned().ok();
        self.slot.as_ref().map(|_| (self.state.instance_id.as_str(), self.state.config.worker.worker_lease))
    }

    fn submitted(self, grant: &Grant) {
        match self.slot {
            Some(slot) => {
                metrics::counter!("jit_iam_grant_handoffs_total").increment(1);
                tokio::spawn(work_on(self.state, grant.clone(), slot));
            }
            None => self.state.wake.grants.notify_one(),
        }
    }

    fn changed(self) {
        self.state.wake.grants.notify_one();
    }
}

async fn work_on(state: AppState, grant: Grant, permit: OwnedSemaphorePermit) {
    let id = grant.grant_id;
    let lease = state.config.worker.worker_lease;
    let renew = || async {
        match storage::grants::extend_lease(&state.worker_db, id, &state.instance_id, lease).await {
            Ok(true) => Renewal::Renewed,
            Ok(false) => Renewal::Lost,
            Err(e) => {
                tracing::warn!(grant_id = %id, error = %e, "cannot extend the grant lease");
                Renewal::Unknown
            }
        }
    };
    match with_lease(lease, process(&state, grant), renew).await {
        Ok(Ok(())) => {}
        Err(LeaseEnd::Lost) => tracing::warn!(grant_id = %id, "grant lease lost; another replica took it over"),
        Err(LeaseEnd::Unconfirmed) => {
            tracing::warn!(grant_id = %id, "grant lease not renewed in time; stopped before it could run out")
        }
        // The lease runs out and the grant is retried; nothing is lost.
        Ok(Err(e)) => tracing::warn!(grant_id = %id, error = %e, "database error while working on a grant"),
    }
    drop(permit);
    // The claim loop looks again: a slot is free, and this grant's account may
    // have been at its cap with more of its grants due.
    state.wake.grants.notify_one();
}

/// Works on one grant until it needs nothing more now.
async fn process(state: &AppState, mut grant: Grant) -> Result<(), sqlx::Error> {
    let owner = state.instance_id.as_str();
    loop {
        // Expiry is decided by one clock, Postgres's, whatever this replica's says.
        let now = grant.read_at();
        let next = match grant.status() {
            GrantStatus::Pending if grant.expires_at <= now => {
                let error = GrantError {
                    code: GrantErrorCode::Expired,
                    message: "expired before it could be applied".into(),
                    aws: None,
                };
                undo(state, &grant, &error, Vec::new()).await?
            }
            GrantStatus::Pending => apply(state, &grant).await?,
            GrantStatus::Active if grant.expires_at <= now => revoke(state, &grant).await?,
            GrantStatus::Revoking => revoke(state, &grant).await?,
            GrantStatus::Revoked | GrantStatus::Failed if grant.sessions_denied_until.is_some_and(|at| at <= now) => {
                lift_sessions_deny(state, &grant).await?
            }
            GrantStatus::Active | GrantStatus::Revoked | GrantStatus::Failed => {
                return storage::grants::release(&state.worker_db, grant.grant_id, owner).await;
            }
        };
        let _ = state.grant_updates.send(GrantUpdate { id: grant.grant_id, grant: next.clone().map(Arc::new) });
        let integration = (grant.integration_revision, grant.integration_status.take());
        grant = match next {
            Some(row) => row,
            // Changed under us (revoked or extended through the API): look again.
            None => match storage::grants::get(&state.worker_db, grant.grant_id).await? {
                Some(row) => row,
                None => return Ok(()),
            },
        };
        (grant.integration_revision, grant.integration_status) = integration;
        let ours = grant.lease_owner.as_deref() == Some(owner);
        let due = grant.next_run_at.is_some_and(|at| at <= grant.read_at()) || grant.status() == GrantStatus::Active;
        if !ours || !due {
            return Ok(());
        }
    }
}

/// The clients a grant's calls go through, with the integration's Identity
/// Center options for an Identity Center principal's grant.
struct GrantClients {
    clients: Arc<AwsClients>,
    identity_center: Option<IdentityCenterOptions>,
}

/// The clients of the grant's account: the pool's, when the integration has
/// not changed since they were built; None when the integration is gone. An
/// Identity Center principal's grants go through the root account, the
/// instance's, whatever the resource's account (their integration is read
/// each time: its options name the instance).
async fn clients(state: &AppState, grant: &Grant) -> Result<Option<GrantClients>, sqlx::Error> {
    let Some(integration_id) = grant.integration_id else { return Ok(None) };
    let identity_center = grant.grantee().principal_type.is_identity_center();
    if let Some(clients) = grant
        .integration_revision
        .filter(|_| !identity_center)
        .and_then(|revision| state.aws.cached(integration_id, &grant.account_id, revision))
    {
        return Ok(Some(GrantClients { clients, identity_center: None }));
    }
    let Some(integration) = storage::integrations::get(&state.worker_db, integration_id).await? else {
        return Ok(None);
    };
    Ok(Some(match identity_center {
        true => GrantClients {
            clients: state.aws.clients(&integration, &integration.root_account.account_id).await,
            identity_center: integration.options.identity_center,
        },
        false => {
            GrantClients { clients: state.aws.clients(&integration, &grant.account_id).await, identity_center: None }
        }
    }))
}

/// The calls a grant makes through its clients: for an Identity Center grant,
/// with the integration's instance (as configured, or found with sso:ListInstances).
async fn changes<'a>(state: &AppState, grant: &Grant, found: &'a GrantClients) -> SdkIam<'a> {
    let clients = &found.clients;
    let iam = SdkIam::new(&clients.iam);
    if !grant.grantee().principal_type.is_identity_center() {
        return iam;
    }
    let instance = match &found.identity_center {
        Some(options) => identity_center::instance(clients, options, &CallLimiter::new(1)).await,
        None => Err(AwsError::new(
            AwsErrorKind::Rejected,
            "sso",
            "the grant's integration no longer has options.identity_center: its Identity Center instance is unknown",
        )),
    };
    iam.with_identity_center(IdentityCenterAccess {
        sso_admin: &clients.sso_admin,
        identity_store: &clients.identity_store,
        instance,
        provisioning_wait: state.config.grants.identity_center_provisioning_wait,
        assignment_creations: clients.identity_center_limits().assignment_creations(),
    })
}

/// The transaction holding the grantee's lock, for the mechanisms that share attachments.
async fn principal_lock(
    state: &AppState,
    grant: &Grant,
) -> Result<Option<Transaction<'static, Postgres>>, sqlx::Error> {
    if !grants::mechanism_of(grant).is_some_and(Mechanism::is_shared) {
        return Ok(None);
    }
    let mut tx = state.worker_db.begin().await?;
    storage::grants::lock_principal(&mut *tx, &grant.grantee()).await?;
    Ok(Some(tx))
}

/// Ends a step: in the grantee's transaction when there is one.
async fn finish(
    state: &AppState,
    tx: Option<Transaction<'static, Postgres>>,
    transition: &Transition<'_>,
    events: &[NewEvent],
) -> Result<Option<Grant>, sqlx::Error> {
    match tx {
        Some(mut tx) => {
            let row = storage::grants::finish_step(&mut *tx, transition, events).await?;
            tx.commit().await?;
            Ok(row)
        }
        None => storage::grants::finish_step(&state.worker_db, transition, events).await,
    }
}

pub(super) fn call_events(records: &[CallRecord]) -> Vec<NewEvent> {
    records
        .iter()
        .map(|r| NewEvent {
            kind: EventKind::AwsCall,
            from_status: None,
            to_status: None,
            operation: Some(r.operation.to_string()),
            target: Some(r.target.clone()),
            outcome: Some(r.outcome),
            aws_request_id: r.request_id.clone(),
            error_code: r.error.as_ref().and_then(|e| e.code.clone()),
            message: r.error.as_ref().map(|e| e.to_string()),
            attempts: Some(r.attempts as i32),
        })
        .collect()
}

fn count_calls(records: &[CallRecord]) {
    for record in records {
        let outcome = record.outcome.as_str();
        metrics::counter!("jit_iam_grant_aws_calls_total", "operation" => record.operation, "outcome" => outcome)
            .increment(1);
    }
}

/// Makes the IAM change of a pending grant.
async fn apply(state: &AppState, grant: &Grant) -> Result<Option<Grant>, sqlx::Error> {
    let owner = state.instance_id.as_str();
    let Some(clients) = clients(state, grant).await? else {
        let error = GrantError { code: GrantErrorCode::NotFound, message: "the integration is gone".into(), aws: None };
        return undo(state, grant, &error, Vec::new()).await;
    };
    let iam = changes(state, grant, &clients).await;
    let mut tx = principal_lock(state, grant).await?;
    let mut ledger = PgLedger::new(&state.worker_db, tx.as_deref_mut());
    let outcome = grants::apply(&iam, &mut ledger, grant, &Quotas::from(&state.config.grants)).await?;
    let session_duration_seconds = match outcome {
        Ok(_) => grants::session_duration(&iam, grant).await,
        Err(_) => None,
    };
    let records = iam.records();
    count_calls(&records);
    let mut events = call_events(&records);
    let error = match outcome {
        Ok(holds_attachment) => {
            events.push(NewEvent::transition(Some(GrantStatus::Pending), GrantStatus::Active, "applied"));
            let t = Transition {
                holds_attachment,
                session_duration_seconds,
                ..Transition::new(grant.grant_id, owner, GrantStatus::Pending, GrantStatus::Active)
            };
            let row = finish(state, tx, &t, &events).await?;
            metrics::counter!("jit_iam_grant_transitions_total", "to" => "active").increment(1);
            return Ok(row);
        }
        Err(error) => error,
    };
    let retry_at = grant.read_at() + backoff(grant.attempts, APPLY_RETRY_CAP);
    let retry = error.is_retryable() && retry_at < grant.expires_at;
    let error = error.into_grant_error();
    if !retry {
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        return undo(state, grant, &error, events).await;
    }
    events.push(NewEvent::transition(
        Some(GrantStatus::Pending),
        GrantStatus::Pending,
        format!("will retry: {}", error.message),
    ));
    let t = Transition {
        next_run_at: Some(retry_at),
        attempts: grant.attempts + 1,
        last_error: Some(&error),
        ..Transition::new(grant.grant_id, owner, GrantStatus::Pending, GrantStatus::Pending)
    };
    finish(state, tx, &t, &events).await
}

/// A permanent failure: record it and hand the grant to the revocation path,
/// which removes whatever was done (retrying until it succeeds) and ends in `failed`.
async fn undo(
    state: &AppState,
    grant: &Grant,
    error: &GrantError,
    mut events: Vec<NewEvent>,
) -> Result<Option<Grant>, sqlx::Error> {
    tracing::warn!(grant_id = %grant.grant_id, code = error.code.as_str(), error = %error.message, "grant failed; undoing");
    events.push(NewEvent::transition(
        Some(GrantStatus::Pending),
        GrantStatus::Revoking,
        format!("failed, undoing: {}", error.message),
    ));
    let t = Transition {
        next_run_at: Some(grant.read_at()),
        last_error: Some(error),
        ..Transition::new(grant.grant_id, &state.instance_id, GrantStatus::Pending, GrantStatus::Revoking)
    };
    storage::grants::finish_step(&state.worker_db, &t, &events).await
}

/// Takes a grant's access away: an active grant that expired, or one whose
/// revocation was asked for (or that failed and is undone). Retried with
/// backoff until it succeeds.
async fn revoke(state: &AppState, grant: &Grant) -> Result<Option<Grant>, sqlx::Error> {
    let owner = state.instance_id.as_str();
    let from = grant.status();
    let mut events = Vec::new();
    // An expiry goes straight from active to revoked in one step when all goes well.
    let revoke_reason = (from == GrantStatus::Active).then_some(RevokeReason::Expired);
    if revoke_reason.is_some() {
        events.push(NewEvent::transition(Some(GrantStatus::Active), GrantStatus::Revoking, "expired"));
    }
    let mut tx = principal_lock(state, grant).await?;
    let mut session_duration_seconds = None;
    let outcome = match clients(state, grant).await? {
        None => {
            Err(StepError::Aws(AwsError::new(AwsErrorKind::Rejected, "jit-iam", "the grant's integration is gone")))
        }
        Some(clients) => {
            let iam = changes(state, grant, &clients).await;
            let mut ledger = PgLedger::new(&state.worker_db, tx.as_deref_mut());
            let result = grants::revoke(&iam, &mut ledger, grant).await?;
            if result.is_ok() && grant.activated_at.is_some() {
                session_duration_seconds = grants::session_duration(&iam, grant).await;
            }
            let records = iam.records();
            count_calls(&records);
            events.extend(call_events(&records));
            result
        }
    };
    let was_applied = grant.activated_at.is_some();
    let error = match outcome {
        Ok(sessions_denied_until) => {
            let to = if was_applied { GrantStatus::Revoked } else { GrantStatus::Failed };
            let message = match (was_applied, sessions_denied_until) {
                (false, _) => "undone".to_string(),
                (true, None) => "revoked".to_string(),
                (true, Some(until)) => format!(
                    "revoked; its sessions ({}) are denied on role {} until {}",
                    grants::sessions::session_name(grant.grant_id),
                    grant.resource_name,
                    until.to_rfc3339()
                ),
            };
            events.push(NewEvent::transition(Some(GrantStatus::Revoking), to, message));
            let t = Transition {
                // A failed grant keeps the error that made it fail.
                last_error: if was_applied { None } else { grant.last_error.as_ref() },
                revoke_reason,
                // The worker comes back to remove the deny.
                next_run_at: sessions_denied_until,
                sessions_denied_until,
                session_duration_seconds,
                ..Transition::new(grant.grant_id, owner, from, to)
            };
            let row = match sessions_denied_until {
                None => finish(state, tx, &t, &events).await?,
                // The deny jit-iam put on the role is in the audit trail, in the step's transaction.
                Some(until) => {
                    let mut tx = match tx {
                        Some(tx) => tx,
                        None => state.worker_db.begin().await?,
                    };
                    let row = storage::grants::finish_step(&mut *tx, &t, &events).await?;
                    record_sessions_denied(&mut tx, grant, until).await?;
                    tx.commit().await?;
                    row
                }
            };
            if row.is_some() {
                record_end(state, grant, to).await;
            }
            return Ok(row);
        }
        Err(error) => error.into_grant_error(),
    };
    tracing::warn!(grant_id = %grant.grant_id, error = %error.message, "revocation failed; will retry");
    events.push(NewEvent::transition(
        Some(GrantStatus::Revoking),
        GrantStatus::Revoking,
        format!("revocation failed, will retry: {}", error.message),
    ));
    let t = Transition {
        next_run_at: Some(grant.read_at() + backoff(grant.attempts, REVOKE_RETRY_CAP)),
        attempts: grant.attempts + 1,
        last_error: Some(&error),
        holds_attachment: grant.holds_attachment,
        revoke_reason,
        ..Transition::new(grant.grant_id, owner, from, GrantStatus::Revoking)
    };
    finish(state, tx, &t, &events).await
}

/// The audit trail's record of a deny jit-iam put on a role by itself.
async fn record_sessions_denied(
    tx: &mut Transaction<'static, Postgres>,
    grant: &Grant,
    until: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let record = AuditRecord::service(AuditAction::GrantSessionsDenied, grant.grant_id)
        .change("role", Value::Null, &grant.resource_name)
        .change("inline_policy", Value::Null, grants::sessions::deny_policy_name(grant.grant_id))
        .change("session_name", Value::Null, grants::sessions::session_name(grant.grant_id))
        .change("until", Value::Null, until);
    storage::audit::record(&mut **tx, &record).await
}

/// Removes the deny of an ended `assume` grant's sessions once they have all
/// run out; retried with backoff until it goes.
async fn lift_sessions_deny(state: &AppState, grant: &Grant) -> Result<Option<Grant>, sqlx::Error> {
    let owner = state.instance_id.as_str();
    let status = grant.status();
    let policy = grants::sessions::deny_policy_name(grant.grant_id);
    let (outcome, mut events) = match clients(state, grant).await? {
        // jit-iam can no longer reach the account: the deny stays, and says why.
        None => (
            Ok(()),
            vec![NewEvent::transition(
                Some(status),
                status,
                format!("the integration is gone: the inline policy {policy} stays on role {}", grant.resource_name),
            )],
        ),
        Some(found) => {
            let iam = SdkIam::new(&found.clients.iam);
            let lifted = grants::sessions::lift(&iam, grant).await;
            let records = iam.records();
            count_calls(&records);
            (lifted, call_events(&records))
        }
    };
    let t = match outcome {
        Ok(()) => {
            events.push(NewEvent::transition(Some(status), status, "the grant's sessions have run out: deny removed"));
            Transition::new(grant.grant_id, owner, status, status)
        }
        Err(error) => {
            let error = error.into_grant_error();
            events.push(NewEvent::transition(
                Some(status),
                status,
                format!("cannot remove the deny of the grant's sessions, will retry: {}", error.message),
            ));
            return storage::grants::finish_step(
                &state.worker_db,
                &Transition {
                    next_run_at: Some(grant.read_at() + backoff(grant.attempts, REVOKE_RETRY_CAP)),
                    attempts: grant.attempts + 1,
                    sessions_denied_until: grant.sessions_denied_until,
                    last_error: Some(&error),
                    ..Transition::new(grant.grant_id, owner, status, status)
                },
                &events,
            )
            .await;
        }
    };
    let mut tx = state.worker_db.begin().await?;
    let row = storage::grants::finish_step(&mut *tx, &t, &events).await?;
    let record = AuditRecord::service(AuditAction::GrantSessionsDenyRemoved, grant.grant_id)
        .change("role", &grant.resource_name, Value::Null)
        .change("inline_policy", &policy, Value::Null);
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    Ok(row)
}

/// Metrics of a finished revocation; and an integration being deleted goes
/// with its last grant (the idle worker sweeps whatever a race leaves).
async fn record_end(state: &AppState, grant: &Grant, to: GrantStatus) {
    metrics::counter!("jit_iam_grant_transitions_total", "to" => to.as_str()).increment(1);
    let expired =
        grant.status() == GrantStatus::Active || grant.revoke_reason.as_deref() == Some(RevokeReason::Expired.as_str());
    if expired {
        let lag = (Utc::now() - grant.expires_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("jit_iam_revocation_lag_seconds").record(lag);
    }
    if grant.integration_status.as_deref() == Some(IntegrationStatus::Deleting.as_str()) {
        match storage::grants::finish_integration_deletions(&state.worker_db).await {
            Ok(0) => {}
            Ok(_) => tracing::info!(integration_id = ?grant.integration_id, "integration deleted after its last grant"),
            Err(e) => tracing::warn!(error = %e, "cannot finish integration deletions"),
        }
    }
}
