//! `/v1/grants`: submit approved access, follow it, extend it, revoke it.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::audit::Actor;
use super::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use super::extract::{whole_number, ApiPath, OptionalJson, QueryParams, ValidJson};
use super::integrations::ensure_active;
use super::pagination::{page, PageParams, PageRequest};
use super::views::grant::{Grant, GrantEvent, PlannedCall, PolicyQuota, Principal};
use super::views::policy::PolicyDocument;
use super::views::resource::Resource;
use crate::app::{AppState, GrantUpdate};
use crate::domain::arn::is_account_id;
use crate::domain::audit::AuditAction;
use crate::domain::grant::{GrantStatus, PrincipalType, RevokeReason};
use crate::domain::resource::AccessLevel;
use crate::grants::submission::{self, Checked, Length, Submission};
use crate::grants::{self, Refusal};
use crate::storage::grants::{GrantFilter, GrantRow, NewEvent, NewGrant};
use crate::{storage, worker};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_grant, list_grants))
        .routes(routes!(preview_grant))
        .routes(routes!(get_grant))
        .routes(routes!(list_events))
        .routes(routes!(revoke_grant))
        .routes(routes!(extend_grant))
}

/// An approved request, as the portal submits it.
///
/// Give exactly one of `resource_id` and `resource_arn`, and exactly one of
/// `duration_seconds` and `expires_at` (422 naming the field otherwise).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitGrant {
    pub integration_id: Uuid,
    /// The resource, by inventory id (or give `resource_arn`).
    pub resource_id: Option<Uuid>,
    #[schema(example = "arn:aws:s3:::example-bucket")]
    pub resource_arn: Option<String>,
    pub access_level: AccessLevel,
    pub principal: Principal,
    /// How long the access lasts (or give `expires_at`): at least the deployment's
    /// `JIT_IAM_MIN_GRANT`, at most the integration's `options.max_duration`
    /// (unset: the deployment's `JIT_IAM_MAX_GRANT`).
    #[schema(example = 3600, minimum = 1)]
    #[serde(default, deserialize_with = "whole_number")]
    pub duration_seconds: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The portal's id of the approved request: submitting it again returns the same grant.
    /// 1-256 characters, not only spaces, no control characters.
    #[schema(
        example = "REQ-1042",
        max_length = 256,
        pattern = "^[ \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub request_id: String,
    /// 1-256 characters, not only spaces, no control characters.
    #[schema(
        example = "bob@example.com",
        max_length = 256,
        pattern = "^[ \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub approved_by: String,
    #[schema(example = "incident 4711", max_length = 2000)]
    pub reason: Option<String>,
}

/// What a grant would do, changing nothing.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantPreview {
    pub integration_id: Uuid,
    pub account_id: String,
    pub resource: Resource,
    pub access_level: AccessLevel,
    pub principal_arn: String,
    pub expires_at: DateTime<Utc>,
    /// The policy jit-iam would create (EC2, S3 and role grants).
    #[schema(required = true)]
    pub policy_name: Option<String>,
    #[schema(required = true)]
    pub policy_document: Option<PolicyDocument>,
    /// The AWS calls applying the grant makes, in order.
    pub apply_calls: Vec<PlannedCall>,
    /// The AWS calls revoking it makes, in order.
    pub revoke_calls: Vec<PlannedCall>,
    /// Managed policies the grantee has now (as far as jit-iam knows) and its quota.
    #[schema(required = true)]
    pub managed_policies: Option<PolicyQuota>,
}

page!(GrantPage of Grant);
page!(GrantEventPage of GrantEvent);

/// A new expiry: `duration_seconds` more than the current one, or `expires_at`.
///
/// Give exactly one of `duration_seconds` and `expires_at` (422 naming the field otherwise).
/// The grant's whole lifetime, from its activation (from its submission while
/// pending) to the new expiry, stays within the integration's maximum.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendGrant {
    #[schema(example = 1800, minimum = 1)]
    #[serde(default, deserialize_with = "whole_number")]
    pub duration_seconds: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Who approved the extension (recorded on the grant's events and in the audit trail).
    #[schema(
        example = "carol@example.com",
        max_length = 256,
        pattern = "^[ \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub approved_by: Option<String>,
    #[schema(example = "the incident is still open", max_length = 2000)]
    pub reason: Option<String>,
}

impl SubmitGrant {
    pub const EXACTLY_ONE_OF: &[[&str; 2]] = &[["resource_id", "resource_arn"], ["duration_seconds", "expires_at"]];
}

impl ExtendGrant {
    pub const EXACTLY_ONE_OF: &[[&str; 2]] = &[["duration_seconds", "expires_at"]];
}

/// Why the grant is revoked early (optional; the body may be left out).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeGrant {
    #[schema(example = "the deploy finished", max_length = 2000)]
    pub reason: Option<String>,
}

fn check_text(value: &str, field: &str, max: usize) -> ApiResult<()> {
    let length = value.chars().count();
    if value.trim().is_empty() || length > max || value.chars().any(char::is_control) {
        return Err(ApiError::validation(field, format!("`{field}` must be 1-{max} printable characters")));
    }
    Ok(())
}

fn check_reason(reason: Option<&str>) -> ApiResult<()> {
    match reason {
        Some(reason) if reason.chars().count() > 2000 => {
            Err(ApiError::validation("reason", "`reason` may be at most 2000 characters"))
        }
        _ => Ok(()),
    }
}

/// The form of a submission (or preview), then its checks (`grants::submission`).
/// `grant_id`: the id the grant will have (None in a preview).
async fn check(state: &AppState, input: &SubmitGrant, grant_id: Option<Uuid>) -> ApiResult<Checked> {
    check_text(&input.request_id, "request_id", 256)?;
    check_text(&input.approved_by, "approved_by", 256)?;
    check_reason(input.reason.as_deref())?;
    let length = check_exactly_one_of(input)?;
    let submission = Submission {
        integration_id: input.integration_id,
        resource_id: input.resource_id,
        resource_arn: input.resource_arn.as_deref(),
        access_level: input.access_level,
        principal_type: input.principal.principal_type,
        principal_name: &input.principal.name,
        length,
        grant_id,
    };
    Ok(submission::check(&state.db, &state.config.grants, &submission).await??)
}

fn length(duration_seconds: Option<i64>, expires_at: Option<DateTime<Utc>>) -> ApiResult<Length> {
    match (duration_seconds, expires_at) {
        (Some(seconds), None) => Ok(Length::Seconds(seconds)),
        (None, Some(at)) => Ok(Length::Until(at)),
        _ => Err(ApiError::validation("duration_seconds", "give exactly one of `duration_seconds` and `expires_at`")),
    }
}

/// The rules of `SubmitGrant::EXACTLY_ONE_OF`, which the document states.
fn check_exactly_one_of(input: &SubmitGrant) -> ApiResult<Length> {
    if input.resource_id.is_some() == input.resource_arn.is_some() {
        return Err(ApiError::validation("resource_id", "give exactly one of `resource_id` and `resource_arn`"));
    }
    length(input.duration_seconds, input.expires_at)
}

fn fingerprint(input: &SubmitGrant) -> String {
    let canonical = serde_json::to_value(input).expect("the request serializes").to_string();
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The existing grant of a request id, if the body is the same one.
fn replay(existing: GrantRow, input: &SubmitGrant) -> ApiResult<GrantRow> {
    Ok(submission::replay(existing, &fingerprint(input), &input.request_id)?)
}

fn wait_param(params: &mut QueryParams) -> ApiResult<Option<Duration>> {
    let wait = params.parse::<u64>("wait", "a number of seconds from 0 to 30")?;
    if wait.is_some_and(|w| w > 30) {
        return Err(ApiError::invalid_parameter("wait", "`wait` must be a number of seconds from 0 to 30"));
    }
    Ok(wait.filter(|w| *w > 0).map(Duration::from_secs))
}

/// Done with its first step: applied, or failed and undone (not pending, not undoing).
fn settled(grant: &GrantRow) -> bool {
    match grant.status() {
        GrantStatus::Pending => false,
        GrantStatus::Revoking => grant.activated_at.is_some(),
        _ => true,
    }
}

/// Holds the answer until the grant settles or `wait` runs out. Changes made
/// in this process come with the new row; from other replicas, only the id.
async fn wait_until_settled(
    state: &AppState,
    mut updates: broadcast::Receiver<GrantUpdate>,
    inserted: GrantRow,
    wait: Duration,
) -> ApiResult<GrantRow> {
    let deadline = tokio::time::Instant::now() + wait;
    let id = inserted.grant_id;
    let mut grant = inserted;
    while !settled(&grant) {
        match tokio::time::timeout_at(deadline, updates.recv()).await {
            Err(_) => break,
            Ok(Ok(update)) if update.id != id => continue,
            Ok(Ok(GrantUpdate { grant: Some(row), .. })) => grant = (*row).clone(),
            // Changed elsewhere, or updates were missed: read it.
            Ok(_) => {
                grant = storage::grants::get(&state.db, id).await?.ok_or_else(|| ApiError::not_found("grant", id))?
            }
        }
    }
    Ok(grant)
}

/// Submit an approved grant.
///
/// Everything is checked before the grant is accepted; it is then applied in
/// the background. `?wait=<seconds>` (at most 30) holds the answer until the
/// grant is active or failed. Submitting the same `request_id` with the same
/// body returns the existing grant (200); with a different body, 409. The
/// grant is stored under a share lock on its integration: one being deleted
/// refuses it (409 `invalid_state`), and so does one changed while the grant
/// was checked (submit it again).
#[utoipa::path(
    post, path = "/v1/grants", operation_id = "submit_grant", tag = "grants",
    params(("wait" = Option<u64>, Query, description = "Seconds (0-30) to wait for the grant to be active or failed", maximum = 30)),
    request_body = SubmitGrant,
    responses(
        (status = 202, description = "Accepted", body = Grant),
        (status = 200, description = "This request_id was submitted before with the same body", body = Grant),
        (status = "4XX", description = "Invalid, unauthorized, quota exceeded, or request_id reused", body = ErrorBody),
    ),
)]
pub async fn submit_grant(
    State(state): State<AppState>,
    actor: Actor,
    mut params: QueryParams,
    ValidJson(input): ValidJson<SubmitGrant>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    let wait = wait_param(&mut params)?;
    params.finish()?;
    let updates = state.grant_updates.subscribe();
    let grant_id = Uuid::now_v7();
    let (existing, checked) = tokio::join!(
        storage::grants::get_by_request_id(&state.db, &input.request_id),
        check(&state, &input, Some(grant_id))
    );
    if let Some(existing) = existing? {
        return Ok((StatusCode::OK, Json(replay(existing, &input)?.view())));
    }
    let checked = checked?;
    let policy = checked.plan.policy.as_ref().map(|document| (checked.generated_policy(Some(grant_id)), document));
    let fingerprint = fingerprint(&input);
    let new = NewGrant {
        grant_id,
        integration_id: checked.integration.id,
        account_id: &checked.resource.account_id,
        resource_id: checked.resource.id,
        resource_type: checked.resource.resource_type,
        resource_arn: &checked.resource.arn,
        resource_name: &checked.resource.name,
        access_level: input.access_level,
        principal_type: checked.grantee.principal_type,
        principal_name: &checked.grantee.name,
        principal_arn: &checked.principal_arn,
        principal_id: checked.principal_id.as_deref(),
        request_id: &input.request_id,
        request_fingerprint: &fingerprint,
        approved_by: &input.approved_by,
        reason: input.reason.as_deref(),
        requested_by: &actor.caller.name,
        expires_at: checked.expires_at,
        policy_name: policy.as_ref().map(|(policy, _)| policy.name.as_str()),
        policy_arn: policy.as_ref().map(|(policy, _)| policy.arn.as_str()),
        policy_document: policy.as_ref().map(|(_, document)| *document),
    };
    // Handed straight to this process's worker when it has a free slot: stored
    // already leased to it, the grant needs no claim before it is applied.
    let slot = worker::grants::reserve_slot(&state);
    let lease = slot.as_ref().map(|_| (state.instance_id.as_str(), state.config.worker.worker_lease));
    let submitted = json!({
        "integration_id": new.integration_id,
        "resource": {"id": new.resource_id, "type": new.resource_type, "arn": new.resource_arn},
        "access_level": new.access_level,
        "principal": {"type": new.principal_type, "name": new.principal_name, "arn": new.principal_arn},
        "expires_at": new.expires_at,
        "request_id": new.request_id,
        "approved_by": new.approved_by,
        "reason": new.reason,
        "policy_arn": new.policy_arn,
    });
    let audit = actor.record(AuditAction::GrantSubmitted, grant_id).changes(&Value::Null, &submitted, &[]);
    // One statement, under the integration's share lock: no deletion or change
    // of the integration interleaves with storing the grant.
    let revision = checked.integration.revision;
    let Some(mut inserted) = storage::grants::insert(&state.db, &new, revision, lease, &audit).await? else {
        // The same request_id arrived at the same moment, or the integration
        // is being deleted or changed since the grant was checked.
        if let Some(existing) = storage::grants::get_by_request_id(&state.db, &input.request_id).await? {
            return Ok((StatusCode::OK, Json(replay(existing, &input)?.view())));
        }
        let integration = storage::integrations::get(&state.db, new.integration_id)
            .await?
            .ok_or_else(|| ApiError::not_found("integration", new.integration_id).with_field("integration_id"))?;
        ensure_active(&integration).map_err(|e| e.with_field("integration_id"))?;
        let changed = "the integration changed while the grant was checked; submit it again";
        return Err(ApiError::conflict(ErrorCode::InvalidState, changed).with_field("integration_id"));
    };
    match slot {
        Some(slot) => {
            // What a claim would have read with the grant: the worker's clients stay cached.
            inserted.integration_revision = Some(checked.integration.revision);
            inserted.integration_status = Some(checked.integration.status.as_str().to_string());
            worker::grants::start(state.clone(), inserted.clone(), slot);
        }
        None => state.wake.grants.notify_one(),
    }
    metrics::counter!("jit_iam_grant_transitions_total", "to" => "pending").increment(1);
    tracing::info!(grant_id = %grant_id, request_id = %input.request_id, "grant submitted");
    let grant = match wait {
        Some(wait) => wait_until_settled(&state, updates, inserted, wait).await?,
        None => inserted,
    };
    Ok((StatusCode::ACCEPTED, Json(grant.view())))
}

/// Preview a grant: the exact policy and AWS calls, changing nothing.
#[utoipa::path(
    post, path = "/v1/grants/preview", operation_id = "preview_grant", tag = "grants",
    request_body = SubmitGrant,
    responses(
        (status = 200, body = GrantPreview),
    ),
)]
pub async fn preview_grant(
    State(state): State<AppState>,
    ValidJson(input): ValidJson<SubmitGrant>,
) -> ApiResult<Json<GrantPreview>> {
    let checked = check(&state, &input, None).await?;
    let policy = checked.plan.policy.as_ref().map(|_| checked.generated_policy(None));
    let (apply_calls, revoke_calls) =
        grants::planned_calls(&checked.plan, &checked.grantee, &checked.resource, policy.as_ref());
    Ok(Json(GrantPreview {
        integration_id: checked.integration.id,
        account_id: checked.resource.account_id.clone(),
        access_level: input.access_level,
        principal_arn: checked.principal_arn,
        expires_at: checked.expires_at,
        policy_name: policy.map(|p| p.name),
        policy_document: checked.plan.policy.map(Into::into),
        apply_calls: apply_calls.into_iter().map(Into::into).collect(),
        revoke_calls: revoke_calls.into_iter().map(Into::into).collect(),
        managed_policies: checked.plan.quota.map(Into::into),
        resource: checked.resource.into(),
    }))
}

/// List grants, newest first.
#[utoipa::path(
    get, path = "/v1/grants", operation_id = "list_grants", tag = "grants",
    params(
        ("status" = Option<GrantStatus>, Query, description = "Only grants in this status"),
        ("integration_id" = Option<Uuid>, Query, description = "Only this integration"),
        ("account_id" = Option<String>, Query, description = "Only this account (12 digits)", pattern = "^[0-9]{12}$"),
        ("principal_type" = Option<PrincipalType>, Query, description = "Only grants to this type of principal"),
        ("principal" = Option<String>, Query, description = "Only this principal name (an IAM user's or role's)"),
        ("resource_id" = Option<Uuid>, Query, description = "Only this resource"),
        ("request_id" = Option<String>, Query, description = "The grant of this request id"),
        PageParams,
    ),
    responses(
        (status = 200, body = GrantPage),
    ),
)]
pub async fn list_grants(State(state): State<AppState>, mut params: QueryParams) -> ApiResult<Json<GrantPage>> {
    let page = PageRequest::from_query(&mut params)?;
    let filter = GrantFilter {
        status: match params.one("status")? {
            None => None,
            Some(s) => Some(GrantStatus::parse(&s).ok_or_else(|| {
                ApiError::invalid_parameter(
                    "status",
                    "`status` must be one of pending, active, revoking, revoked, failed",
                )
            })?),
        },
        integration_id: params.parse("integration_id", "an integration id")?,
        account_id: params.one("account_id")?,
        principal_type: match params.one("principal_type")? {
            None => None,
            Some(t) => Some(PrincipalType::parse(&t).ok_or_else(|| {
                ApiError::invalid_parameter("principal_type", "`principal_type` must be iam_user or iam_role")
            })?),
        },
        principal: params.one("principal")?,
        resource_id: params.parse("resource_id", "a resource id")?,
        request_id: params.one("request_id")?,
    };
    params.finish()?;
    if filter.account_id.as_deref().is_some_and(|a| !is_account_id(a)) {
        return Err(ApiError::invalid_parameter("account_id", "`account_id` must be 12 digits"));
    }
    let rows = storage::grants::list(&state.db, &filter, page.after_id(), page.fetch_limit()).await?;
    let (rows, next_cursor) = page.finish(rows, |g| g.grant_id);
    Ok(Json(GrantPage { items: rows.iter().map(GrantRow::view).collect(), next_cursor }))
}

async fn find(state: &AppState, id: Uuid) -> ApiResult<GrantRow> {
    storage::grants::get(&state.db, id).await?.ok_or_else(|| ApiError::not_found("grant", id))
}

/// One grant.
#[utoipa::path(
    get, path = "/v1/grants/{id}", operation_id = "get_grant", tag = "grants",
    params(("id" = Uuid, Path, description = "Grant id")),
    responses(
        (status = 200, body = Grant),
    ),
)]
pub async fn get_grant(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Grant>> {
    Ok(Json(find(&state, id).await?.view()))
}

/// The history of a grant: every transition and every AWS call, in order.
#[utoipa::path(
    get, path = "/v1/grants/{id}/events", operation_id = "list_grant_events", tag = "grants",
    params(
        ("id" = Uuid, Path, description = "Grant id"),
        PageParams,
    ),
    responses(
        (status = 200, body = GrantEventPage),
    ),
)]
pub async fn list_events(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    mut params: QueryParams,
) -> ApiResult<Json<GrantEventPage>> {
    let page = PageRequest::from_query(&mut params)?;
    params.finish()?;
    find(&state, id).await?;
    let rows = storage::grants::events(&state.db, id, page.after_sequence(), page.fetch_limit()).await?;
    let (items, next_cursor) = page.finish(rows, |e| e.id);
    Ok(Json(GrantEventPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}

/// Revoke a grant now.
///
/// A pending or active grant starts revoking (202); asking again for one
/// revoking or revoked is answered with its state (202). A failed grant has
/// nothing to revoke (409).
#[utoipa::path(
    post, path = "/v1/grants/{id}/revoke", operation_id = "revoke_grant", tag = "grants",
    params(("id" = Uuid, Path, description = "Grant id")),
    request_body = Option<RevokeGrant>,
    responses(
        (status = 202, body = Grant),
    ),
)]
pub async fn revoke_grant(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
    OptionalJson(input): OptionalJson<RevokeGrant>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    check_reason(input.reason.as_deref())?;
    let current = find(&state, id).await?;
    if current.status() == GrantStatus::Failed {
        return Err(ApiError::conflict(ErrorCode::InvalidState, "the grant failed; there is nothing to revoke"));
    }
    let mut tx = state.db.begin().await?;
    let Some(revoking) = storage::grants::request_revoke(&mut *tx, id, RevokeReason::Revoked).await? else {
        // Revoking or revoked already. Read on the transaction's connection:
        // waiting for a second one while holding it could exhaust the pool.
        let grant = storage::grants::get(&mut *tx, id).await?.ok_or_else(|| ApiError::not_found("grant", id))?;
        return Ok((StatusCode::ACCEPTED, Json(grant.view())));
    };
    let message = match &input.reason {
        Some(reason) => format!("revocation requested: {reason}"),
        None => "revocation requested".to_string(),
    };
    let event = NewEvent::transition(Some(current.status()), GrantStatus::Revoking, message);
    storage::grants::insert_events(&mut *tx, id, &actor.caller.name, &[event]).await?;
    let record = actor
        .record(AuditAction::GrantRevoked, id)
        .change("status", current.status(), GrantStatus::Revoking)
        .change("reason", Value::Null, &input.reason);
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    state.wake.grants.notify_one();
    tracing::info!(grant_id = %id, caller = %actor.caller.name, "grant revocation requested");
    Ok((StatusCode::ACCEPTED, Json(revoking.view())))
}

/// Extend a pending or active grant.
///
/// The integration must still offer what the grant holds, as at submission:
/// 409 `invalid_state` when the integration is being deleted or the resource
/// is no longer offered (gone from the inventory, or excluded by the tag
/// filter); 422 `validation_failed` naming `access_level` when the level is
/// no longer in `options.access_levels`, and naming `duration_seconds` or
/// `expires_at` when the grant's whole lifetime, from its activation (from its
/// submission while pending) to the new expiry, would exceed the
/// integration's `options.max_duration` (or else `JIT_IAM_MAX_GRANT`).
#[utoipa::path(
    post, path = "/v1/grants/{id}/extend", operation_id = "extend_grant", tag = "grants",
    params(("id" = Uuid, Path, description = "Grant id")),
    request_body = ExtendGrant,
    responses(
        (status = 200, body = Grant),
        (status = 409, description = "Not pending or active, integration being deleted, or resource no longer offered", body = ErrorBody),
        (status = 422, description = "Invalid, or beyond the integration's grant policy", body = ErrorBody),
    ),
)]
pub async fn extend_grant(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
    ValidJson(input): ValidJson<ExtendGrant>,
) -> ApiResult<Json<Grant>> {
    check_reason(input.reason.as_deref())?;
    if let Some(approved_by) = &input.approved_by {
        check_text(approved_by, "approved_by", 256)?;
    }
    let length = length(input.duration_seconds, input.expires_at)?;
    let (current, now) = tokio::try_join!(find(&state, id), async { Ok(storage::now(&state.db).await?) })?;
    let not_extendable = || {
        ApiError::conflict(
            ErrorCode::InvalidState,
            "only pending or active grants that have not expired can be extended",
        )
    };
    if !matches!(current.status(), GrantStatus::Pending | GrantStatus::Active) || current.expires_at <= now {
        return Err(not_extendable());
    }
    let new_expiry = match length {
        Length::Seconds(seconds) if seconds < 1 => {
            return Err(ApiError::validation("duration_seconds", "the extension must be positive"))
        }
        Length::Seconds(seconds) => chrono::Duration::try_seconds(seconds)
            .and_then(|extension| current.expires_at.checked_add_signed(extension))
            .ok_or_else(|| ApiError::validation("duration_seconds", "the extension is too long"))?,
        Length::Until(at) if at > current.expires_at => at,
        Length::Until(_) => {
            return Err(ApiError::validation("expires_at", "the new expiry must be later than the current one"))
        }
    };
    // Under the integration's share lock, like a submission: no deletion or
    // change of the integration interleaves with the checks.
    let mut tx = state.db.begin().await?;
    submission::check_extension(&mut tx, &state.config.grants, &current, new_expiry, length.field()).await??;
    let extended = storage::grants::extend(&mut *tx, id, new_expiry).await?.ok_or_else(not_extendable)?;
    let event =
        NewEvent::extended(current.expires_at, new_expiry, input.approved_by.as_deref(), input.reason.as_deref());
    storage::grants::insert_events(&mut *tx, id, &actor.caller.name, &[event]).await?;
    let record = actor
        .record(AuditAction::GrantExtended, id)
        .change("expires_at", current.expires_at, new_expiry)
        .change("approved_by", Value::Null, &input.approved_by)
        .change("reason", Value::Null, &input.reason);
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    state.wake.grants.notify_one();
    Ok(Json(extended.view()))
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Invalid { field, message } => ApiError::validation(field, message),
            Refusal::Quota { field, message } => {
                ApiError::conflict(ErrorCode::QuotaExceeded, message).with_field(field)
            }
            Refusal::NotFound { field, message } => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message).with_field(field)
            }
            Refusal::InvalidState { field, message } => {
                let error = ApiError::conflict(ErrorCode::InvalidState, message);
                match field {
                    Some(field) => error.with_field(field),
                    None => error,
                }
            }
            Refusal::RequestIdConflict { message } => {
                ApiError::conflict(ErrorCode::RequestIdConflict, message).with_field("request_id")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_nothing_and_order_nothing() {
        let input: SubmitGrant = serde_json::from_value(serde_json::json!({
            "integration_id": Uuid::nil(), "resource_id": Uuid::nil(), "access_level": "read",
            "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": 3600,
            "request_id": "r", "approved_by": "bob"
        }))
        .unwrap();
        let mut other = input.clone();
        assert_eq!(fingerprint(&input), fingerprint(&other));
        other.duration_seconds = Some(3601);
        assert_ne!(fingerprint(&input), fingerprint(&other));
    }
}
