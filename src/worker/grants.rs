//! Applying and revoking grants.
//!
//! A grant is claimed with a lease, worked on, and handed back with its next
//! due time. Each IAM step is idempotent (a deterministic policy name, adoption
//! after EntityAlreadyExists, NoSuchEntity on removal meaning "already gone"),
//! so a grant taken over from a dead replica is finished, not done twice.
//! Shared attachments are counted under a per-user Postgres advisory lock, so
//! holders are counted without races across replicas. A step ends with one
//! statement: the transition, its events and the notification together.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::{Postgres, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::{idle, pause, with_lease};
use crate::app::{AppState, GrantUpdate};
use crate::aws::iam_changes::{CallRecord, IamChanges, GRANT_ID_TAG};
use crate::aws::{AwsClients, AwsError, AwsErrorKind};
use crate::domain::access::Mechanism;
use crate::domain::grant::{backoff, CallOutcome, EventKind, GrantError, GrantStatus, RevokeReason};
use crate::domain::integration::IntegrationStatus;
use crate::error::ApiError;
use crate::storage;
use crate::storage::grants::{GrantRow, NewEvent, Transition};

/// IAM's fixed limit of groups per user.
const MAX_GROUPS_PER_USER: usize = 10;
/// Longest wait between two tries of a revocation that keeps failing: access
/// outlives a recovered fault by at most this much.
const REVOKE_RETRY_CAP: Duration = Duration::from_secs(60);
/// Longest wait between two tries of an apply.
const APPLY_RETRY_CAP: Duration = Duration::from_secs(60);
/// Longest sleep while nothing is due: also how soon expired leases are noticed.
const POLL: Duration = Duration::from_secs(5);

/// Claims due grants and works on them, up to `JIT_IAM_WORKER_CONCURRENCY` at once.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let concurrency = state.config.worker.worker_concurrency as usize;
    let slots = Arc::new(Semaphore::new(concurrency));
    let lease = state.config.worker.worker_lease;
    while !shutdown.is_cancelled() {
        let free = slots.available_permits();
        if free == 0 {
            idle(&shutdown, &state.wake.grants, POLL).await;
            continue;
        }
        match storage::grants::claim_due(&state.worker_db, &state.instance_id, lease, free as i64).await {
            Ok(grants) if !grants.is_empty() => {
                for grant in grants {
                    let permit = slots.clone().try_acquire_owned().expect("claimed no more than the free slots");
                    tokio::spawn(work_on(state.clone(), grant, permit));
                }
            }
            Ok(_) => {
                // Integrations being deleted go once their last grant is revoked.
                if let Err(e) = storage::grants::finish_integration_deletions(&state.worker_db).await {
                    tracing::warn!(error = %e, "cannot finish integration deletions");
                }
                let due_in = storage::grants::next_due_in(&state.worker_db).await.ok().flatten().unwrap_or(POLL);
                idle(&shutdown, &state.wake.grants, due_in.min(POLL)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim grants");
                pause(&shutdown, Duration::from_secs(1)).await;
            }
        }
    }
    // Let work in flight finish; whatever does not is taken over after its lease.
    let _ = tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(concurrency as u32)).await;
}

async fn work_on(state: AppState, grant: GrantRow, permit: OwnedSemaphorePermit) {
    let id = grant.grant_id;
    let lease = state.config.worker.worker_lease;
    let extend = || async {
        match storage::grants::extend_lease(&state.worker_db, id, &state.instance_id, lease).await {
            Ok(ours) => ours,
            Err(e) => {
                tracing::warn!(grant_id = %id, error = %e, "cannot extend the grant lease");
                true
            }
        }
    };
    match with_lease(lease, process(&state, grant), extend).await {
        None => tracing::warn!(grant_id = %id, "grant lease lost; another replica took it over"),
        // The lease runs out and the grant is retried; nothing is lost.
        Some(Err(e)) => tracing::warn!(grant_id = %id, error = %e, "database error while working on a grant"),
        Some(Ok(())) => {}
    }
    drop(permit);
    state.wake.grants.notify_one();
}

/// Works on one grant until it needs nothing more now.
async fn process(state: &AppState, mut grant: GrantRow) -> Result<(), sqlx::Error> {
    let owner = state.instance_id.as_str();
    loop {
        let now = Utc::now();
        let next = match grant.status() {
            GrantStatus::Pending if grant.expires_at <= now => {
                let error = GrantError {
                    code: "expired".into(),
                    message: "expired before it could be applied".into(),
                    aws: None,
                };
                undo(state, &grant, &error, Vec::new()).await?
            }
            GrantStatus::Pending => apply(state, &grant).await?,
            GrantStatus::Active if grant.expires_at <= now => revoke(state, &grant).await?,
            GrantStatus::Revoking => revoke(state, &grant).await?,
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
        let due = grant.next_run_at.is_some_and(|at| at <= Utc::now()) || grant.status() == GrantStatus::Active;
        if !ours || !due {
            return Ok(());
        }
    }
}

/// The clients of the grant's account: the pool's, when the integration has
/// not changed since they were built; None when the integration is gone.
async fn clients(state: &AppState, grant: &GrantRow) -> Result<Option<Arc<AwsClients>>, sqlx::Error> {
    let Some(integration_id) = grant.integration_id else { return Ok(None) };
    if let Some(clients) =
        grant.integration_revision.and_then(|revision| state.aws.cached(integration_id, &grant.account_id, revision))
    {
        return Ok(Some(clients));
    }
    match storage::integrations::get(&state.worker_db, integration_id).await? {
        Some(integration) => Ok(Some(state.aws.clients(&integration, &grant.account_id).await)),
        None => Ok(None),
    }
}

/// The transaction holding the user's lock, for the mechanisms that share attachments.
async fn user_lock(
    state: &AppState,
    grant: &GrantRow,
    mechanism: Mechanism,
) -> Result<Option<Transaction<'static, Postgres>>, sqlx::Error> {
    if mechanism == Mechanism::GeneratedPolicy {
        return Ok(None);
    }
    let mut tx = state.worker_db.begin().await?;
    storage::grants::lock_user(&mut *tx, &grant.account_id, &grant.principal_name).await?;
    Ok(Some(tx))
}

/// Ends a step: in the user's transaction when there is one.
async fn finish(
    state: &AppState,
    tx: Option<Transaction<'static, Postgres>>,
    transition: &Transition<'_>,
    events: &[NewEvent],
) -> Result<Option<GrantRow>, sqlx::Error> {
    match tx {
        Some(mut tx) => {
            let row = storage::grants::finish_step(&mut *tx, transition, events).await?;
            tx.commit().await?;
            Ok(row)
        }
        None => storage::grants::finish_step(&state.worker_db, transition, events).await,
    }
}

/// A step that did not go through.
enum StepError {
    Aws(AwsError),
    Quota(String),
}

impl StepError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Aws(e) if e.is_retryable())
    }

    fn into_grant_error(self) -> GrantError {
        match self {
            Self::Aws(e) => {
                let api = ApiError::from(e.clone());
                let code = serde_json::to_value(api.code).ok().and_then(|v| v.as_str().map(str::to_string));
                GrantError {
                    code: code.unwrap_or_else(|| "aws_error".into()),
                    message: e.to_string(),
                    aws: Some(e.body()),
                }
            }
            Self::Quota(message) => GrantError { code: "quota_exceeded".into(), message, aws: None },
        }
    }
}

impl From<AwsError> for StepError {
    fn from(e: AwsError) -> Self {
        Self::Aws(e)
    }
}

fn call_events(records: &[CallRecord]) -> Vec<NewEvent> {
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
        let outcome = match record.outcome {
            CallOutcome::Success => "success",
            CallOutcome::AlreadyDone => "already_done",
            CallOutcome::Failed => "failed",
        };
        metrics::counter!("jit_iam_grant_aws_calls_total", "operation" => record.operation, "outcome" => outcome)
            .increment(1);
    }
}

/// Makes the IAM change of a pending grant.
async fn apply(state: &AppState, grant: &GrantRow) -> Result<Option<GrantRow>, sqlx::Error> {
    let owner = state.instance_id.as_str();
    let Some(clients) = clients(state, grant).await? else {
        let error = GrantError { code: "not_found".into(), message: "the integration is gone".into(), aws: None };
        return undo(state, grant, &error, Vec::new()).await;
    };
    let iam = IamChanges::new(&clients.iam);
    let mechanism = Mechanism::of(grant.resource_type()).expect("grants target offered types");
    let mut tx = user_lock(state, grant, mechanism).await?;
    let outcome = match (mechanism, tx.as_mut()) {
        (Mechanism::AttachPolicy, Some(tx)) => apply_shared(state, tx, grant, &iam, SharedKind::Policy).await?,
        (Mechanism::GroupMembership, Some(tx)) => apply_shared(state, tx, grant, &iam, SharedKind::Group).await?,
        _ => apply_generated_policy(state, grant, &iam).await?,
    };
    let records = iam.records();
    count_calls(&records);
    let mut events = call_events(&records);
    let error = match outcome {
        Ok(holds_attachment) => {
            events.push(NewEvent::transition(Some(GrantStatus::Pending), GrantStatus::Active, "applied"));
            let t = Transition {
                next_run_at: Some(grant.expires_at),
                holds_attachment,
                ..Transition::new(grant.grant_id, owner, GrantStatus::Pending, GrantStatus::Active)
            };
            let row = finish(state, tx, &t, &events).await?;
            metrics::counter!("jit_iam_grant_transitions_total", "to" => "active").increment(1);
            return Ok(row);
        }
        Err(error) => error,
    };
    let retry_at = Utc::now() + backoff(grant.attempts, APPLY_RETRY_CAP);
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
    grant: &GrantRow,
    error: &GrantError,
    mut events: Vec<NewEvent>,
) -> Result<Option<GrantRow>, sqlx::Error> {
    tracing::warn!(grant_id = %grant.grant_id, code = %error.code, error = %error.message, "grant failed; undoing");
    events.push(NewEvent::transition(
        Some(GrantStatus::Pending),
        GrantStatus::Revoking,
        format!("failed, undoing: {}", error.message),
    ));
    let t = Transition {
        next_run_at: Some(Utc::now()),
        last_error: Some(error),
        ..Transition::new(grant.grant_id, &state.instance_id, GrantStatus::Pending, GrantStatus::Revoking)
    };
    storage::grants::finish_step(&state.worker_db, &t, &events).await
}

/// CreatePolicy + AttachUserPolicy, within the user's managed-policy quota.
///
/// No lock: the quota counts the user's other pending grants too, and AWS
/// itself refuses an attachment over its quota (a permanent error, undone).
async fn apply_generated_policy(
    state: &AppState,
    grant: &GrantRow,
    iam: &IamChanges<'_>,
) -> Result<Result<bool, StepError>, sqlx::Error> {
    let held = storage::grants::managed_policies_of(
        &state.worker_db,
        &grant.account_id,
        &grant.principal_name,
        grant.grant_id,
    )
    .await?;
    let max = state.config.grants.max_policies_per_user as usize;
    if held.len() + 1 > max {
        return Ok(Err(quota_error(&grant.principal_name, held.len(), max)));
    }
    let (Some(name), Some(arn), Some(document)) = (&grant.policy_name, &grant.policy_arn, &grant.policy_document)
    else {
        unreachable!("generated-policy grants store their policy at submission");
    };
    let grant_id = grant.grant_id.to_string();
    let tags = policy_tags(&grant_id, &grant.resource_arn);
    let result = async {
        iam.create_policy(name, arn, &document.0.to_json(), tags, &grant_id).await?;
        iam.attach_user_policy(&grant.principal_name, arn, true).await
    }
    .await;
    Ok(result.map(|()| false).map_err(StepError::from))
}

fn quota_error(user: &str, held: usize, max: usize) -> StepError {
    StepError::Quota(format!(
        "user {user} has {held} managed policies attached and IAM allows {max} (JIT_IAM_MAX_POLICIES_PER_USER)"
    ))
}

fn truncate(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((i, _)) => &value[..i],
        None => value,
    }
}

fn policy_tags(grant_id: &str, resource_arn: &str) -> Vec<aws_sdk_iam::types::Tag> {
    [("managed-by", "jit-iam"), (GRANT_ID_TAG, grant_id), ("jit-iam:resource-arn", truncate(resource_arn, 256))]
        .into_iter()
        .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().expect("key and value are set"))
        .collect()
}

#[derive(Clone, Copy)]
enum SharedKind {
    Policy,
    Group,
}

impl SharedKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::Group => "group",
        }
    }

    /// What IAM calls it: the policy ARN, or the group name.
    fn target(self, grant: &GrantRow) -> &str {
        match self {
            Self::Policy => &grant.resource_arn,
            Self::Group => &grant.resource_name,
        }
    }
}

/// AttachUserPolicy / AddUserToGroup, shared: when the user already has it
/// (before any grant, or through another live grant) nothing is changed, and
/// the grant only joins the holders.
async fn apply_shared(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    grant: &GrantRow,
    iam: &IamChanges<'_>,
    kind: SharedKind,
) -> Result<Result<bool, StepError>, sqlx::Error> {
    let (account, user, target) = (&grant.account_id, &grant.principal_name, kind.target(grant));
    let existing = storage::grants::shared_attachment(&mut *tx, account, user, kind.as_str(), target).await?;
    if existing.as_ref().is_some_and(|a| a.state == "attached") {
        return Ok(Ok(true));
    }
    // No row: first holder. An "attaching" row: an earlier try may have made the change.
    let recovering = existing.is_some();
    let current = match kind {
        SharedKind::Policy => iam.attached_policies(user).await,
        SharedKind::Group => iam.groups_of(user).await,
    };
    let current = match current {
        Ok(current) => current,
        Err(e) => return Ok(Err(e.into())),
    };
    if current.iter().any(|c| c == target) {
        storage::grants::put_shared_attachment(&mut *tx, account, user, kind.as_str(), target, !recovering, "attached")
            .await?;
        return Ok(Ok(true));
    }
    let (count, max) = match kind {
        SharedKind::Policy => (current.len(), state.config.grants.max_policies_per_user as usize),
        SharedKind::Group => (current.len(), MAX_GROUPS_PER_USER),
    };
    if count + 1 > max {
        return Ok(Err(match kind {
            SharedKind::Policy => quota_error(user, count, max),
            SharedKind::Group => StepError::Quota(format!("user {user} is in {count} groups and IAM allows {max}")),
        }));
    }
    // Written and committed before the change, so a crash right after it is recognised as ours.
    storage::grants::put_shared_attachment(&state.worker_db, account, user, kind.as_str(), target, false, "attaching")
        .await?;
    let changed = match kind {
        SharedKind::Policy => iam.attach_user_policy(user, target, false).await,
        SharedKind::Group => iam.add_user_to_group(user, target).await,
    };
    if let Err(e) = changed {
        return Ok(Err(e.into()));
    }
    storage::grants::put_shared_attachment(&mut *tx, account, user, kind.as_str(), target, false, "attached").await?;
    Ok(Ok(true))
}

/// Takes a grant's access away: an active grant that expired, or one whose
/// revocation was asked for (or that failed and is undone). Retried with
/// backoff until it succeeds.
async fn revoke(state: &AppState, grant: &GrantRow) -> Result<Option<GrantRow>, sqlx::Error> {
    let owner = state.instance_id.as_str();
    let from = grant.status();
    let mut events = Vec::new();
    // An expiry goes straight from active to revoked in one step when all goes well.
    let revoke_reason = (from == GrantStatus::Active).then_some(RevokeReason::Expired);
    if revoke_reason.is_some() {
        events.push(NewEvent::transition(Some(GrantStatus::Active), GrantStatus::Revoking, "expired"));
    }
    let mechanism = Mechanism::of(grant.resource_type()).expect("grants target offered types");
    let mut tx = user_lock(state, grant, mechanism).await?;
    let outcome = match clients(state, grant).await? {
        None => {
            Err(StepError::Aws(AwsError::new(AwsErrorKind::Rejected, "jit-iam", "the grant's integration is gone")))
        }
        Some(clients) => {
            let iam = IamChanges::new(&clients.iam);
            let result = match (mechanism, tx.as_mut()) {
                (Mechanism::AttachPolicy, Some(tx)) => revoke_shared(tx, grant, &iam, SharedKind::Policy).await?,
                (Mechanism::GroupMembership, Some(tx)) => revoke_shared(tx, grant, &iam, SharedKind::Group).await?,
                _ => revoke_generated_policy(grant, &iam).await,
            };
            let records = iam.records();
            count_calls(&records);
            events.extend(call_events(&records));
            result
        }
    };
    let was_applied = grant.activated_at.is_some();
    let error = match outcome {
        Ok(()) => {
            let to = if was_applied { GrantStatus::Revoked } else { GrantStatus::Failed };
            events.push(NewEvent::transition(
                Some(GrantStatus::Revoking),
                to,
                if was_applied { "revoked" } else { "undone" },
            ));
            let t = Transition {
                // A failed grant keeps the error that made it fail.
                last_error: if was_applied { None } else { grant.last_error.as_ref().map(|e| &e.0) },
                revoke_reason,
                ..Transition::new(grant.grant_id, owner, from, to)
            };
            let row = finish(state, tx, &t, &events).await?;
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
        next_run_at: Some(Utc::now() + backoff(grant.attempts, REVOKE_RETRY_CAP)),
        attempts: grant.attempts + 1,
        last_error: Some(&error),
        holds_attachment: grant.holds_attachment,
        revoke_reason,
        ..Transition::new(grant.grant_id, owner, from, GrantStatus::Revoking)
    };
    finish(state, tx, &t, &events).await
}

/// Metrics of a finished revocation; and an integration being deleted goes
/// with its last grant (the idle worker sweeps whatever a race leaves).
async fn record_end(state: &AppState, grant: &GrantRow, to: GrantStatus) {
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

/// DetachUserPolicy, then DeletePolicy (IAM refuses to delete an attached policy).
async fn revoke_generated_policy(grant: &GrantRow, iam: &IamChanges<'_>) -> Result<(), StepError> {
    let arn = grant.policy_arn.as_deref().expect("generated-policy grants store their policy ARN");
    iam.detach_user_policy(&grant.principal_name, arn).await?;
    iam.delete_policy(arn).await?;
    Ok(())
}

/// Removes a shared attachment only when no other live grant holds it and the
/// user did not have it before any grant.
async fn revoke_shared(
    tx: &mut sqlx::PgConnection,
    grant: &GrantRow,
    iam: &IamChanges<'_>,
    kind: SharedKind,
) -> Result<Result<(), StepError>, sqlx::Error> {
    let (account, user, target) = (&grant.account_id, &grant.principal_name, kind.target(grant));
    let Some(attachment) = storage::grants::shared_attachment(&mut *tx, account, user, kind.as_str(), target).await?
    else {
        return Ok(Ok(()));
    };
    if storage::grants::other_holders(&mut *tx, grant).await? > 0 {
        return Ok(Ok(()));
    }
    if !attachment.preexisting {
        let removed = match kind {
            SharedKind::Policy => iam.detach_user_policy(user, target).await,
            SharedKind::Group => iam.remove_user_from_group(user, target).await,
        };
        if let Err(e) = removed {
            return Ok(Err(e.into()));
        }
    }
    storage::grants::delete_shared_attachment(&mut *tx, account, user, kind.as_str(), target).await?;
    Ok(Ok(()))
}
