//! `/v1/grants`: submit approved access, follow it, extend it, revoke it.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::audit::Actor;
use super::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use super::extract::{whole_number, ApiPath, OptionalJson, QueryParams, ValidJson};
use super::pagination::{page, PageParams, PageRequest};
use super::views::grant::{Grant, GrantEvent, PlannedCall, PolicyQuota, Principal};
use super::views::policy::PolicyDocument;
use super::views::resource::Resource;
use crate::app::{AppState, GrantUpdate};
use crate::domain::arn::is_account_id;
use crate::domain::grant::{self, GrantStatus, PrincipalType};
use crate::domain::resource::AccessLevel;
use crate::grants::submission::{self, Extension, Submission, Submitted};
use crate::grants::{revocation, Failure, Refusal};
use crate::storage;
use crate::storage::grants::GrantFilter;
use crate::worker::grants::LocalWorker;

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
    /// Permission set grants only, and required for them: the account of the
    /// integration to assign the permission set in (12 digits).
    #[schema(example = "210987654321", pattern = "^[0-9]{12}$")]
    pub account_id: Option<String>,
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

impl From<submission::Preview> for GrantPreview {
    fn from(preview: submission::Preview) -> Self {
        let (policy_name, policy_document) = preview.policy.unzip();
        Self {
            integration_id: preview.integration_id,
            account_id: preview.resource.account_id.clone(),
            access_level: preview.access_level,
            principal_arn: preview.principal_arn,
            expires_at: preview.expires_at,
            policy_name,
            policy_document: policy_document.map(Into::into),
            apply_calls: preview.apply_calls.into_iter().map(Into::into).collect(),
            revoke_calls: preview.revoke_calls.into_iter().map(Into::into).collect(),
            managed_policies: preview.managed_policies.map(Into::into),
            resource: preview.resource.into(),
        }
    }
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

impl SubmitGrant {
    /// The submission, as `grants` checks it.
    fn submission(&self) -> Submission<'_> {
        Submission {
            integration_id: self.integration_id,
            resource_id: self.resource_id,
            resource_arn: self.resource_arn.as_deref(),
            access_level: self.access_level,
            principal_type: self.principal.principal_type,
            principal_name: &self.principal.name,
            duration_seconds: self.duration_seconds,
            expires_at: self.expires_at,
            request_id: &self.request_id,
            approved_by: &self.approved_by,
            reason: self.reason.as_deref(),
            account_id: self.account_id.as_deref(),
        }
    }
}

fn wait_param(params: &mut QueryParams) -> ApiResult<Option<Duration>> {
    let wait = params.parse::<u64>("wait", "a number of seconds from 0 to 30")?;
    if wait.is_some_and(|w| w > 30) {
        return Err(ApiError::invalid_parameter("wait", "`wait` must be a number of seconds from 0 to 30"));
    }
    Ok(wait.filter(|w| *w > 0).map(Duration::from_secs))
}

/// Holds the answer until the grant settles or `wait` runs out. Changes made
/// in this process come with the new row; from other replicas, only the id.
async fn wait_until_settled(
    state: &AppState,
    mut updates: broadcast::Receiver<GrantUpdate>,
    inserted: grant::Grant,
    wait: Duration,
) -> ApiResult<grant::Grant> {
    let deadline = tokio::time::Instant::now() + wait;
    let id = inserted.grant_id;
    let mut grant = inserted;
    while !submission::settled(&grant) {
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
    let (db, config, worker) = (&state.db, &state.config.grants, LocalWorker::new(&state));
    match submission::submit(db, config, actor.requester(), &input.submission(), worker).await? {
        Submitted::Replayed(existing) => Ok((StatusCode::OK, Json(existing.view()))),
        Submitted::New(inserted) => {
            let grant = match wait {
                Some(wait) => wait_until_settled(&state, updates, inserted, wait).await?,
                None => inserted,
            };
            Ok((StatusCode::ACCEPTED, Json(grant.view())))
        }
    }
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
    let preview = submission::preview(&state.db, &state.config.grants, &input.submission()).await?;
    Ok(Json(preview.into()))
}

/// List grants, newest first.
#[utoipa::path(
    get, path = "/v1/grants", operation_id = "list_grants", tag = "grants",
    params(
        ("status" = Option<GrantStatus>, Query, description = "Only grants in this status"),
        ("integration_id" = Option<Uuid>, Query, description = "Only this integration"),
        ("account_id" = Option<String>, Query, description = "Only this account (12 digits)", pattern = "^[0-9]{12}$"),
        ("principal_type" = Option<PrincipalType>, Query, description = "Only grants to this type of principal"),
        ("principal" = Option<String>, Query, description = "Only this principal name (an IAM user's or role's, an Identity Center user's)"),
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
                ApiError::invalid_parameter(
                    "principal_type",
                    "`principal_type` must be iam_user, iam_role or identity_center_user",
                )
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
    Ok(Json(GrantPage { items: rows.iter().map(grant::Grant::view).collect(), next_cursor }))
}

async fn find(state: &AppState, id: Uuid) -> ApiResult<grant::Grant> {
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
    let worker = LocalWorker::new(&state);
    let revoking = revocation::request(&state.db, actor.requester(), id, input.reason.as_deref(), worker).await?;
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
    let extension = Extension {
        duration_seconds: input.duration_seconds,
        expires_at: input.expires_at,
        approved_by: input.approved_by.as_deref(),
        reason: input.reason.as_deref(),
    };
    let (db, config, worker) = (&state.db, &state.config.grants, LocalWorker::new(&state));
    let extended = submission::extend(db, config, actor.requester(), id, &extension, worker).await?;
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
                with_field(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message), field)
            }
            Refusal::InvalidState { field, message } => {
                with_field(ApiError::conflict(ErrorCode::InvalidState, message), field)
            }
            Refusal::RequestIdConflict { message } => {
                ApiError::conflict(ErrorCode::RequestIdConflict, message).with_field("request_id")
            }
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused(refusal) => refusal.into(),
            Failure::Database(e) => e.into(),
        }
    }
}

fn with_field(error: ApiError, field: Option<&str>) -> ApiError {
    match field {
        Some(field) => error.with_field(field),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored with every grant: a body's fingerprint never changes, or its
    /// request id would no longer find the same grant.
    #[test]
    fn a_bodys_fingerprint_is_the_one_it_always_had() {
        let bodies = [
            (
                serde_json::json!({
                    "integration_id": Uuid::nil(), "resource_id": Uuid::nil(), "access_level": "read",
                    "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": 3600,
                    "request_id": "r", "approved_by": "bob"
                }),
                "1108cf18190a5daeef5b76424997dcb94006a550bbefe77a4c4daaf72499da83",
            ),
            (
                serde_json::json!({
                    "integration_id": "01a21e4b-1bed-7280-8135-27a363c171b4", "resource_arn": "arn:aws:s3:::data",
                    "access_level": "write", "principal": {"type": "iam_role", "name": "déployer \"x\""},
                    "expires_at": "2030-01-02T03:04:05.123456Z", "request_id": "REQ-1", "approved_by": "carol",
                    "reason": "incident ✓", "duration_seconds": 5
                }),
                "3b1dbecfa67ab9a6543a4a826c79212bfd282f9204c79194c6e75c6bd994a138",
            ),
        ];
        for (body, fingerprint) in bodies {
            let input: SubmitGrant = serde_json::from_value(body).unwrap();
            assert_eq!(input.submission().fingerprint(), fingerprint);
        }
    }
}
