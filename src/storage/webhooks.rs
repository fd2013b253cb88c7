//! Queries on `webhook_endpoints`, `webhook_messages`, `webhook_deliveries`
//! and `webhook_attempts`. Events are recorded by triggers (migration 0011),
//! in the transaction of the change that causes them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::run_queue::interval;
use crate::domain::webhook::{Delivery, DeliveryAttempt, DeliveryStatus, EventType};
use crate::webhooks::signing::WebhookSecret;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EndpointRow {
    pub endpoint_id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: Vec<u8>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str = "endpoint_id, url, description, event_types, enabled, disabled_reason, secret, \
                                previous_secret_expires_at, failing_since, created_at, updated_at";

fn type_names(types: Option<&[EventType]>) -> Option<Vec<&'static str>> {
    types.map(|types| types.iter().map(|t| t.as_str()).collect())
}

pub async fn insert_endpoint(
    db: impl PgExecutor<'_>,
    url: &str,
    description: Option<&str>,
    event_types: Option<&[EventType]>,
    secret: &WebhookSecret,
) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "insert into webhook_endpoints (url, description, event_types, secret) values ($1, $2, $3, $4)
         returning {ENDPOINT_COLUMNS}"
    ))
    .bind(url)
    .bind(description)
    .bind(type_names(event_types))
    .bind(&secret.0)
    .fetch_one(db)
    .await
}

/// In creation order, after `after` when given.
pub async fn list_endpoints(
    db: impl PgExecutor<'_>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {ENDPOINT_COLUMNS} from webhook_endpoints
         where $1::uuid is null or endpoint_id > $1 order by endpoint_id limit $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn get_endpoint(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!("select {ENDPOINT_COLUMNS} from webhook_endpoints where endpoint_id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn get_endpoint_for_update(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!("select {ENDPOINT_COLUMNS} from webhook_endpoints where endpoint_id = $1 for update"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Stores what a PATCH may change; waiting deliveries are woken when it is enabled.
pub async fn update_endpoint(db: impl PgExecutor<'_>, row: &EndpointRow) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "with updated as (
             update webhook_endpoints
             set url = $2, description = $3, event_types = $4, enabled = $5, disabled_reason = $6, failing_since = $7
             where endpoint_id = $1
             returning {ENDPOINT_COLUMNS})
         select updated.*, pg_notify('jit_iam_work', 'webhook') from updated"
    ))
    .bind(row.endpoint_id)
    .bind(&row.url)
    .bind(&row.description)
    .bind(&row.event_types)
    .bind(row.enabled)
    .bind(&row.disabled_reason)
    .bind(row.failing_since)
    .fetch_one(db)
    .await
}

/// Deletes the endpoint with its deliveries.
pub async fn delete_endpoint(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("delete from webhook_endpoints where endpoint_id = $1").bind(id).execute(db).await.map(|_| ())
}

/// Replaces the secret; the old one signs too for `overlap`.
pub async fn rotate_secret(
    db: impl PgExecutor<'_>,
    id: Uuid,
    secret: &WebhookSecret,
    overlap: Duration,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "update webhook_endpoints
         set previous_secret = secret, previous_secret_expires_at = now() + $3, secret = $2
         where endpoint_id = $1
         returning {ENDPOINT_COLUMNS}"
    ))
    .bind(id)
    .bind(&secret.0)
    .bind(interval(overlap))
    .fetch_optional(db)
    .await
}

/// Queues a `webhook.test` event for one endpoint alone; returns its delivery's id.
pub async fn enqueue_test(db: impl PgExecutor<'_>, endpoint_id: Uuid, data: &Value) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "with message as (
             insert into webhook_messages (event_type, data) values ('webhook.test', $2) returning message_id),
         delivery as (
             insert into webhook_deliveries (endpoint_id, message_id)
             select $1, message_id from message returning delivery_id)
         select delivery_id, pg_notify('jit_iam_work', 'webhook') from delivery",
    )
    .bind(endpoint_id)
    .bind(Json(data))
    .fetch_one(db)
    .await
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    delivery_id: Uuid,
    endpoint_id: Uuid,
    message_id: Uuid,
    event_type: String,
    grant_id: Option<Uuid>,
    status: String,
    occurred_at: DateTime<Utc>,
    next_attempt_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    attempts: Json<Vec<DeliveryAttempt>>,
}

impl DeliveryRow {
    fn view(self) -> Delivery {
        Delivery {
            id: self.delivery_id,
            endpoint_id: self.endpoint_id,
            message_id: self.message_id,
            event_type: EventType::parse(&self.event_type).expect("written by jit-iam"),
            grant_id: self.grant_id,
            status: DeliveryStatus::parse(&self.status).expect("checked by the table"),
            occurred_at: self.occurred_at,
            next_attempt_at: self.next_attempt_at,
            finished_at: self.finished_at,
            attempts: self.attempts.0,
        }
    }
}

const DELIVERY_SELECT: &str = "
    select d.delivery_id, d.endpoint_id, d.message_id, m.event_type, m.grant_id, d.status, m.occurred_at,
           case when d.status = 'pending' then d.next_attempt_at end as next_attempt_at, d.finished_at,
           coalesce((select json_agg(json_build_object(
                                'attempt', a.attempt, 'attempted_at', a.attempted_at, 'duration_ms', a.duration_ms,
                                'http_status', a.http_status, 'error', a.error, 'response_body', a.response_body)
                             order by a.attempt)
                     from webhook_attempts a where a.delivery_id = d.delivery_id), '[]') as attempts
    from webhook_deliveries d join webhook_messages m on m.message_id = d.message_id";

/// An endpoint's deliveries, newest first, before `before` when given.
pub async fn list_deliveries(
    db: impl PgExecutor<'_>,
    endpoint_id: Uuid,
    status: Option<DeliveryStatus>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "{DELIVERY_SELECT}
         where d.endpoint_id = $1 and ($2::text is null or d.status = $2) and ($3::uuid is null or d.delivery_id < $3)
         order by d.delivery_id desc limit $4"
    ))
    .bind(endpoint_id)
    .bind(status.map(DeliveryStatus::as_str))
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(DeliveryRow::view).collect())
}

pub async fn get_delivery(
    db: impl PgExecutor<'_>,
    endpoint_id: Uuid,
    delivery_id: Uuid,
) -> Result<Option<Delivery>, sqlx::Error> {
    let row: Option<DeliveryRow> =
        sqlx::query_as(&format!("{DELIVERY_SELECT} where d.endpoint_id = $1 and d.delivery_id = $2"))
            .bind(endpoint_id)
            .bind(delivery_id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(DeliveryRow::view))
}

/// What a manual retry found.
pub enum RetryOutcome {
    Queued,
    NotFound,
    /// An attempt is being made right now.
    InFlight,
}

/// Makes a delivery due now, whatever its status (a succeeded one is sent again).
pub async fn retry_delivery(
    db: impl PgExecutor<'_>,
    endpoint_id: Uuid,
    delivery_id: Uuid,
) -> Result<RetryOutcome, sqlx::Error> {
    let found: Option<bool> = sqlx::query_scalar(
        "with found as (
             select delivery_id, lease_owner is not null and lease_expires_at > now() as in_flight
             from webhook_deliveries where endpoint_id = $1 and delivery_id = $2 for update),
         queued as (
             update webhook_deliveries d set status = 'pending', next_attempt_at = now(), finished_at = null
             from found where d.delivery_id = found.delivery_id and not found.in_flight
             returning 1)
         select found.in_flight, pg_notify('jit_iam_work', 'webhook') from found",
    )
    .bind(endpoint_id)
    .bind(delivery_id)
    .fetch_optional(db)
    .await?;
    Ok(match found {
        None => RetryOutcome::NotFound,
        Some(true) => RetryOutcome::InFlight,
        Some(false) => RetryOutcome::Queued,
    })
}

/// A delivery claimed for one attempt, with what sending it takes.
#[derive(Debug, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub message_id: Uuid,
    /// This attempt's number, from 1.
    pub attempts: i32,
    pub url: String,
    pub secret: Vec<u8>,
    /// The secret before the last rotation, while it still signs.
    pub previous_secret: Option<Vec<u8>>,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub event_sequence: i64,
    pub grant_row: Option<Json<Value>>,
    pub data: Option<Json<Value>>,
}

/// Claims up to `limit` due deliveries for one attempt each, oldest due first,
/// skipping those another replica holds. An endpoint gets at most
/// `per_endpoint` in flight here, counting `busy` (endpoint, deliveries in
/// flight already): a slow endpoint cannot take every slot.
pub async fn claim(
    db: impl PgExecutor<'_>,
    owner: &str,
    lease: Duration,
    busy: &[(Uuid, i32)],
    per_endpoint: i32,
    limit: i64,
) -> Result<Vec<ClaimedDelivery>, sqlx::Error> {
    sqlx::query_as(
        "with busy as (select * from unnest($3::uuid[], $4::int[]) as b(endpoint_id, in_flight)),
         candidates as (
             select d.delivery_id, d.endpoint_id, d.next_attempt_at
             from webhook_deliveries d join webhook_endpoints e on e.endpoint_id = d.endpoint_id
             where d.status = 'pending' and d.next_attempt_at <= now() and e.enabled
               and (d.lease_owner is null or d.lease_expires_at < now())
               and d.endpoint_id not in (select endpoint_id from busy where in_flight >= $5)
             order by d.next_attempt_at
             limit $6 * 4
             for update of d skip locked),
         chosen as (
             select c.delivery_id
             from (select c.*, row_number() over (partition by c.endpoint_id order by c.next_attempt_at) as rank
                   from candidates c) c
             left join busy b on b.endpoint_id = c.endpoint_id
             where c.rank <= $5 - coalesce(b.in_flight, 0)
             order by c.next_attempt_at
             limit $6),
         claimed as (
             update webhook_deliveries d
             set lease_owner = $1, lease_expires_at = now() + $2, attempts = d.attempts + 1
             from chosen where d.delivery_id = chosen.delivery_id
             returning d.delivery_id, d.endpoint_id, d.message_id, d.attempts)
         select c.delivery_id, c.endpoint_id, c.message_id, c.attempts, e.url, e.secret,
                case when e.previous_secret_expires_at > now() then e.previous_secret end as previous_secret,
                m.event_type, m.occurred_at, m.event_sequence, m.grant_row, m.data
         from claimed c
         join webhook_endpoints e on e.endpoint_id = c.endpoint_id
         join webhook_messages m on m.message_id = c.message_id",
    )
    .bind(owner)
    .bind(interval(lease))
    .bind(busy.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(busy.iter().map(|(_, n)| *n).collect::<Vec<_>>())
    .bind(per_endpoint)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// How long until a delivery to an endpoint other than `saturated` may be due
/// (a retry, or a lease another replica let lapse); None when nothing waits.
pub async fn next_due_in(db: impl PgExecutor<'_>, saturated: &[Uuid]) -> Result<Option<Duration>, sqlx::Error> {
    let seconds: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from min(greatest(d.next_attempt_at, coalesce(d.lease_expires_at, d.next_attempt_at)))
                                   - now())::float8
         from webhook_deliveries d join webhook_endpoints e on e.endpoint_id = d.endpoint_id
         where d.status = 'pending' and e.enabled and d.endpoint_id <> all($1)",
    )
    .bind(saturated)
    .fetch_one(db)
    .await?;
    Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// What one attempt came to.
#[derive(Debug)]
pub struct AttemptRecord {
    pub delivery_id: Uuid,
    /// The attempt's number, as claimed: recorded only while the delivery is
    /// still leased to this owner for this attempt.
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub response_body: Option<String>,
    pub succeeded: bool,
    /// The receiver answered 410: the endpoint is disabled.
    pub gone: bool,
    /// When to try again; None: the delivery has succeeded or failed for good.
    pub retry_in: Option<Duration>,
}

impl AttemptRecord {
    fn status(&self) -> DeliveryStatus {
        match (self.succeeded, self.retry_in) {
            (true, _) => DeliveryStatus::Succeeded,
            (false, Some(_)) => DeliveryStatus::Pending,
            (false, None) => DeliveryStatus::Failed,
        }
    }
}

/// Records attempts and their consequences in one statement (one commit for
/// the batch): each attempt row, each delivery's next state, and the health
/// of their endpoints (disabled on 410, or once every attempt has failed for
/// `disable_after`), taking the attempts in the order given. An attempt is
/// recorded only if its delivery is still leased to `owner` for that attempt
/// (fencing: a replica whose lease ran out and was claimed again records
/// nothing, the new claimer retries: at least once). Returns the deliveries
/// recorded.
pub async fn finish_attempts(
    db: impl PgExecutor<'_>,
    owner: &str,
    records: &[AttemptRecord],
    disable_after: Duration,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "with attempt_in as (
             select * from unnest($2::uuid[], $3::int[], $4::text[], $5::bigint[], $6::timestamptz[], $7::int[],
                                  $8::int[], $9::text[], $10::text[], $11::bool[], $12::bool[])
                 with ordinality as r(delivery_id, attempt, status, retry_in_us, attempted_at, duration_ms,
                                      http_status, error, response_body, succeeded, gone, ord)),
         delivery as (
             update webhook_deliveries d
             set status = r.status,
                 next_attempt_at = case when r.status = 'pending' then now() + r.retry_in_us * interval '1 microsecond' end,
                 finished_at = case when r.status <> 'pending' then now() end, lease_owner = null, lease_expires_at = null
             from attempt_in r
             where d.delivery_id = r.delivery_id and d.lease_owner = $1 and d.attempts = r.attempt
             returning d.delivery_id, d.endpoint_id, r.attempt, r.succeeded, r.gone, r.ord),
         attempt as (
             insert into webhook_attempts (delivery_id, attempt, attempted_at, duration_ms, http_status, error,
                                           response_body)
             select r.delivery_id, r.attempt, r.attempted_at, r.duration_ms, r.http_status, r.error, r.response_body
             from attempt_in r join delivery using (delivery_id, attempt)
             on conflict do nothing),
         health as (
             select endpoint_id, bool_or(succeeded) as any_succeeded, bool_or(gone) as gone,
                    (array_agg(succeeded order by ord desc))[1] as last_succeeded
             from delivery group by endpoint_id),
         -- Only endpoints whose health changes are written (a success on a
         -- healthy endpoint writes nothing), locked in one order so that two
         -- replicas' batches never deadlock on them.
         changing as (
             select e.endpoint_id from webhook_endpoints e join health h using (endpoint_id)
             where h.gone or (h.last_succeeded and e.failing_since is not null)
                or (not h.last_succeeded and e.failing_since is null)
                or (h.any_succeeded and not h.last_succeeded)
                or (e.enabled and not h.any_succeeded and e.failing_since <= now() - $13)
             order by e.endpoint_id
             for update of e),
         endpoint as (
             update webhook_endpoints e
             set failing_since = case when h.last_succeeded then null
                                      when h.any_succeeded then now()
                                      else coalesce(e.failing_since, now()) end,
                 disabled_reason = case when not e.enabled then e.disabled_reason
                                        when h.gone then 'gone'
                                        when not h.any_succeeded and e.failing_since <= now() - $13 then 'failing' end,
                 enabled = e.enabled and not h.gone
                           and (h.any_succeeded or e.failing_since is null or e.failing_since > now() - $13)
             from changing c join health h using (endpoint_id)
             where e.endpoint_id = c.endpoint_id)
         select delivery_id from delivery",
    )
    .bind(owner)
    .bind(records.iter().map(|r| r.delivery_id).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.attempt).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.status().as_str()).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.retry_in.unwrap_or_default().as_micros() as i64).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.attempted_at).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.duration_ms).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.http_status).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.response_body.as_deref()).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.succeeded).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.gone).collect::<Vec<_>>())
    .bind(interval(disable_after))
    .fetch_all(db)
    .await
}

/// Marks active grants expiring within `notice` as noticed, once per expiry:
/// the grants trigger records `grant.expiring` for each. Returns how many.
pub async fn notice_expiring(db: impl PgExecutor<'_>, notice: Duration) -> Result<u64, sqlx::Error> {
    let marked = sqlx::query(
        "with due as (
             select grant_id from grants
             where status = 'active' and expires_at <= now() + $1 and expires_at > now()
               and expiry_notice_for is distinct from expires_at
             for update skip locked)
         update grants g set expiry_notice_for = g.expires_at
         from due where g.grant_id = due.grant_id",
    )
    .bind(interval(notice))
    .execute(db)
    .await?;
    Ok(marked.rows_affected())
}

/// How long until the next grant comes within `notice` of its expiry.
pub async fn next_expiry_notice_in(db: impl PgExecutor<'_>, notice: Duration) -> Result<Option<Duration>, sqlx::Error> {
    let seconds: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from min(expires_at) - $1 - now())::float8 from grants
         where status = 'active' and expires_at > now() and expiry_notice_for is distinct from expires_at",
    )
    .bind(interval(notice))
    .fetch_one(db)
    .await?;
    Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// Pending deliveries of enabled endpoints: due now, and waiting for a retry.
pub async fn queue_depth(db: impl PgExecutor<'_>) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select count(*) filter (where d.next_attempt_at <= now()), count(*) filter (where d.next_attempt_at > now())
         from webhook_deliveries d join webhook_endpoints e on e.endpoint_id = d.endpoint_id
         where d.status = 'pending' and e.enabled",
    )
    .fetch_one(db)
    .await
}
