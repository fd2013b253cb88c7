//! Submission and extension: what is checked before a grant is accepted or
//! made longer. The offer (the integration active, the resource offered under
//! its tag filter now, the grantee in the inventory), the integration's grant
//! policy (levels, longest grant), the expiry, then the mechanism's plan.
//! Refusals name the request field; `api/` answers them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{plan, Plan, Quotas, Refusal, Request};
use crate::config::GrantConfig;
use crate::domain::grant::{Grantee, PrincipalType};
use crate::domain::integration::{GrantBounds, Integration, IntegrationStatus};
use crate::domain::policy::GeneratedPolicy;
use crate::domain::resource::{AccessLevel, Resource, ResourceType};
use crate::storage;
use crate::storage::grants::GrantRow;
use crate::storage::resources::FoundGrantee;

/// How long a grant is asked to last: `duration_seconds` or `expires_at`.
#[derive(Clone, Copy, Debug)]
pub enum Length {
    Seconds(i64),
    Until(DateTime<Utc>),
}

impl Length {
    /// The request field that asked for it.
    pub fn field(self) -> &'static str {
        match self {
            Length::Seconds(_) => "duration_seconds",
            Length::Until(_) => "expires_at",
        }
    }
}

/// A grant as submitted.
pub struct Submission<'a> {
    pub integration_id: Uuid,
    pub resource_id: Option<Uuid>,
    pub resource_arn: Option<&'a str>,
    pub access_level: AccessLevel,
    pub principal_type: PrincipalType,
    pub principal_name: &'a str,
    pub length: Length,
    /// The id the grant will have; None in a preview.
    pub grant_id: Option<Uuid>,
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
}

/// A check's answer: the database failing, or the grant refused, or what was checked.
pub type Checking<T> = Result<Result<T, Refusal>, sqlx::Error>;

/// The service's shortest and longest grant.
pub fn bounds(config: &GrantConfig) -> GrantBounds {
    GrantBounds { min: config.min_grant, max: config.max_grant }
}

/// Checks a submission (or a preview) against the offer, the integration's
/// grant policy and the mechanism's rules.
pub async fn check(db: &PgPool, config: &GrantConfig, submission: &Submission<'_>) -> Checking<Checked> {
    let s = submission;
    // Every lookup in one round, side by side: a grant's latency is mostly
    // round trips. Expiry is counted on Postgres's clock, the one the worker
    // decides by, whatever this replica's says.
    let (db_now, integration, resource, grantee_found) = tokio::try_join!(
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
    )?;
    Ok(offered(config, s, db_now, integration, resource, grantee_found))
}

/// The rules, on what the lookups found. What the request refers to and does
/// not exist is not found, naming the field.
fn offered(
    config: &GrantConfig,
    s: &Submission<'_>,
    db_now: DateTime<Utc>,
    integration: Option<Integration>,
    resource: Option<Resource>,
    grantee_found: Option<FoundGrantee>,
) -> Result<Checked, Refusal> {
    let integration = integration.ok_or_else(|| Refusal::NotFound {
        field: "integration_id",
        message: format!("no integration with id {}", s.integration_id),
    })?;
    if integration.status != IntegrationStatus::Active {
        return Err(being_deleted(Some("integration_id")));
    }
    let field = if s.resource_arn.is_some() { "resource_arn" } else { "resource_id" };
    let resource = resource.ok_or_else(|| Refusal::NotFound {
        field,
        message: "not in this integration's inventory, or excluded by its tag filter".into(),
    })?;
    let grantee = Grantee {
        principal_type: s.principal_type,
        name: s.principal_name.to_string(),
        account_id: resource.account_id.clone(),
    };
    let FoundGrantee { principal, held, unique_id: principal_id } = grantee_found.ok_or_else(|| Refusal::NotFound {
        field: "principal.name",
        message: format!(
            "no IAM {} `{}` in account {} (as of the last sync)",
            grantee.principal_type.noun(),
            grantee.name,
            grantee.account_id
        ),
    })?;
    check_level(&integration, resource.resource_type, s.access_level)?;
    let expires_at = expiry(config, &integration, s.length, db_now)?;
    let request = Request {
        integration: &integration,
        resource: &resource,
        level: s.access_level,
        grantee: &grantee,
        principal: &principal,
        held: &held,
        resource_field: field,
        grant_id: s.grant_id,
    };
    let plan = plan(&request, &Quotas::from(config))?;
    Ok(Checked { integration, resource, grantee, principal_arn: principal.arn, principal_id, expires_at, plan })
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
    current: &GrantRow,
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

/// A submission whose `request_id` was seen before: the same grant when the
/// body is the same (its `fingerprint`), else refused.
pub fn replay(existing: GrantRow, fingerprint: &str, request_id: &str) -> Result<GrantRow, Refusal> {
    if existing.request_fingerprint == fingerprint {
        Ok(existing)
    } else {
        Err(Refusal::RequestIdConflict {
            message: format!("request_id `{request_id}` was submitted before with a different body"),
        })
    }
}
