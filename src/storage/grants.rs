//! Queries on `grants`, `grant_events` and `shared_attachments`.
//!
//! Every state change is a conditional UPDATE (`where status = ...`), so a
//! worker and an API call racing on one grant can never both win.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{FromRow, PgExecutor, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::resources::MARK_CHANGED;
use super::run_queue::interval;
use crate::domain::audit::AuditRecord;
use crate::domain::grant::{
    CallOutcome, EventKind, Grant, GrantError, GrantEvent, GrantStatus, Grantee, PermissionSetRoom, PrincipalType,
    RevokeReason,
};
use crate::domain::policy::PolicyDocument;
use crate::domain::resource::{AccessLevel, ResourceType};

pub const REQUEST_ID_CONSTRAINT: &str = "grants_request_id_key";

/// Decoded by hand: the grant holds its documents themselves, not sqlx's
/// `Json`, so that it needs no SQL type to be a value of its own.
impl<'r> FromRow<'r, PgRow> for Grant {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        Ok(Self {
            grant_id: row.try_get("grant_id")?,
            integration_id: row.try_get("integration_id")?,
            account_id: row.try_get("account_id")?,
            resource_id: row.try_get("resource_id")?,
            resource_type: row.try_get("resource_type")?,
            resource_arn: row.try_get("resource_arn")?,
            resource_name: row.try_get("resource_name")?,
            access_level: row.try_get("access_level")?,
            principal_type: row.try_get("principal_type")?,
            principal_name: row.try_get("principal_name")?,
            principal_arn: row.try_get("principal_arn")?,
            principal_id: row.try_get("principal_id")?,
            request_id: row.try_get("request_id")?,
            request_fingerprint: row.try_get("request_fingerprint")?,
            approved_by: row.try_get("approved_by")?,
            reason: row.try_get("reason")?,
            requested_by: row.try_get("requested_by")?,
            status: row.try_get("status")?,
            revoke_reason: row.try_get("revoke_reason")?,
            expires_at: row.try_get("expires_at")?,
            policy_name: row.try_get("policy_name")?,
            policy_arn: row.try_get("policy_arn")?,
            policy_document: row
                .try_get::<Option<Json<PolicyDocument>>, _>("policy_document")?
                .map(|document| document.0),
            holds_attachment: row.try_get("holds_attachment")?,
            attempts: row.try_get("attempts")?,
            next_run_at: row.try_get("next_run_at")?,
            lease_owner: row.try_get("lease_owner")?,
            last_error: row.try_get::<Option<Json<GrantError>>, _>("last_error")?.map(|error| error.0),
            activated_at: row.try_get("activated_at")?,
            finished_at: row.try_get("finished_at")?,
            created_at: row.try_get("created_at")?,
            installation_id: optional(row, "installation_id")?,
            sessions_denied_until: optional(row, "sessions_denied_until")?,
            target_account_id: optional(row, "target_account_id")?,
            session_duration_seconds: optional(row, "session_duration_seconds")?,
            integration_revision: optional(row, "integration_revision")?,
            integration_status: optional(row, "integration_status")?,
            db_now: optional(row, "db_now")?,
        })
    }
}

/// A column only some queries return (the worker's): None where it is absent.
fn optional<'r, T>(row: &'r PgRow, column: &str) -> sqlx::Result<Option<T>>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    match row.try_get(column) {
        Err(sqlx::Error::ColumnNotFound(_)) => Ok(None),
        other => other,
    }
}

/// A grant about to be stored.
pub struct NewGrant<'a> {
    pub grant_id: Uuid,
    pub integration_id: Uuid,
    pub account_id: &'a str,
    pub resource_id: Uuid,
    pub resource_type: ResourceType,
    pub resource_arn: &'a str,
    pub resource_name: &'a str,
    pub access_level: AccessLevel,
    pub principal_type: PrincipalType,
    pub principal_name: &'a str,
    pub principal_arn: &'a str,
    /// The principal's IAM unique id, as the inventory has it.
    pub principal_id: Option<&'a str>,
    pub request_id: &'a str,
    pub request_fingerprint: &'a str,
    pub approved_by: &'a str,
    pub reason: Option<&'a str>,
    pub requested_by: &'a str,
    pub expires_at: DateTime<Utc>,
    pub policy_name: Option<&'a str>,
    pub policy_arn: Option<&'a str>,
    pub policy_document: Option<&'a PolicyDocument>,
    /// The account a permission set is assigned in.
    pub target_account_id: Option<&'a str>,
}

/// Stores a grant, its first event and its audit record in one statement.
/// With `lease`, it is stored claimed by that worker (which works on it at
/// once); without, the workers of every replica are woken to claim it. None
/// when `request_id` exists already.
/// None when nothing was stored: a grant with the same request_id exists, or
/// the integration is no longer active at `integration_revision` (deleted,
/// being deleted, or changed since the grant was checked). The insert holds
/// the integration's row share-locked: a deletion (which locks it for update)
/// either waits and then revokes this grant with the others, or comes first
/// and this grant is not stored.
pub async fn insert(
    db: impl PgExecutor<'_>,
    grant: &NewGrant<'_>,
    integration_revision: i64,
    lease: Option<(&str, Duration)>,
    audit: &AuditRecord,
) -> Result<Option<Grant>, sqlx::Error> {
    sqlx::query_as::<_, Grant>(
        "with live as (
             select integration_id from integrations
             where integration_id = $2 and status = 'active' and revision = $29
             for share),
         inserted as (
             insert into grants (grant_id, integration_id, account_id, resource_id, resource_type, resource_arn,
                                 resource_name, access_level, principal_type, principal_name, principal_arn,
                                 request_id, request_fingerprint, approved_by, reason, requested_by, expires_at,
                                 policy_name, policy_arn, policy_document, lease_owner, lease_expires_at,
                                 principal_id, target_account_id)
             select $1, live.integration_id, $3, $4, $5, $6, $7, $8, $20, $9, $10, $11, $12, $13, $14, $15, $16,
                    $17, $18, $19, $21, case when $21::text is not null then now() + $22 end, $28, $30
             from live
             on conflict (request_id) do nothing
             returning *),
         event as (
             insert into grant_events (grant_id, kind, to_status, actor, message)
             select grant_id, 'transition', 'pending', $15, 'submitted' from inserted),
         audit as (
             insert into audit_events (event_id, actor, role, request_id, action, target_type, target_id, changes)
             select $23, $15, $24, $25, $26, 'grant', grant_id, $27 from inserted)
         select inserted.*, now() as db_now, (select pg_notify('jit_iam_work', 'grant') where $21::text is null)
         from inserted",
    )
    .bind(grant.grant_id)
    .bind(grant.integration_id)
    .bind(grant.account_id)
    .bind(grant.resource_id)
    .bind(grant.resource_type.as_str())
    .bind(grant.resource_arn)
    .bind(grant.resource_name)
    .bind(grant.access_level.as_str())
    .bind(grant.principal_name)
    .bind(grant.principal_arn)
    .bind(grant.request_id)
    .bind(grant.request_fingerprint)
    .bind(grant.approved_by)
    .bind(grant.reason)
    .bind(grant.requested_by)
    .bind(grant.expires_at)
    .bind(grant.policy_name)
    .bind(grant.policy_arn)
    .bind(grant.policy_document.map(Json))
    .bind(grant.principal_type.as_str())
    .bind(lease.map(|(owner, _)| owner))
    .bind(interval(lease.map_or(Duration::ZERO, |(_, length)| length)))
    .bind(Uuid::now_v7())
    .bind(audit.role.as_str())
    .bind(&audit.request_id)
    .bind(audit.action.as_str())
    .bind(Json(&audit.changes))
    .bind(grant.principal_id)
    .bind(integration_revision)
    .bind(grant.target_account_id)
    .fetch_optional(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Grant>, sqlx::Error> {
    sqlx::query_as::<_, Grant>("select *, now() as db_now from grants where grant_id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn get_by_request_id(db: impl PgExecutor<'_>, request_id: &str) -> Result<Option<Grant>, sqlx::Error> {
    sqlx::query_as::<_, Grant>("select * from grants where request_id = $1").bind(request_id).fetch_optional(db).await
}

#[derive(Debug, Default)]
pub struct GrantFilter {
    pub status: Option<GrantStatus>,
    pub integration_id: Option<Uuid>,
    pub account_id: Option<String>,
    pub principal_type: Option<PrincipalType>,
    pub principal: Option<String>,
    pub resource_id: Option<Uuid>,
    pub request_id: Option<String>,
}

/// Newest first, before `before` when given.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &GrantFilter,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Grant>, sqlx::Error> {
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new("select * from grants where true");
    if let Some(status) = filter.status {
        sql.push(" and status = ").push_bind(status.as_str());
    }
    if let Some(id) = filter.integration_id {
        sql.push(" and integration_id = ").push_bind(id);
    }
    if let Some(account_id) = &filter.account_id {
        sql.push(" and account_id = ").push_bind(account_id.clone());
    }
    if let Some(principal_type) = filter.principal_type {
        sql.push(" and principal_type = ").push_bind(principal_type.as_str());
    }
    if let Some(principal) = &filter.principal {
        sql.push(" and principal_name = ").push_bind(principal.clone());
    }
    if let Some(id) = filter.resource_id {
        sql.push(" and resource_id = ").push_bind(id);
    }
    if let Some(request_id) = &filter.request_id {
        sql.push(" and request_id = ").push_bind(request_id.clone());
    }
    if let Some(before) = before {
        sql.push(" and grant_id < ").push_bind(before);
    }
    sql.push(" order by grant_id desc limit ").push_bind(limit);
    sql.build_query_as().fetch_all(db).await
}

/// Claims up to `limit` grants that are due, or whose replica's lease ran out,
/// with their integration's revision and status (saving a query per grant).
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    owner: &str,
    lease: Duration,
    limit: i64,
    per_account: i64,
) -> Result<Vec<Grant>, sqlx::Error> {
    // Earliest due first, but no more of one account than its room under
    // `per_account` (counting what every replica works on): a backlog in one
    // account waits its turn without holding up the others. Replicas claiming
    // at the same instant may each fill the same room: the cap is a pace, not a lock.
    sqlx::query_as::<_, Grant>(
        "update grants g set lease_owner = $1, lease_expires_at = now() + $2
         from (select grant_id from grants
               where grant_id in (
                   select ranked.grant_id
                   from (select grant_id, account_id,
                                row_number() over (partition by account_id order by next_run_at) as place
                         from grants
                         where next_run_at <= now() and (lease_expires_at is null or lease_expires_at < now())) ranked
                   left join (select account_id, count(*) as n from grants
                              where lease_owner is not null and lease_expires_at >= now()
                              group by account_id) busy on busy.account_id = ranked.account_id
                   where ranked.place <= $4 - coalesce(busy.n, 0))
                 and next_run_at <= now() and (lease_expires_at is null or lease_expires_at < now())
               order by next_run_at
               limit $3
               for update skip locked) due
         where g.grant_id = due.grant_id
         returning g.*, now() as db_now,
             (select revision from integrations i where i.integration_id = g.integration_id) as integration_revision,
             (select status from integrations i where i.integration_id = g.integration_id) as integration_status",
    )
    .bind(owner)
    .bind(interval(lease))
    .bind(limit)
    .bind(per_account)
    .fetch_all(db)
    .await
}

/// How long until the next grant falls due (by the database's clock).
pub async fn next_due_in(db: impl PgExecutor<'_>) -> Result<Option<Duration>, sqlx::Error> {
    let seconds: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from min(next_run_at) - now())::float8 from grants
         where next_run_at is not null and (lease_expires_at is null or lease_expires_at < now())",
    )
    .fetch_one(db)
    .await?;
    Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

pub async fn extend_lease(
    db: impl PgExecutor<'_>,
    grant_id: Uuid,
    owner: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("update grants set lease_expires_at = now() + $3 where grant_id = $1 and lease_owner = $2")
            .bind(grant_id)
            .bind(owner)
            .bind(interval(lease))
            .execute(db)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives up the lease: the grant waits for `next_run_at` (or for nothing); an
/// active grant waits for its expiry as it stands now.
pub async fn release(db: impl PgExecutor<'_>, grant_id: Uuid, owner: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update grants
         set lease_owner = null, lease_expires_at = null,
             next_run_at = case when status = 'active' then expires_at else next_run_at end
         where grant_id = $1 and lease_owner = $2",
    )
    .bind(grant_id)
    .bind(owner)
    .execute(db)
    .await
    .map(|_| ())
}

/// A state change the worker makes, applied only if the grant is still in
/// `from` and leased by `owner`.
pub struct Transition<'a> {
    pub grant_id: Uuid,
    pub owner: &'a str,
    pub from: GrantStatus,
    pub to: GrantStatus,
    /// When the worker must act next (None: nothing left to do). Ignored for
    /// `active`: an active grant is next due at its expiry as the row has it,
    /// so an extension made while the grant was being applied counts.
    pub next_run_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_error: Option<&'a GrantError>,
    pub holds_attachment: bool,
    /// Set when the step starts a revocation (an active grant that expired).
    pub revoke_reason: Option<RevokeReason>,
    /// Until when the sessions the grant gave are denied (an `assume` grant's end).
    pub sessions_denied_until: Option<DateTime<Utc>>,
    /// The assigned permission set's session duration, when the step read it.
    pub session_duration_seconds: Option<i32>,
}

impl<'a> Transition<'a> {
    /// From `from` to `to`, with nothing due, no error, no attachment held.
    pub fn new(grant_id: Uuid, owner: &'a str, from: GrantStatus, to: GrantStatus) -> Self {
        Self {
            grant_id,
            owner,
            from,
            to,
            next_run_at: None,
            attempts: 0,
            last_error: None,
            holds_attachment: false,
            revoke_reason: None,
            sessions_denied_until: None,
            session_duration_seconds: None,
        }
    }
}

/// Ends a worker step in one statement: applies the transition if the grant is
/// still in `from` and leased by the worker, records the step's events either
/// way (its AWS calls happened), and notifies waiters on every replica. None
/// when the grant changed under the worker (revoked or extended through the
/// API meanwhile). The lease is kept only when more work is due at once.
pub async fn finish_step(
    db: impl PgExecutor<'_>,
    t: &Transition<'_>,
    events: &[NewEvent],
) -> Result<Option<Grant>, sqlx::Error> {
    let column = |f: fn(&NewEvent) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    sqlx::query_as::<_, Grant>(
        "with updated as (
             update grants
             set status = $4, next_run_at = case when $4 = 'active' then expires_at else $5 end,
                 attempts = $6, last_error = $7, holds_attachment = $8,
                 revoke_reason = coalesce($9, revoke_reason),
                 activated_at = case when $4 = 'active' and activated_at is null then now() else activated_at end,
                 finished_at = case when $4 in ('revoked', 'failed') then coalesce(finished_at, now()) else finished_at end,
                 sessions_denied_until = $20,
                 session_duration_seconds = coalesce($21, session_duration_seconds),
                 lease_owner = case when (case when $4 = 'active' then expires_at else $5 end) <= now()
                                    then lease_owner end,
                 lease_expires_at = case when (case when $4 = 'active' then expires_at else $5 end) <= now()
                                         then lease_expires_at end
             where grant_id = $1 and lease_owner = $2 and status = $3
             returning *),
         recorded as (
             insert into grant_events (grant_id, actor, kind, from_status, to_status, operation, target, outcome,
                                       aws_request_id, error_code, message, attempts)
             select $1, $2, t.kind, t.from_status, t.to_status, t.operation, t.target, t.outcome,
                    t.aws_request_id, t.error_code, t.message, t.attempts
             from unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                         $16::text[], $17::text[], $18::text[], $19::int[])
                  with ordinality as t(kind, from_status, to_status, operation, target, outcome, aws_request_id,
                                       error_code, message, attempts, n)
             order by n)
         select updated.*, now() as db_now, pg_notify('jit_iam_work', 'grant_changed:' || grant_id) from updated",
    )
    .bind(t.grant_id)
    .bind(t.owner)
    .bind(t.from.as_str())
    .bind(t.to.as_str())
    .bind(t.next_run_at)
    .bind(t.attempts)
    .bind(t.last_error.map(Json))
    .bind(t.holds_attachment)
    .bind(t.revoke_reason.map(RevokeReason::as_str))
    .bind(column(|e| Some(e.kind.as_str().to_string())))
    .bind(column(|e| e.from_status.map(|s| s.as_str().to_string())))
    .bind(column(|e| e.to_status.map(|s| s.as_str().to_string())))
    .bind(column(|e| e.operation.clone()))
    .bind(column(|e| e.target.clone()))
    .bind(column(|e| e.outcome.map(|o| o.as_str().to_string())))
    .bind(column(|e| e.aws_request_id.clone()))
    .bind(column(|e| e.error_code.clone()))
    .bind(column(|e| e.message.clone()))
    .bind(events.iter().map(|e| e.attempts).collect::<Vec<_>>())
    .bind(t.sessions_denied_until)
    .bind(t.session_duration_seconds)
    .fetch_optional(db)
    .await
}

/// Asks for the revocation of a pending or active grant (API).
pub async fn request_revoke(
    db: impl PgExecutor<'_>,
    grant_id: Uuid,
    reason: RevokeReason,
) -> Result<Option<Grant>, sqlx::Error> {
    sqlx::query_as::<_, Grant>(
        "with updated as (
             update grants set status = 'revoking', revoke_reason = $2, next_run_at = now(), attempts = 0, last_error = null
             where grant_id = $1 and status in ('pending', 'active')
             returning *)
         select updated.*, pg_notify('jit_iam_work', 'grant') from updated",
    )
    .bind(grant_id)
    .bind(reason.as_str())
    .fetch_optional(db)
    .await
}

/// Moves the expiry of a pending or active grant that has not expired yet (API).
pub async fn extend(
    db: impl PgExecutor<'_>,
    grant_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<Option<Grant>, sqlx::Error> {
    sqlx::query_as::<_, Grant>(
        "with updated as (
             update grants
             set expires_at = $2, next_run_at = case when status = 'active' then $2 else next_run_at end
             where grant_id = $1 and status in ('pending', 'active') and expires_at > now()
             returning *)
         select updated.*, pg_notify('jit_iam_work', 'grant') from updated",
    )
    .bind(grant_id)
    .bind(expires_at)
    .fetch_optional(db)
    .await
}

/// Starts revoking every live grant of an integration being deleted, with the
/// same events as a revocation on request by `actor`.
pub async fn revoke_all_of_integration(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    actor: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "with live as (
             select grant_id, status from grants
             where integration_id = $1 and status in ('pending', 'active')
             for update),
         revoked as (
             update grants g set status = 'revoking', revoke_reason = 'integration_deleted', next_run_at = now(),
                                 attempts = 0, last_error = null
             from live where g.grant_id = live.grant_id
             returning g.grant_id, live.status as from_status),
         events as (
             insert into grant_events (grant_id, kind, from_status, to_status, actor, message)
             select grant_id, 'transition', from_status, 'revoking', $2, 'revocation requested: integration deleted'
             from revoked)
         select grant_id from revoked",
    )
    .bind(integration_id)
    .bind(actor)
    .fetch_all(db)
    .await
}

/// The active grants of an integration in one account, as reconciliation checks them.
pub async fn active_in_account(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    account_id: &str,
) -> Result<Vec<Grant>, sqlx::Error> {
    sqlx::query_as::<_, Grant>(
        "select *, now() as db_now from grants
         where integration_id = $1 and account_id = $2 and status = 'active'
         order by grant_id",
    )
    .bind(integration_id)
    .bind(account_id)
    .fetch_all(db)
    .await
}

/// The generated policies of every grant in an account, whatever its status:
/// the policies jit-iam knows.
pub async fn generated_policies_in_account(
    db: impl PgExecutor<'_>,
    account_id: &str,
) -> Result<Vec<(Uuid, String, String)>, sqlx::Error> {
    sqlx::query_as("select grant_id, policy_arn, status from grants where account_id = $1 and policy_arn is not null")
        .bind(account_id)
        .fetch_all(db)
        .await
}

/// Ended grants of an account whose shared policy or group membership
/// jit-iam removed at their end (a successful detach or removal in their
/// events), within `since`, and that no live grant of the same principal
/// holds: if IAM shows that access again, someone else gave it.
pub async fn shared_removed_at_end(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    account_id: &str,
    since: Duration,
) -> Result<Vec<Grant>, sqlx::Error> {
    sqlx::query_as::<_, Grant>(
        "select g.*, now() as db_now from grants g
         where g.integration_id = $1 and g.account_id = $2 and g.status = 'revoked'
           and g.resource_type in ('iam_policy', 'iam_group', 'identity_center_group', 'permission_set')
           and g.finished_at > now() - $3
           and exists (select 1 from grant_events e
                       where e.grant_id = g.grant_id and e.kind = 'aws_call' and e.outcome = 'success'
                         and e.operation in ('iam:DetachUserPolicy', 'iam:DetachRolePolicy', 'iam:RemoveUserFromGroup',
                                             'identitystore:DeleteGroupMembership', 'sso:DeleteAccountAssignment'))
           and not exists (select 1 from grants l
                           where l.account_id = g.account_id and l.principal_type = g.principal_type
                             and l.principal_name = g.principal_name and l.resource_arn = g.resource_arn
                             and l.target_account_id is not distinct from g.target_account_id
                             and l.status in ('pending', 'active', 'revoking'))
         order by g.grant_id",
    )
    .bind(integration_id)
    .bind(account_id)
    .bind(interval(since))
    .fetch_all(db)
    .await
}

/// Of the grants `ids` in `account_id`, those this installation knows whose
/// sessions are no longer denied (the worker removed the deny, or never
/// recorded one), with the role their deny belongs on (the grant's target).
pub async fn sessions_deny_over(
    db: impl PgExecutor<'_>,
    account_id: &str,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "select grant_id, resource_name from grants
         where grant_id = any($2) and account_id = $1 and resource_type = 'iam_role'
           and status in ('revoked', 'failed') and sessions_denied_until is null",
    )
    .bind(account_id)
    .bind(ids)
    .fetch_all(db)
    .await
}

/// Records that this installation tagged the policy of a grant from before installation ids.
pub async fn adopt(db: impl PgExecutor<'_>, grant_id: Uuid, installation_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("update grants set installation_id = $2 where grant_id = $1 and installation_id is null")
        .bind(grant_id)
        .bind(installation_id)
        .execute(db)
        .await
        .map(|_| ())
}

/// Locks an active grant for a repair, unless a worker holds it (then None:
/// the worker's step decides). Held until the caller's transaction ends, so
/// that a revocation waits for the repair and then removes what it put back.
pub async fn lock_active_for_repair(db: impl PgExecutor<'_>, grant_id: Uuid) -> Result<Option<Grant>, sqlx::Error> {
    sqlx::query_as::<_, Grant>(
        "select *, now() as db_now from grants
         where grant_id = $1 and status = 'active' and expires_at > now()
           and (lease_expires_at is null or lease_expires_at < now())
         for update skip locked",
    )
    .bind(grant_id)
    .fetch_optional(db)
    .await
}

/// The accounts where an integration has live grants.
pub async fn live_accounts_of_integration(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select distinct account_id from grants
         where integration_id = $1 and status in ('pending', 'active', 'revoking') order by account_id",
    )
    .bind(integration_id)
    .fetch_all(db)
    .await
}

pub async fn count_live_of_integration(db: impl PgExecutor<'_>, integration_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from grants where integration_id = $1 and status in ('pending', 'active', 'revoking')",
    )
    .bind(integration_id)
    .fetch_one(db)
    .await
}

/// Live grants of an integration that reach Identity Center: their revocation
/// needs the integration's Identity Center instance.
pub async fn count_live_identity_center_of_integration(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from grants where integration_id = $1 and status in ('pending', 'active', 'revoking') \
         and (principal_type like 'identity_center_%' or resource_type like 'identity_center_%')",
    )
    .bind(integration_id)
    .fetch_one(db)
    .await
}

/// The managed policies a grantee has, as far as jit-iam knows (see the SQL
/// function `grantee_policies`), but for those of `excluding_grant`.
pub async fn managed_policies_of(
    db: impl PgExecutor<'_>,
    grantee: &Grantee,
    excluding_grant: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("select grantee_policies($1, $2, $3, $4)")
        .bind(&grantee.account_id)
        .bind(grantee.principal_type.as_str())
        .bind(&grantee.name)
        .bind(excluding_grant)
        .fetch_all(db)
        .await
}

/// Serializes every grant operation on one principal, across replicas, until the transaction ends.
pub async fn lock_principal(db: impl PgExecutor<'_>, grantee: &Grantee) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(grantee.lock_key())
        .execute(db)
        .await
        .map(|_| ())
}

/// One event to record.
pub struct NewEvent {
    pub kind: EventKind,
    pub from_status: Option<GrantStatus>,
    pub to_status: Option<GrantStatus>,
    pub operation: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<CallOutcome>,
    pub aws_request_id: Option<String>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub attempts: Option<i32>,
}

impl NewEvent {
    fn empty(kind: EventKind) -> Self {
        Self {
            kind,
            from_status: None,
            to_status: None,
            operation: None,
            target: None,
            outcome: None,
            aws_request_id: None,
            error_code: None,
            message: None,
            attempts: None,
        }
    }

    pub fn extended(from: DateTime<Utc>, to: DateTime<Utc>, approved_by: Option<&str>, reason: Option<&str>) -> Self {
        let mut message = format!("expiry moved from {} to {}", from.to_rfc3339(), to.to_rfc3339());
        if let Some(approved_by) = approved_by {
            message.push_str(&format!(", approved by {approved_by}"));
        }
        if let Some(reason) = reason {
            message.push_str(&format!(": {reason}"));
        }
        Self { message: Some(message), ..Self::empty(EventKind::Extended) }
    }

    /// A reconciliation finding, or its repair (`repaired`).
    pub fn drift(repaired: bool, message: impl Into<String>) -> Self {
        let kind = if repaired { EventKind::DriftRepaired } else { EventKind::DriftDetected };
        Self { message: Some(message.into()), ..Self::empty(kind) }
    }

    pub fn transition(from: Option<GrantStatus>, to: GrantStatus, message: impl Into<String>) -> Self {
        Self {
            from_status: from,
            to_status: Some(to),
            message: Some(message.into()),
            ..Self::empty(EventKind::Transition)
        }
    }
}

/// Records events in one statement.
pub async fn insert_events(
    db: impl PgExecutor<'_>,
    grant_id: Uuid,
    actor: &str,
    events: &[NewEvent],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&NewEvent) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "insert into grant_events (grant_id, actor, kind, from_status, to_status, operation, target, outcome,
                                   aws_request_id, error_code, message, attempts)
         select $1, $2, t.kind, t.from_status, t.to_status, t.operation, t.target, t.outcome, t.aws_request_id,
                t.error_code, t.message, t.attempts
         from unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                                      $9::text[], $10::text[], $11::text[], $12::int[])
         with ordinality as t(kind, from_status, to_status, operation, target, outcome, aws_request_id,
                              error_code, message, attempts, n)
         order by n",
    )
    .bind(grant_id)
    .bind(actor)
    .bind(column(|e| Some(e.kind.as_str().to_string())))
    .bind(column(|e| e.from_status.map(|s| s.as_str().to_string())))
    .bind(column(|e| e.to_status.map(|s| s.as_str().to_string())))
    .bind(column(|e| e.operation.clone()))
    .bind(column(|e| e.target.clone()))
    .bind(column(|e| e.outcome.map(|o| o.as_str().to_string())))
    .bind(column(|e| e.aws_request_id.clone()))
    .bind(column(|e| e.error_code.clone()))
    .bind(column(|e| e.message.clone()))
    .bind(events.iter().map(|e| e.attempts).collect::<Vec<_>>())
    .execute(db)
    .await
    .map(|_| ())
}

#[derive(sqlx::FromRow)]
struct EventRow {
    event_id: i64,
    kind: String,
    from_status: Option<String>,
    to_status: Option<String>,
    operation: Option<String>,
    target: Option<String>,
    outcome: Option<String>,
    aws_request_id: Option<String>,
    error_code: Option<String>,
    message: Option<String>,
    actor: String,
    attempts: Option<i32>,
    created_at: DateTime<Utc>,
}

/// Events in order, after `after` when given.
pub async fn events(
    db: impl PgExecutor<'_>,
    grant_id: Uuid,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<GrantEvent>, sqlx::Error> {
    let rows = sqlx::query_as::<_, EventRow>(
        "select event_id, kind, from_status, to_status, operation, target, outcome, aws_request_id, error_code,
                message, actor, attempts, created_at
         from grant_events where grant_id = $1 and ($2::bigint is null or event_id > $2)
         order by event_id limit $3",
    )
    .bind(grant_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| GrantEvent {
            id: row.event_id,
            kind: EventKind::parse(&row.kind).expect("checked by the table"),
            from_status: row.from_status.as_deref().and_then(GrantStatus::parse),
            to_status: row.to_status.as_deref().and_then(GrantStatus::parse),
            operation: row.operation,
            target: row.target,
            outcome: row.outcome.as_deref().and_then(CallOutcome::parse),
            aws_request_id: row.aws_request_id,
            error_code: row.error_code,
            message: row.message,
            actor: row.actor,
            attempts: row.attempts,
            created_at: row.created_at,
        })
        .collect())
}

/// A policy attachment or group membership shared by grants.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SharedAttachment {
    pub preexisting: bool,
    pub state: String,
}

/// One shared attachment: the grantee's policy ARN, group name or id, or
/// permission set assignment (`<permission set ARN>@<account id>`).
pub struct AttachmentKey<'a> {
    pub grantee: &'a Grantee,
    /// `policy`, `group` or `assignment`.
    pub kind: &'a str,
    pub target: std::borrow::Cow<'a, str>,
}

pub async fn shared_attachment(
    db: impl PgExecutor<'_>,
    key: &AttachmentKey<'_>,
) -> Result<Option<SharedAttachment>, sqlx::Error> {
    sqlx::query_as::<_, SharedAttachment>(
        "select preexisting, state from shared_attachments
         where account_id = $1 and principal_type = $2 and principal_name = $3 and kind = $4 and target = $5",
    )
    .bind(&key.grantee.account_id)
    .bind(key.grantee.principal_type.as_str())
    .bind(&key.grantee.name)
    .bind(key.kind)
    .bind(key.target.as_ref())
    .fetch_optional(db)
    .await
}

pub async fn put_shared_attachment(
    db: impl PgExecutor<'_>,
    key: &AttachmentKey<'_>,
    preexisting: bool,
    state: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into shared_attachments (account_id, principal_type, principal_name, kind, target, preexisting, state)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (account_id, principal_type, principal_name, kind, target) do update
         set preexisting = excluded.preexisting, state = excluded.state",
    )
    .bind(&key.grantee.account_id)
    .bind(key.grantee.principal_type.as_str())
    .bind(&key.grantee.name)
    .bind(key.kind)
    .bind(key.target.as_ref())
    .bind(preexisting)
    .bind(state)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn delete_shared_attachment(db: impl PgExecutor<'_>, key: &AttachmentKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "delete from shared_attachments
         where account_id = $1 and principal_type = $2 and principal_name = $3 and kind = $4 and target = $5",
    )
    .bind(&key.grantee.account_id)
    .bind(key.grantee.principal_type.as_str())
    .bind(&key.grantee.name)
    .bind(key.kind)
    .bind(key.target.as_ref())
    .execute(db)
    .await
    .map(|_| ())
}

/// Other live grants holding the same attachment for the same grantee.
pub async fn other_holders(db: impl PgExecutor<'_>, grant: &Grant) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from grants
         where account_id = $1 and principal_type = $2 and principal_name = $3 and resource_arn = $4
           and target_account_id is not distinct from $6
           and grant_id <> $5 and holds_attachment and status in ('active', 'revoking')",
    )
    .bind(&grant.account_id)
    .bind(&grant.principal_type)
    .bind(&grant.principal_name)
    .bind(&grant.resource_arn)
    .bind(grant.grant_id)
    .bind(&grant.target_account_id)
    .fetch_one(db)
    .await
}

/// The ARN of the permission set made for a grant, in its policy's place.
pub async fn record_permission_set(db: impl PgExecutor<'_>, grant_id: Uuid, arn: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update grants set policy_arn = $2 where grant_id = $1")
        .bind(grant_id)
        .bind(arn)
        .execute(db)
        .await
        .map(|_| ())
}

/// This installation's temporary permission sets in the integration's
/// inventory (named `jit-` and 28 hex digits, their description naming the
/// installation) that no live grant holds: their ARNs.
pub async fn orphaned_permission_sets(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    installation_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select r.arn from resources r
         where r.integration_id = $1 and r.type = 'permission_set' and r.name ~ '^jit-[0-9a-f]{28}$'
           and strpos(r.details ->> 'description', $2) > 0
           and not exists (select 1 from grants g
                           where g.policy_arn = r.arn and g.status in ('pending', 'active', 'revoking'))
         order by r.arn",
    )
    .bind(integration_id)
    .bind(installation_id.to_string())
    .fetch_all(db)
    .await
}

/// Room for one more permission set: those in the integration's Identity
/// Center instance (the inventory's, but jit-iam's temporary ones, plus those
/// live grants hold or are making), and those provisioned to the account of
/// the resource given by id or ARN (likewise).
pub async fn permission_set_room(
    db: impl PgExecutor<'_>,
    integration_id: Uuid,
    resource_id: Option<Uuid>,
    resource_arn: Option<&str>,
) -> Result<PermissionSetRoom, sqlx::Error> {
    let (in_instance, in_account): (i64, i64) = sqlx::query_as(
        "with target as (
             select account_id from resources
             where integration_id = $1 and (resource_id = $2 or arn = $3) limit 1),
         inventoried as (
             select details from resources
             where integration_id = $1 and type = 'permission_set' and name !~ '^jit-[0-9a-f]{28}$'),
         temporary as (
             select account_id from grants
             where integration_id = $1 and status in ('pending', 'active', 'revoking')
               and principal_type in ('identity_center_user', 'identity_center_group')
               and resource_type in ('ec2_instance', 's3_bucket', 'iam_role'))
         select (select count(*) from inventoried) + (select count(*) from temporary),
                (select count(*) from inventoried where details -> 'account_ids' ? (select account_id from target))
                + (select count(*) from temporary where account_id = (select account_id from target))",
    )
    .bind(integration_id)
    .bind(resource_id)
    .bind(resource_arn)
    .fetch_one(db)
    .await?;
    Ok(PermissionSetRoom { in_instance: in_instance as usize, in_account: in_account as usize })
}

/// Removes integrations being deleted whose last grant is revoked; returns how many.
pub async fn finish_integration_deletions(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let deleted: i64 = sqlx::query_scalar(&format!(
        "with deleted as (
             delete from integrations i
             where status = 'deleting'
               and not exists (select 1 from grants g
                               where g.integration_id = i.integration_id and g.status in ('pending', 'active', 'revoking'))
             returning 1),
              changed as ({MARK_CHANGED} where exists (select 1 from deleted))
         select count(*) from deleted"
    ))
    .fetch_one(db)
    .await?;
    Ok(deleted as u64)
}

/// What the metrics gauges show, for the whole database. Each count reads an
/// index over live rows only (`grants_by_status`, `grants_due`,
/// `sync_runs_claimable`): its cost follows the work in progress, not history.
pub struct Gauges {
    /// Live grants (pending, active, revoking) by status; finished ones are not counted.
    pub by_status: Vec<(String, i64)>,
    pub grants_due: i64,
    pub syncs_queued: i64,
    /// Grants being revoked whose last try failed (`revoke_failing` in the API).
    pub revoke_failing: i64,
}

pub async fn gauges(db: &sqlx::PgPool) -> Result<Gauges, sqlx::Error> {
    let by_status = sqlx::query_as(
        "select status, count(*) from grants where status in ('pending', 'active', 'revoking') group by status",
    )
    .fetch_all(db)
    .await?;
    let (grants_due, syncs_queued, revoke_failing): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from grants
                 where next_run_at <= now() and (lease_expires_at is null or lease_expires_at < now())),
                (select count(*) from sync_runs where status = 'queued'),
                (select count(*) from grants where status = 'revoking' and last_error is not null)",
    )
    .fetch_one(db)
    .await?;
    Ok(Gauges { by_status, grants_due, syncs_queued, revoke_failing })
}
