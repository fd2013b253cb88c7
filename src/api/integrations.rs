//! `/v1/integrations`: register AWS accounts, get their setup documents, check the connection.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::audit::Actor;
use super::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use super::extract::{present, ApiPath, QueryParams, ValidJson};
use super::pagination::{page, PageParams, PageRequest};
use super::views;
use super::views::check::AccessCheck;
use super::views::setup::SetupDocuments;
use super::views::sync::{Account, SyncRun};
use crate::app::AppState;
use crate::aws::check::{check_access, check_connection};
use crate::aws::permissions::setup_documents;
use crate::domain::audit::AuditAction;
use crate::domain::caller::Caller;
use crate::domain::integration::{
    generate_external_id, validate_name, validate_options, validate_root_account, AccessLevels, Connection,
    GrantBounds, IdentityCenterOptions, Integration, IntegrationOptions, IntegrationStatus, RootAccount,
    INTEGRATION_SECRETS,
};
use crate::domain::sync::SyncTrigger;
use crate::domain::tags::{filter_document, TagPair};
use crate::grants::submission::bounds;
use crate::storage;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_integration, list_integrations))
        .routes(routes!(get_integration, update_integration, delete_integration))
        .routes(routes!(get_setup))
        .routes(routes!(check_integration))
        .routes(routes!(start_sync))
        .routes(routes!(list_syncs))
        .routes(routes!(get_sync))
        .routes(routes!(list_accounts))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    /// 1-128 characters, not only spaces, no control characters; unique.
    #[schema(
        example = "prod",
        max_length = 128,
        pattern = "^[ \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    pub connection: Connection,
    pub root_account: RootAccountInput,
    #[serde(default)]
    #[schema(value_type = views::integration::IntegrationOptions)]
    pub options: IntegrationOptions,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RootAccountInput {
    #[schema(example = "123456789012", pattern = "^[0-9]{12}$")]
    pub account_id: String,
    /// A role in `account_id`, in the partition of `region`.
    #[schema(
        example = "arn:aws:iam::123456789012:role/jit-iam-access",
        pattern = "^arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{12}:role/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$"
    )]
    pub access_role_arn: String,
    /// Leave out to have jit-iam generate one (returned in the answer).
    #[schema(example = "4c9f0d6b2a7e41e3b8d5c0a9f6e2d1b7", pattern = "^[A-Za-z0-9_+=,.@:/-]{2,1224}$")]
    pub external_id: Option<String>,
    #[schema(
        example = "us-east-1",
        pattern = "^[a-z]{2}-(gov-|iso[a-z]*-)?(east|west|north|south|central|northeast|northwest|southeast|southwest)-[0-9]{1,2}$"
    )]
    pub region: String,
}

/// Fields to change; absent fields stay as they are. `connection` and
/// `root_account.account_id` cannot change: create a new integration instead.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegration {
    #[schema(
        max_length = 128,
        pattern = "^[ \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: Option<String>,
    pub connection: Option<Connection>,
    pub root_account: Option<RootAccountPatch>,
    pub options: Option<OptionsPatch>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RootAccountPatch {
    /// Cannot change: the integration's own account id, or left out.
    #[schema(pattern = "^[0-9]{12}$")]
    pub account_id: Option<String>,
    #[schema(
        pattern = "^arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{12}:role/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$"
    )]
    pub access_role_arn: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9_+=,.@:/-]{2,1224}$")]
    pub external_id: Option<String>,
    #[schema(
        pattern = "^[a-z]{2}-(gov-|iso[a-z]*-)?(east|west|north|south|central|northeast|northwest|southeast|southwest)-[0-9]{1,2}$"
    )]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionsPatch {
    #[schema(value_type = Option<Vec<views::integration::TagPair>>)]
    pub tags: Option<Vec<TagPair>>,
    /// `null` clears the list (every enabled region).
    #[serde(default, deserialize_with = "present")]
    #[schema(
        min_items = 1,
        pattern = "^[a-z]{2}-(gov-|iso[a-z]*-)?(east|west|north|south|central|northeast|northwest|southeast|southwest)-[0-9]{1,2}$"
    )]
    pub regions: Option<Option<Vec<String>>>,
    /// `null` goes back to the root access role's name.
    #[serde(default, deserialize_with = "present")]
    #[schema(pattern = "^[A-Za-z0-9_+=,.@-]{1,64}$")]
    pub member_role_name: Option<Option<String>>,
    pub include_aws_managed_policies: Option<bool>,
    /// Seconds; `null` goes back to the service's `JIT_IAM_MAX_GRANT`. Live
    /// grants keep their expiry; their extensions obey the new value.
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1)]
    pub max_duration: Option<Option<i64>>,
    /// Replaces the whole map; `null` allows every level again. Live grants
    /// keep their access; their extensions obey the new levels.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Option<views::integration::AccessLevels>>)]
    pub access_levels: Option<Option<AccessLevels>>,
    /// Replaces the whole object; `null` turns Identity Center off (the next
    /// sync removes its users, groups and permission sets from the inventory).
    /// Refused (409 `invalid_state`) while Identity Center grants are live:
    /// their revocation needs the instance.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Option<views::integration::IdentityCenterOptions>>)]
    pub identity_center: Option<Option<IdentityCenterOptions>>,
}

page!(IntegrationPage of views::integration::Integration);
page!(SyncRunPage of SyncRun);
page!(AccountPage of Account);

/// Register an integration.
///
/// Validates every field strictly; when `root_account.external_id` is left out,
/// a random one is generated and returned. The first inventory sync starts at once.
///
/// Rules between fields (422 naming the field): `access_role_arn` is a role in
/// `root_account.account_id`, in the partition of `region` (`cn-*` regions:
/// `aws-cn`, `us-gov-*`: `aws-us-gov`); `options.member_role_name` needs
/// `connection: organization`; `options.max_duration` lies between the
/// service's `JIT_IAM_MIN_GRANT` and `JIT_IAM_MAX_GRANT`; each list of
/// `options.access_levels` holds only levels of its type, each once;
/// `options.identity_center` is `{}` (discover the instance) or gives both
/// `instance_arn` and `identity_store_id`.
#[utoipa::path(
    post, path = "/v1/integrations", operation_id = "create_integration", tag = "integrations",
    request_body = CreateIntegration,
    responses(
        (status = 201, description = "Created", body = views::integration::Integration),
        (status = "4XX", description = "Invalid input, unauthorized, or the name is taken", body = ErrorBody),
        (status = "5XX", description = "Service unavailable", body = ErrorBody),
    ),
)]
pub async fn create_integration(
    State(state): State<AppState>,
    actor: Actor,
    ValidJson(input): ValidJson<CreateIntegration>,
) -> ApiResult<(StatusCode, HeaderMap, Json<views::integration::Integration>)> {
    let name = validate_name(&input.name)?;
    let root = RootAccount {
        account_id: input.root_account.account_id,
        access_role_arn: input.root_account.access_role_arn,
        external_id: input.root_account.external_id.unwrap_or_else(generate_external_id),
        region: input.root_account.region,
    };
    validate_root_account(&root, "root_account")?;
    validate_options(&input.options, input.connection, bounds(&state.config.grants))?;

    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
    let integration = storage::integrations::insert(&mut *tx, id, &name, input.connection, &root, &input.options)
        .await
        .map_err(|e| name_conflict(e, &name))?;
    storage::syncs::enqueue(&mut tx, id, SyncTrigger::Created).await?;
    let record = actor.record(AuditAction::IntegrationCreated, id).changes(
        &Value::Null,
        &integration.audit_view(),
        INTEGRATION_SECRETS,
    );
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    state.wake.syncs.notify_one();
    tracing::info!(integration_id = %id, name = %integration.name, "integration created");

    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/integrations/{id}")) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(integration.into())))
}

fn name_conflict(error: sqlx::Error, name: &str) -> ApiError {
    if storage::violates(&error, storage::integrations::NAME_CONSTRAINT) {
        ApiError::conflict(ErrorCode::NameTaken, format!("an integration named `{name}` exists already"))
            .with_field("name")
    } else {
        error.into()
    }
}

/// List integrations, oldest first.
#[utoipa::path(
    get, path = "/v1/integrations", operation_id = "list_integrations", tag = "integrations",
    params(
        PageParams,
    ),
    responses(
        (status = 200, body = IntegrationPage),
    ),
)]
pub async fn list_integrations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    mut params: QueryParams,
) -> ApiResult<Json<IntegrationPage>> {
    let page = PageRequest::from_query(&mut params)?;
    params.finish()?;
    let rows = storage::integrations::list(&state.db, page.after_id(), page.fetch_limit()).await?;
    let (items, next_cursor) = page.finish(rows, |i| i.id);
    let items = items.into_iter().map(|i| shown_to(&caller, i).into()).collect();
    Ok(Json(IntegrationPage { items, next_cursor }))
}

/// Get one integration.
#[utoipa::path(
    get, path = "/v1/integrations/{id}", operation_id = "get_integration", tag = "integrations",
    params(("id" = Uuid, Path, description = "Integration id")),
    responses(
        (status = 200, body = views::integration::Integration),
    ),
)]
pub async fn get_integration(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<views::integration::Integration>> {
    Ok(Json(shown_to(&caller, find(&state, id).await?).into()))
}

/// External ids are for admins only (they guard the access role's trust policy).
fn shown_to(caller: &Caller, integration: Integration) -> Integration {
    if caller.sees_secrets() {
        integration
    } else {
        integration.without_secrets()
    }
}

pub async fn find(state: &AppState, id: Uuid) -> ApiResult<Integration> {
    storage::integrations::get(&state.db, id).await?.ok_or_else(|| ApiError::not_found("integration", id))
}

/// Change an integration.
///
/// Cached AWS sessions of the integration are dropped, so the next call uses
/// the new role, external id or region. While the integration has live grants,
/// a new `access_role_arn`, `external_id` or `member_role_name` is checked
/// first (as `/check` does, in the root account and in each member account
/// holding live grants): if it fails, the answer is 409
/// `connection_check_failed` with the report in `error.checks`, and nothing is
/// changed.
///
/// The integration after the change follows the rules of creating one (422
/// naming the field otherwise); `connection` and `root_account.account_id`
/// cannot change (given, they must equal the current ones). A new
/// `options.max_duration` or `options.access_levels` leaves live grants as
/// they are; their extensions obey the new values.
#[utoipa::path(
    patch, path = "/v1/integrations/{id}", operation_id = "update_integration", tag = "integrations",
    params(("id" = Uuid, Path, description = "Integration id")),
    request_body = UpdateIntegration,
    responses(
        (status = 200, body = views::integration::Integration),
    ),
)]
pub async fn update_integration(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
    ValidJson(patch): ValidJson<UpdateIntegration>,
) -> ApiResult<Json<views::integration::Integration>> {
    // A new connection is checked before anything is stored while grants are
    // live: one that cannot be assumed would leave their access in AWS.
    // (Outside the transaction: no row lock is held across AWS calls.)
    let current = find(&state, id).await?;
    let bounds = bounds(&state.config.grants);
    let mut candidate = current.clone();
    apply_patch(&mut candidate, patch.clone(), bounds)?;
    let checked = if candidate.same_connection(&current) {
        None
    } else {
        let accounts = storage::grants::live_accounts_of_integration(&state.db, id).await?;
        if !accounts.is_empty() {
            let checks = check_connection(&state.aws, &candidate, &accounts).await;
            if checks.iter().any(|check| !check.ok) {
                return Err(ApiError::connection_check_failed(checks));
            }
        }
        Some(candidate)
    };

    let mut tx = state.db.begin().await?;
    let mut integration = storage::integrations::get_for_update(&mut *tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration", id))?;
    ensure_active(&integration)?;
    let before = integration.clone();
    apply_patch(&mut integration, patch, bounds)?;
    let unchecked = !integration.same_connection(&before)
        && checked.as_ref().is_none_or(|candidate| !candidate.same_connection(&integration));
    if unchecked && storage::grants::count_live_of_integration(&mut *tx, id).await? > 0 {
        return Err(ApiError::conflict(
            ErrorCode::InvalidState,
            "the integration changed while its new connection was checked; send the change again",
        ));
    }
    if integration.options.identity_center != before.options.identity_center {
        // The worker reaches the identity store through this option: taken
        // away under live grants, their memberships could not be removed.
        let live = storage::grants::count_live_identity_center_of_integration(&mut *tx, id).await?;
        if live > 0 {
            return Err(ApiError::conflict(
                ErrorCode::InvalidState,
                format!(
                    "{live} live Identity Center grant(s) need this instance to be revoked; \
                     revoke them or let them end before changing options.identity_center"
                ),
            )
            .with_field("options.identity_center"));
        }
    }
    let updated =
        storage::integrations::update(&mut *tx, &integration).await.map_err(|e| name_conflict(e, &integration.name))?;
    if updated.options.tags != before.options.tags {
        // What is offered follows the new filter at once, without waiting for a sync.
        storage::resources::apply_filter(&mut *tx, id, &filter_document(&updated.options.tags)).await?;
    }
    let lists_differently = updated.root_account != before.root_account
        || updated.options.regions != before.options.regions
        || updated.options.member_role_name != before.options.member_role_name
        || updated.options.include_aws_managed_policies != before.options.include_aws_managed_policies
        || updated.options.identity_center != before.options.identity_center;
    if lists_differently {
        storage::syncs::enqueue(&mut tx, id, SyncTrigger::Updated).await?;
    }
    let record = actor.record(AuditAction::IntegrationUpdated, id).changes(
        &before.audit_view(),
        &updated.audit_view(),
        INTEGRATION_SECRETS,
    );
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    state.aws.forget(id);
    state.wake.syncs.notify_one();
    tracing::info!(integration_id = %id, "integration updated");
    Ok(Json(updated.into()))
}

fn apply_patch(integration: &mut Integration, patch: UpdateIntegration, bounds: GrantBounds) -> ApiResult<()> {
    if let Some(name) = patch.name {
        integration.name = validate_name(&name)?;
    }
    if patch.connection.is_some_and(|c| c != integration.connection) {
        return Err(ApiError::validation("connection", "the connection cannot change; create a new integration"));
    }
    if let Some(root) = patch.root_account {
        if root.account_id.is_some_and(|a| a != integration.root_account.account_id) {
            return Err(ApiError::validation(
                "root_account.account_id",
                "the account cannot change; create a new integration",
            ));
        }
        let current = &mut integration.root_account;
        current.access_role_arn = root.access_role_arn.unwrap_or(current.access_role_arn.clone());
        current.external_id = root.external_id.unwrap_or(current.external_id.clone());
        current.region = root.region.unwrap_or(current.region.clone());
        validate_root_account(current, "root_account")?;
    }
    if let Some(options) = patch.options {
        let current = &mut integration.options;
        if let Some(tags) = options.tags {
            current.tags = tags;
        }
        if let Some(regions) = options.regions {
            current.regions = regions;
        }
        if let Some(member_role_name) = options.member_role_name {
            current.member_role_name = member_role_name;
        }
        if let Some(include) = options.include_aws_managed_policies {
            current.include_aws_managed_policies = include;
        }
        if let Some(max_duration) = options.max_duration {
            current.max_duration = max_duration;
        }
        if let Some(access_levels) = options.access_levels {
            current.access_levels = access_levels;
        }
        if let Some(identity_center) = options.identity_center {
            current.identity_center = identity_center;
        }
        validate_options(current, integration.connection, bounds)?;
    }
    Ok(())
}

/// Delete an integration.
///
/// Without live grants it is deleted at once (204). With live grants the
/// answer is 409 `integration_has_live_grants`, unless `revoke_grants=true`:
/// then its grants are revoked (reason `integration_deleted`) and the
/// integration, in status `deleting` meanwhile, is deleted after the last one (202).
#[utoipa::path(
    delete, path = "/v1/integrations/{id}", operation_id = "delete_integration", tag = "integrations",
    params(
        ("id" = Uuid, Path, description = "Integration id"),
        ("revoke_grants" = Option<bool>, Query, description = "Revoke live grants first, then delete"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 202, description = "Revoking its grants; deleted after the last one", body = views::integration::Integration),
    ),
)]
pub async fn delete_integration(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
    mut params: QueryParams,
) -> ApiResult<Response> {
    let revoke_grants = params.parse::<bool>("revoke_grants", "true or false")?.unwrap_or(false);
    params.finish()?;
    let mut tx = state.db.begin().await?;
    let integration = storage::integrations::get_for_update(&mut *tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("integration", id))?;
    let live = storage::grants::count_live_of_integration(&mut *tx, id).await?;
    let record = actor.record(AuditAction::IntegrationDeleted, id);
    if live == 0 {
        storage::integrations::delete(&mut *tx, id).await?;
        let record = record.change("status", integration.status, "deleted");
        storage::audit::record(&mut *tx, &record.change("name", &integration.name, Value::Null)).await?;
        tx.commit().await?;
        state.aws.forget(id);
        tracing::info!(integration_id = %id, "integration deleted");
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if !revoke_grants && integration.status == IntegrationStatus::Active {
        return Err(ApiError::conflict(
            ErrorCode::IntegrationHasLiveGrants,
            format!("the integration has {live} live grants; DELETE with ?revoke_grants=true revokes them first"),
        ));
    }
    let deleting = storage::integrations::set_status(&mut *tx, id, IntegrationStatus::Deleting).await?;
    let revoked = storage::grants::revoke_all_of_integration(&mut *tx, id, &actor.caller.name).await?;
    let record =
        record.change("status", integration.status, deleting.status).change("revoked_grants", 0, revoked.len());
    storage::audit::record(&mut *tx, &record).await?;
    tx.commit().await?;
    state.wake.grants.notify_one();
    tracing::info!(integration_id = %id, grants = revoked.len(), "integration deletion started: revoking its grants");
    Ok((StatusCode::ACCEPTED, Json(views::integration::Integration::from(deleting))).into_response())
}

/// Refuses changes to an integration being deleted.
pub fn ensure_active(integration: &Integration) -> ApiResult<()> {
    match integration.status {
        IntegrationStatus::Active => Ok(()),
        IntegrationStatus::Deleting => {
            Err(ApiError::conflict(ErrorCode::InvalidState, "the integration is being deleted"))
        }
    }
}

/// The AWS setup documents of an integration.
///
/// The trust policy names jit-iam's own identity and requires the external id;
/// the permission policy lists exactly the actions jit-iam uses. Both are
/// valid IAM policy documents, ready to paste.
#[utoipa::path(
    get, path = "/v1/integrations/{id}/setup", operation_id = "get_integration_setup", tag = "integrations",
    params(("id" = Uuid, Path, description = "Integration id")),
    responses(
        (status = 200, body = SetupDocuments),
        (status = "5XX", description = "jit-iam cannot learn its own AWS identity", body = ErrorBody),
    ),
)]
pub async fn get_setup(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<SetupDocuments>> {
    let integration = find(&state, id).await?;
    let principal = state.aws.service_principal().await?;
    Ok(Json(setup_documents(&integration, &principal).into()))
}

/// Check the connection.
///
/// Assumes the access role with the external id, calls sts:GetCallerIdentity
/// and confirms the account. Each step reports pass or fail; a failure carries
/// AWS's error code and message. AWS refusing is a result (200), not an error.
#[utoipa::path(
    post, path = "/v1/integrations/{id}/check", operation_id = "check_integration", tag = "integrations",
    params(("id" = Uuid, Path, description = "Integration id")),
    responses(
        (status = 200, body = AccessCheck),
    ),
)]
pub async fn check_integration(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<AccessCheck>> {
    let integration = find(&state, id).await?;
    let report = check_access(&state.aws, &integration).await;
    let record = actor.record(AuditAction::CheckRun, id).change("ok", Value::Null, report.ok);
    storage::audit::record(&state.db, &record).await?;
    Ok(Json(report.into()))
}

/// Start a sync of the inventory now.
///
/// Answers 202 with the queued run, or with the run already queued or running:
/// one integration never has two syncs at once, across all replicas.
#[utoipa::path(
    post, path = "/v1/integrations/{id}/sync", operation_id = "start_sync", tag = "inventory",
    params(("id" = Uuid, Path, description = "Integration id")),
    responses(
        (status = 202, description = "Queued (or already queued or running)", body = SyncRun),
    ),
)]
pub async fn start_sync(
    State(state): State<AppState>,
    actor: Actor,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<SyncRun>)> {
    let mut tx = state.db.begin().await?;
    let integration =
        storage::integrations::get(&mut *tx, id).await?.ok_or_else(|| ApiError::not_found("integration", id))?;
    ensure_active(&integration)?;
    let run = storage::syncs::enqueue(&mut tx, integration.id, SyncTrigger::Manual).await?;
    storage::audit::record(
        &mut *tx,
        &actor.record(AuditAction::SyncRequested, id).change("sync_id", Value::Null, run.id),
    )
    .await?;
    tx.commit().await?;
    state.wake.syncs.notify_one();
    Ok((StatusCode::ACCEPTED, Json(run.into())))
}

/// List the sync runs of an integration, newest first.
#[utoipa::path(
    get, path = "/v1/integrations/{id}/syncs", operation_id = "list_syncs", tag = "inventory",
    params(
        ("id" = Uuid, Path, description = "Integration id"),
        PageParams,
    ),
    responses(
        (status = 200, body = SyncRunPage),
    ),
)]
pub async fn list_syncs(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    mut params: QueryParams,
) -> ApiResult<Json<SyncRunPage>> {
    let page = PageRequest::from_query(&mut params)?;
    params.finish()?;
    find(&state, id).await?;
    let rows = storage::syncs::QUEUE.list(&state.db, id, page.after_id(), page.fetch_limit()).await?;
    let (items, next_cursor) = page.finish(rows, |run| run.id);
    Ok(Json(SyncRunPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}

/// One sync run, with the result of each account.
#[utoipa::path(
    get, path = "/v1/integrations/{id}/syncs/{sync_id}", operation_id = "get_sync", tag = "inventory",
    params(
        ("id" = Uuid, Path, description = "Integration id"),
        ("sync_id" = Uuid, Path, description = "Sync run id"),
    ),
    responses(
        (status = 200, body = SyncRun),
    ),
)]
pub async fn get_sync(
    State(state): State<AppState>,
    ApiPath((id, sync_id)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<SyncRun>> {
    let mut run = storage::syncs::QUEUE
        .get(&state.db, id, sync_id)
        .await?
        .ok_or_else(|| ApiError::not_found("sync run", sync_id))?;
    run.accounts = Some(storage::syncs::account_results(&state.db, sync_id).await?);
    Ok(Json(run.into()))
}

/// The accounts of an integration, with the result of their last sync.
#[utoipa::path(
    get, path = "/v1/integrations/{id}/accounts", operation_id = "list_integration_accounts", tag = "inventory",
    params(
        ("id" = Uuid, Path, description = "Integration id"),
        PageParams,
    ),
    responses(
        (status = 200, body = AccountPage),
    ),
)]
pub async fn list_accounts(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    mut params: QueryParams,
) -> ApiResult<Json<AccountPage>> {
    let page = PageRequest::from_query(&mut params)?;
    params.finish()?;
    find(&state, id).await?;
    let rows = storage::accounts::list(&state.db, id, page.after_account().as_deref(), page.fetch_limit()).await?;
    let (items, next_cursor) = page.finish(rows, |account| account.account_id.clone());
    Ok(Json(AccountPage { items: items.into_iter().map(Into::into).collect(), next_cursor }))
}
