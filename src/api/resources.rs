//! `/v1/resources`: browse the inventory, served from Postgres (never from AWS)
//! through a cache of pages that is exact to the inventory version.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiPath, QueryParams};
use super::pagination::{page, PageParams, PageRequest};
use super::views::resource::Resource;
use crate::app::AppState;
use crate::domain::arn::{is_account_id, is_region_code};
use crate::domain::resource::ResourceType;
use crate::storage;
use crate::storage::resources::BrowseFilter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_resources)).routes(routes!(get_resource))
}

page!(ResourcePage of Resource);

/// Browse offered resources (and IAM users, the grantees).
///
/// Only resources passing their integration's tag filter are listed. `tag`
/// filters repeat: values of one key are OR'd, different keys are AND'd.
#[utoipa::path(
    get, path = "/v1/resources", operation_id = "list_resources", tag = "inventory",
    params(
        ("integration_id" = Option<Uuid>, Query, description = "Only this integration"),
        ("account_id" = Option<String>, Query, description = "Only this account (12 digits)", pattern = "^[0-9]{12}$"),
        ("type" = Option<ResourceType>, Query, description = "Only this type"),
        ("region" = Option<String>, Query, description = "Only this region", pattern = "^[a-z]{2}-(gov-|iso[a-z]*-)?(east|west|north|south|central|northeast|northwest|southeast|southwest)-[0-9]{1,2}$"),
        ("tag" = Option<Vec<String>>, Query, explode = true, max_items = 50, pattern = "^[^:\\u0000]{1,128}:[^\\u0000]*$",
            description = "`key:value` (split at the first colon; the key 1-128 characters); repeatable, at most 50"),
        ("q" = Option<String>, Query, description = "Matches name or ARN, case-insensitive", max_length = 256),
        PageParams,
    ),
    responses(
        (status = 200, body = ResourcePage),
    ),
)]
pub async fn list_resources(State(state): State<AppState>, mut params: QueryParams) -> ApiResult<Response> {
    let page = PageRequest::from_query(&mut params)?;
    let filter = BrowseFilter {
        integration_id: params.parse("integration_id", "an integration id")?,
        account_id: params.one("account_id")?,
        resource_type: match params.one("type")? {
            None => None,
            Some(t) => Some(ResourceType::parse(&t).ok_or_else(|| {
                ApiError::invalid_parameter(
                    "type",
                    "`type` must be one of ec2_instance, s3_bucket, iam_role, iam_policy, iam_group, iam_user",
                )
            })?),
        },
        region: params.one("region")?,
        tags: parse_tags(params.all("tag"))?,
        query: params.one("q")?.filter(|q| !q.is_empty()),
    };
    params.finish()?;
    if filter.account_id.as_deref().is_some_and(|a| !is_account_id(a)) {
        return Err(ApiError::invalid_parameter("account_id", "`account_id` must be 12 digits"));
    }
    if filter.region.as_deref().is_some_and(|r| !is_region_code(r)) {
        return Err(ApiError::invalid_parameter("region", "`region` must be a region code such as us-east-1"));
    }
    if filter.query.as_ref().is_some_and(|q| q.chars().count() > 256) {
        return Err(ApiError::invalid_parameter("q", "`q` may be at most 256 characters"));
    }
    if let Some(id) = filter.integration_id {
        super::integrations::find(&state, id).await?;
    }
    let after = page.after_id();
    let version = state.browse_cache.version(&state.db).await?;
    let key = format!("{filter:?} {after:?} {}", page.limit);
    if let Some(body) = state.browse_cache.get(version, &key) {
        return Ok(json_body(body));
    }
    let rows = storage::resources::browse(&state.db, &filter, after, page.fetch_limit()).await?;
    let (items, next_cursor) = page.finish(rows, |r| r.id);
    let body = Bytes::from(
        serde_json::to_vec(&ResourcePage { items: items.into_iter().map(Into::into).collect(), next_cursor })
            .expect("a page serializes"),
    );
    state.browse_cache.put(version, key, body.clone());
    Ok(json_body(body))
}

/// A JSON body already serialized (pages are cached that way).
fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// `key:value` filters grouped by key.
fn parse_tags(raw: Vec<String>) -> ApiResult<BTreeMap<String, Vec<String>>> {
    if raw.len() > 50 {
        return Err(ApiError::invalid_parameter("tag", "at most 50 `tag` filters"));
    }
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for filter in raw {
        let (key, value) = filter
            .split_once(':')
            .filter(|(key, _)| !key.is_empty() && key.chars().count() <= 128)
            .ok_or_else(|| ApiError::invalid_parameter("tag", format!("`tag={filter}` must be `key:value`")))?;
        let values = tags.entry(key.to_string()).or_default();
        if !values.iter().any(|v| v == value) {
            values.push(value.to_string());
        }
    }
    Ok(tags)
}

/// One resource.
#[utoipa::path(
    get, path = "/v1/resources/{id}", operation_id = "get_resource", tag = "inventory",
    params(("id" = Uuid, Path, description = "Resource id")),
    responses(
        (status = 200, body = Resource),
    ),
)]
pub async fn get_resource(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Resource>> {
    storage::resources::get(&state.db, id)
        .await?
        .map(|r| Json(r.into()))
        .ok_or_else(|| ApiError::not_found("resource", id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_at_the_first_colon_and_group_by_key() {
        let tags = parse_tags(vec!["env:prod".into(), "env:dev".into(), "aws:x:y".into(), "team:".into()]).unwrap();
        assert_eq!(tags["env"], ["prod", "dev"]);
        assert_eq!(tags["aws"], ["x:y"]);
        assert_eq!(tags["team"], [""]);
        assert!(parse_tags(vec!["novalue".into()]).is_err());
        assert!(parse_tags(vec![":v".into()]).is_err());
    }
}
