//! Submission and extension, the use cases: the form of the request, what is
//! checked before a grant is accepted or made longer (the offer: the
//! integration active, the resource offered under its tag filter now, the
//! grantee in the inventory; the integration's grant policy: levels, longest
//! grant; the expiry; then the mechanism's plan), the idempotent replay of a
//! request id, storing the grant with its audit record, and the hand-off to
//! the worker. Refusals name the request field; `api/` answers them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    plan, planned_calls, temporary_permission_set, Failure, Handoff, Mechanism, Plan, PlannedCall, PolicyQuota, Quotas,
    Refusal, Request, Requester,
};
use crate::config::GrantConfig;
use crate::domain::audit::AuditAction;
use crate::domain::grant::Grant;
use crate::domain::grant::{GrantStatus, Grantee, PermissionSetRoom, PrincipalType, TargetAccount};
use crate::domain::integration::{GrantBounds, Integration, IntegrationStatus};
use crate::domain::policy::{GeneratedPolicy, PolicyDocument, TemporaryPermissionSet};
use crate::domain::resource::{AccessLevel, Resource, ResourceType};
use crate::storage;
use crate::storage::grants::{NewEvent, NewGrant};
use crate::storage::resources::FoundGrantee;

/// How long a grant is asked to last: `duration_seconds` or `expires_at`.
#[derive(Clone, Copy, Debug)]
pub enum Length {
    Seconds(i64),
    Until(DateTime<Utc>),
}

impl Length {
    /// Exactly one of `duration_seconds` and `expires_at`.
    pub fn of(duration_seconds: Option<i64>, expires_at: Option<DateTime<Utc>>) -> Result<Self, Refusal> {
        match (duration_seconds, expires_at) {
            (Some(seconds), None) => Ok(Length::Seconds(seconds)),
            (None, Some(at)) => Ok(Length::Until(at)),
            _ => Err(Refusal::Invalid {
                field: "duration_seconds",
                message: "give exactly one of `duration_seconds` and `expires_at`".into(),
            }),
        }
    }

    /// The request field that asked for it.
    pub fn field(self) -> &'static str {
        match self {
            Length::Seconds(_) => "duration_seconds",
            Length::Until(_) => "expires_at",
        }
    }
}

/// A grant as submitted (or previewed): the request's fields as given.
pub struct Submission<'a> {
    pub integration_id: Uuid,
    pub resource_id: Option<Uuid>,
    pub resource_arn: Option<&'a str>,
    pub access_level: AccessLevel,
    pub principal_type: PrincipalType,
    pub principal_name: &'a str,
    pub duration_seconds: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The portal's id of the approved request: submitting it again is the same grant.
    pub request_id: &'a str,
    pub approved_by: &'a str,
    pub reason: Option<&'a str>,
    /// The account a permission set is assigned in (permission set grants only).
    pub account_id: Option<&'a str>,
}

impl Submission<'_> {
    /// What makes a submission again with the request id the same one: the
    /// SHA-256 of the request body's JSON, every field (null when not given),
    /// keys in order. Stored with the grant: it never changes for a body.
    pub fn fingerprint(&self) -> String {
        let mut body = json!({
            "integration_id": self.integration_id,
            "resource_id": self.resource_id,
            "resource_arn": self.resource_arn,
            "access_level": self.access_level,
            "principal": {"type": self.principal_type, "name": self.principal_name},
            "duration_seconds": self.duration_seconds,
            "expires_at": self.expires_at,
            "request_id": self.request_id,
            "approved_by": self.approved_by,
            "reason": self.reason,
        });
        // Only when given: the fingerprints of bodies from before the field stay as they were.
        if let Some(account_id) = self.account_id {
            body["account_id"] = json!(account_id);
        }
        let digest = Sha256::digest(body.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The form, before anything is looked up: the texts, and exactly one of
    /// each pair the document states (`SubmitGrant::EXACTLY_ONE_OF`).
    pub(super) fn form(&self) -> Result<Length, Refusal> {
        check_text(self.request_id, "request_id", 256)?;
        check_text(self.approved_by, "approved_by", 256)?;
        check_reason(self.reason)?;
        if self.resource_id.is_some() == self.resource_arn.is_some() {
            let message = "give exactly one of `resource_id` and `resource_arn`".into();
            return Err(Refusal::Invalid { field: "resource_id", message });
        }
        if let Some(account_id) = self.account_id {
            if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
                let message = "`account_id` is an AWS account id: 12 digits".into();
                return Err(Refusal::Invalid { field: "account_id", message });
            }
        }
        Length::of(self.duration_seconds, self.expires_at)
    }
}

/// A name or id a person gives: 1 to `max` characters, not only spaces, no control characters.
pub(super) fn check_text(value: &str, field: &'static str, max: usize) -> Result<(), Refusal> {
    let length = value.chars().count();
    if value.trim().is_empty() || length > max || value.chars().any(char::is_control) {
        return Err(Refusal::Invalid { field, message: format!("`{field}` must be 1-{max} printable characters") });
    }
    Ok(())
}

/// Why a grant is asked for, or changed: at most 2000 characters.
pub(super) fn check_reason(reason: Option<&str>) -> Result<(), Refusal> {
    match reason {
        Some(reason) if reason.chars().count() > 2000 => {
            Err(Refusal::Invalid { field: "reason", message: "`reason` may be at most 2000 characters".into() })
        }
        _ => Ok(()),
    }
}

/// Everything checked before a grant is accepted.
pub struct Checked {
    pub integration: Integration,
    pub resource: Resource,
    pub grantee: Grantee,
    pub principal_arn: String,
    pub principal_id: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub plan: Plan,
}

impl Checked {
    /// The policy a generated-policy grant creates; without a grant id (preview), a placeholder name.
    pub fn generated_policy(&self, grant_id: Option<Uuid>) -> GeneratedPolicy {
        let partition = self.integration.root_role_arn().partition.as_str();
        match grant_id {
            Some(id) => GeneratedPolicy::for_grant(id, partition, &self.resource.account_id),
            None => GeneratedPolicy::placeholder(partition, &self.resource.account_id),
        }
    }

    /// The name and ARN of what carries the grant's policy document: the IAM
    /// policy jit-iam creates, or the temporary permission set (whose ARN is
    /// known only once it is created). Without a grant id (preview), placeholders.
    pub fn policy_identity(&self, grant_id: Option<Uuid>) -> (String, Option<String>) {
        if self.plan.mechanism != Mechanism::TemporaryPermissionSet {
            let policy = self.generated_policy(grant_id);
            return (policy.name, Some(policy.arn));
        }
        match grant_id {
            Some(id) => (TemporaryPermissionSet::for_grant(id, None).name, None),
            None => (temporary_permission_set::PLACEHOLDER_NAME.to_string(), None),
        }
    }
}

/// A check's answer: the database failing, or the grant refused, or what was checked.
pub type Checking<T> = Result<Result<T, Refusal>, sqlx::Error>;

/// What a grant would do, changing nothing: `POST /v1/grants/preview`.
pub struct Preview {
    pub integration_id: Uuid,
    pub resource: Resource,
    pub access_level: AccessLevel,
    pub principal_arn: String,
    pub expires_at: DateTime<Utc>,
    /// The policy a generated-policy grant would create, under a placeholder name.
    pub policy: Option<(String, PolicyDocument)>,
    pub apply_calls: Vec<PlannedCall>,
    pub revoke_calls: Vec<PlannedCall>,
    pub managed_policies: Option<PolicyQuota>,
}

/// Checks a submission as `submit` does and plans it: the exact policy and
/// AWS calls, without storing or changing anything.
pub async fn preview(db: &PgPool, config: &GrantConfig, submission: &Submission<'_>) -> Result<Preview, Failure> {
    let checked = check(db, config, submission, None).await??;
    let policy = checked.plan.policy.as_ref().map(|_| checked.generated_policy(None));
    let (apply_calls, revoke_calls) =
        planned_calls(&checked.plan, &checked.grantee, &checked.resource, policy.as_ref());
    let policy_name = checked.plan.policy.as_ref().map(|_| checked.policy_identity(None).0);
    Ok(Preview {
        integration_id: checked.integration.id,
        access_level: submission.access_level,
        principal_arn: checked.principal_arn,
        expires_at: checked.expires_at,
        policy: policy_name.zip(checked.plan.policy),
        apply_calls,
        revoke_calls,
        managed_policies: checked.plan.quota,
        resource: checked.resource,
    })
}

/// The service's shortest and longest grant.
pub fn bounds(config: &GrantConfig) -> GrantBounds {
    GrantBounds { min: config.min_grant, max: config.max_grant }
}

/// Checks a submission (or a preview): its form, then the offer, the
/// integration's grant policy and the mechanism's rules. `grant_id`: the id
/// the grant will have; None in a preview.
pub async fn check(
    db: &PgPool,
    config: &GrantConfig,
    submission: &Submission<'_>,
    grant_id: Option<Uuid>,
) -> Checking<Checked> {
    let s = submission;
    let length = match s.form() {
        Ok(length) => length,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // Every lookup in one round, side by side: a grant's latency is mostly
    // round trips. Expiry is counted on Postgres's clock, the one the worker
    // decides by, whatever this replica's says.
    let target_account = async {
        match s.account_id {
            Some(account_id) => {
                storage::accounts::target(db, s.integration_id, account_id, s.resource_id, s.resource_arn)
                    .await
                    .map(Some)
            }
            None => Ok(None),
        }
    };
    // Identity Center principals may be given a temporary permission set: its room.
    let permission_set_room = async {
        match s.principal_type.is_identity_center() {
            true => storage::grants::permission_set_room(db, s.integration_id, s.resource_id, s.resource_arn)
                .await
                .map(Some),
            false => Ok(None),
        }
    };
    let (db_now, integration, resource, grantee_found, target_account, permission_set_room) = tokio::try_join!(
        storage::now(db),
        storage::integrations::get(db, s.integration_id),
        storage::resources::find_offered(db, s.integration_id, s.resource_id, s.resource_arn),
        storage::resources::find_grantee(
            db,
            s.integration_id,
            s.resource_id,
            s.resource_arn,
            s.principal_type,
            s.principal_name
        ),
        target_account,
        permission_set_room,
    )?;
    let found = Found { db_now, integration, resource, grantee: grantee_found, target_account, permission_set_room };
    Ok(offered(config, s, length, grant_id, found))
}

/// What the lookups of a submission found.
struct Found {
    db_now: DateTime<Utc>,
    integration: Option<Integration>,
    resource: Option<Resource>,
    grantee: Option<FoundGrantee>,
    /// The account named by `account_id` when given: None inside when not the integration's.
    target_account: Option<Option<TargetAccount>>,
    permission_set_room: Option<PermissionSetRoom>,
}

/// The rules, on what the lookups found. What the request refers to and does
/// not exist is not found, naming the field.
fn offered(
    config: &GrantConfig,
    s: &Submission<'_>,
    length: Length,
    grant_id: Option<Uuid>,
    found: Found,
) -> Result<Checked, Refusal> {
    let integration = active(found.integration, s.integration_id)?;
    let field = if s.resource_arn.is_some() { "resource_arn" } else { "resource_id" };
    let resource = found.resource.ok_or_else(|| Refusal::NotFound {
        field: Some(field),
        message: "not in this integration's inventory, or excluded by its tag filter".into(),
    })?;
    let grantee = Grantee {
        principal_type: s.principal_type,
        name: s.principal_name.to_string(),
        account_id: resource.account_id.clone(),
    };
    let FoundGrantee { principal, held, unique_id: principal_id } = found.grantee.ok_or_else(|| Refusal::NotFound {
        field: Some("principal.name"),
        message: format!(
            "no {} `{}` in account {} (as of the last sync)",
            grantee.principal_type.label(),
            grantee.name,
            grantee.account_id
        ),
    })?;
    check_level(&integration, resource.resource_type, s.access_level)?;
    let expires_at = expiry(config, &integration, length, found.db_now)?;
    let request = Request {
        integration: &integration,
        resource: &resource,
        level: s.access_level,
        grantee: &grantee,
        principal: &principal,
        held: &held,
        resource_field: field,
        grant_id,
        target_account: s.account_id.map(|id| (id, found.target_account.as_ref().and_then(Option::as_ref))),
        permission_set_room: found.permission_set_room.as_ref(),
    };
    let plan = plan(&request, &Quotas::from(config))?;
    Ok(Checked { integration, resource, grantee, principal_arn: principal.arn, principal_id, expires_at, plan })
}

/// The integration a submission names, which must exist and be active.
fn active(integration: Option<Integration>, id: Uuid) -> Result<Integration, Refusal> {
    let integration = integration.ok_or_else(|| Refusal::NotFound {
        field: Some("integration_id"),
        message: format!("no integration with id {id}"),
    })?;
    if integration.status != IntegrationStatus::Active {
        return Err(being_deleted(Some("integration_id")));
    }
    Ok(integration)
}

fn being_deleted(field: Option<&'static str>) -> Refusal {
    Refusal::InvalidState { field, message: "the integration is being deleted".into() }
}

/// The integration's grant policy: `level` may be asked for on `resource_type`.
fn check_level(integration: &Integration, resource_type: ResourceType, level: AccessLevel) -> Result<(), Refusal> {
    integration
        .options
        .allows(resource_type, level)
        .map_err(|message| Refusal::Invalid { field: "access_level", message })
}

/// A grant's lifetime, counted from `counted_from`, within the integration's
/// maximum (its `options.max_duration`, or else `JIT_IAM_MAX_GRANT`).
fn check_lifetime(
    config: &GrantConfig,
    integration: &Integration,
    lifetime: Duration,
    field: &'static str,
    counted_from: &str,
) -> Result<(), Refusal> {
    let max = integration.options.longest_grant(bounds(config));
    if lifetime > max.length {
        return Err(Refusal::Invalid {
            field,
            message: format!("a grant lasts {} from {counted_from}", max.describe()),
        });
    }
    Ok(())
}

/// The expiry asked for: at least `JIT_IAM_MIN_GRANT` after `from`, and
/// within the integration's maximum.
fn expiry(
    config: &GrantConfig,
    integration: &Integration,
    length: Length,
    from: DateTime<Utc>,
) -> Result<DateTime<Utc>, Refusal> {
    let (field, lasts) = match length {
        Length::Seconds(seconds) => (length.field(), Duration::from_secs(seconds.max(0) as u64)),
        Length::Until(at) => (length.field(), (at - from).to_std().unwrap_or(Duration::ZERO)),
    };
    if lasts < config.min_grant {
        let message =
            format!("a grant lasts at least {} (JIT_IAM_MIN_GRANT)", humantime::format_duration(config.min_grant));
        return Err(Refusal::Invalid { field, message });
    }
    check_lifetime(config, integration, lasts, field, "now")?;
    Ok(match length {
        Length::Seconds(seconds) => from + chrono::Duration::seconds(seconds),
        Length::Until(at) => at,
    })
}

/// An extension of `current` to `new_expiry`: the integration must still
/// offer what the grant holds, as at submission. Call it in the transaction
/// that extends: it share-locks the integration, so no deletion or change of
/// the integration interleaves.
pub async fn check_extension(
    tx: &mut PgConnection,
    config: &GrantConfig,
    current: &Grant,
    new_expiry: DateTime<Utc>,
    field: &'static str,
) -> Checking<()> {
    let gone = || Refusal::InvalidState { field: None, message: "the grant's integration was deleted".into() };
    let Some(integration_id) = current.integration_id else { return Ok(Err(gone())) };
    let Some(integration) = storage::integrations::get_for_share(&mut *tx, integration_id).await? else {
        return Ok(Err(gone()));
    };
    if integration.status != IntegrationStatus::Active {
        return Ok(Err(being_deleted(None)));
    }
    let offered = storage::resources::find_offered(
        &mut *tx,
        integration_id,
        Some(current.resource_id),
        Some(&current.resource_arn),
    )
    .await?;
    if offered.is_none() {
        return Ok(Err(Refusal::InvalidState {
            field: None,
            message: "the resource is no longer offered by the integration: gone from its inventory, or excluded by its tag filter"
                .into(),
        }));
    }
    let level = AccessLevel::parse(&current.access_level).expect("stored from the enum");
    let (start, counted_from) = match current.activated_at {
        Some(activated_at) => (activated_at, "its activation, extensions included"),
        None => (current.created_at, "its submission, extensions included"),
    };
    let lifetime = (new_expiry - start).to_std().unwrap_or(Duration::ZERO);
    Ok(check_level(&integration, current.resource_type(), level)
        .and_then(|()| check_lifetime(config, &integration, lifetime, field, counted_from)))
}

/// What a submission came to.
#[derive(Debug)]
pub enum Submitted {
    /// Stored now, pending; the worker applies it.
    New(Grant),
    /// The grant of the request id, submitted before with the same body.
    Replayed(Grant),
}

/// Submits an approved grant: checked, then stored with its first event and
/// its audit record, under the integration's share lock, and handed to the
/// worker. The same request id again is the same grant when the body is the
/// same; an integration deleted or changed meanwhile refuses it.
pub async fn submit(
    db: &PgPool,
    config: &GrantConfig,
    by: Requester<'_>,
    submission: &Submission<'_>,
    mut worker: impl Handoff,
) -> Result<Submitted, Failure> {
    let grant_id = Uuid::now_v7();
    let (existing, checked) = tokio::join!(
        storage::grants::get_by_request_id(db, submission.request_id),
        check(db, config, submission, Some(grant_id))
    );
    if let Some(existing) = existing? {
        return Ok(Submitted::Replayed(replay(existing, submission)?));
    }
    let checked = checked??;
    let policy = checked.plan.policy.as_ref().map(|document| (checked.policy_identity(Some(grant_id)), document));
    let fingerprint = submission.fingerprint();
    let new = NewGrant {
        grant_id,
        integration_id: checked.integration.id,
        account_id: &checked.resource.account_id,
        resource_id: checked.resource.id,
        resource_type: checked.resource.resource_type,
        resource_arn: &checked.resource.arn,
        resource_name: &checked.resource.name,
        access_level: submission.access_level,
        principal_type: checked.grantee.principal_type,
        principal_name: &checked.grantee.name,
        principal_arn: &checked.principal_arn,
        principal_id: checked.principal_id.as_deref(),
        request_id: submission.request_id,
        request_fingerprint: &fingerprint,
        approved_by: submission.approved_by,
        reason: submission.reason,
        requested_by: &by.caller.name,
        expires_at: checked.expires_at,
        policy_name: policy.as_ref().map(|((name, _), _)| name.as_str()),
        policy_arn: policy.as_ref().and_then(|((_, arn), _)| arn.as_deref()),
        policy_document: policy.as_ref().map(|(_, document)| *document),
        target_account_id: submission.account_id,
    };
    // Handed straight to this process's worker when it has a free slot: stored
    // already leased to it, the grant needs no claim before it is applied.
    let lease = worker.reserve();
    let handed_over = lease.is_some();
    let audit = by.record(AuditAction::GrantSubmitted, grant_id).changes(&Value::Null, &submitted(&new), &[]);
    // One statement, under the integration's share lock: no deletion or change
    // of the integration interleaves with storing the grant.
    let revision = checked.integration.revision;
    let Some(mut inserted) = storage::grants::insert(db, &new, revision, lease, &audit).await? else {
        return not_stored(db, submission).await;
    };
    if handed_over {
        // What a claim would have read with the grant: the worker's clients stay cached.
        inserted.integration_revision = Some(revision);
        inserted.integration_status = Some(checked.integration.status.as_str().to_string());
    }
    worker.submitted(&inserted);
    metrics::counter!("jit_iam_grant_transitions_total", "to" => "pending").increment(1);
    tracing::info!(grant_id = %grant_id, request_id = %submission.request_id, "grant submitted");
    Ok(Submitted::New(inserted))
}

/// The audit trail's record of what was submitted.
fn submitted(new: &NewGrant<'_>) -> Value {
    json!({
        "integration_id": new.integration_id,
        "resource": {"id": new.resource_id, "type": new.resource_type, "arn": new.resource_arn},
        "access_level": new.access_level,
        "principal": {"type": new.principal_type, "name": new.principal_name, "arn": new.principal_arn},
        "expires_at": new.expires_at,
        "request_id": new.request_id,
        "approved_by": new.approved_by,
        "reason": new.reason,
        "policy_arn": new.policy_arn,
        "target_account_id": new.target_account_id,
    })
}

/// Done with its first step: applied, or failed and undone (not pending, not
/// undoing). What a submission that waits (`?wait=`) waits for.
pub fn settled(grant: &Grant) -> bool {
    match grant.status() {
        GrantStatus::Pending => false,
        GrantStatus::Revoking => grant.activated_at.is_some(),
        _ => true,
    }
}

/// Nothing was stored: the same request id arrived at the same moment, or the
/// integration is being deleted or changed since the grant was checked.
async fn not_stored(db: &PgPool, submission: &Submission<'_>) -> Result<Submitted, Failure> {
    if let Some(existing) = storage::grants::get_by_request_id(db, submission.request_id).await? {
        return Ok(Submitted::Replayed(replay(existing, submission)?));
    }
    active(storage::integrations::get(db, submission.integration_id).await?, submission.integration_id)?;
    let message = "the integration changed while the grant was checked; submit it again".into();
    Err(Refusal::InvalidState { field: Some("integration_id"), message }.into())
}

/// A submission whose `request_id` was seen before: the same grant when the
/// body is the same (its [fingerprint](Submission::fingerprint)), else refused.
pub fn replay(existing: Grant, submission: &Submission<'_>) -> Result<Grant, Refusal> {
    if existing.request_fingerprint == submission.fingerprint() {
        Ok(existing)
    } else {
        Err(Refusal::RequestIdConflict {
            message: format!("request_id `{}` was submitted before with a different body", submission.request_id),
        })
    }
}

/// An extension as asked for: a new expiry, `duration_seconds` more than the
/// current one or `expires_at`, and who approved it, why.
pub struct Extension<'a> {
    pub duration_seconds: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub approved_by: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// Extends a pending or active grant that has not expired, under the
/// integration's share lock like a submission: no deletion or change of the
/// integration interleaves with the checks.
pub async fn extend(
    db: &PgPool,
    config: &GrantConfig,
    by: Requester<'_>,
    id: Uuid,
    extension: &Extension<'_>,
    worker: impl Handoff,
) -> Result<Grant, Failure> {
    check_reason(extension.reason)?;
    if let Some(approved_by) = extension.approved_by {
        check_text(approved_by, "approved_by", 256)?;
    }
    let length = Length::of(extension.duration_seconds, extension.expires_at)?;
    let (current, now) = tokio::try_join!(storage::grants::get(db, id), storage::now(db))?;
    let current = current.ok_or_else(|| no_grant(id))?;
    let not_extendable = || Refusal::InvalidState {
        field: None,
        message: "only pending or active grants that have not expired can be extended".into(),
    };
    if !matches!(current.status(), GrantStatus::Pending | GrantStatus::Active) || current.expires_at <= now {
        return Err(not_extendable().into());
    }
    let new_expiry = new_expiry(&current, length)?;
    let mut tx = db.begin().await?;
    check_extension(&mut tx, config, &current, new_expiry, length.field()).await??;
    let extended = storage::grants::extend(&mut *tx, id, new_expiry).await?.ok_or_else(not_extendable)?;
    let event = NewEvent::extended(current.expires_at, new_expiry, extension.approved_by, extension.reason);
    storage::grants::insert_events(&mut *tx, id, &by.caller.name, &[event]).await?;
    let record = by
        .record(AuditAction::GrantExtended, id)
        .change("expires_at", current.expires_at, new_expiry)
        .change("approved_by", Value::Null, extension.approved_by)
        .change("reason", Value::Null, extension.reason);
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    worker.changed();
    Ok(extended)
}

/// The expiry an extension asks for: later than the current one.
pub(super) fn new_expiry(current: &Grant, length: Length) -> Result<DateTime<Utc>, Refusal> {
    let invalid = |field, message: &str| Refusal::Invalid { field, message: message.into() };
    match length {
        Length::Seconds(seconds) if seconds < 1 => Err(invalid("duration_seconds", "the extension must be positive")),
        Length::Seconds(seconds) => chrono::Duration::try_seconds(seconds)
            .and_then(|extension| current.expires_at.checked_add_signed(extension))
            .ok_or_else(|| invalid("duration_seconds", "the extension is too long")),
        Length::Until(at) if at > current.expires_at => Ok(at),
        Length::Until(_) => Err(invalid("expires_at", "the new expiry must be later than the current one")),
    }
}

/// The refusal of a grant id that names no grant.
pub(super) fn no_grant(id: Uuid) -> Refusal {
    Refusal::NotFound { field: None, message: format!("no grant with id {id}") }
}
