//! Delivering webhooks, and noticing grants about to expire.
//!
//! Deliveries are claimed from Postgres with `FOR UPDATE SKIP LOCKED` and a
//! lease by every replica, woken by NOTIFY from the transaction that recorded
//! them; between wake-ups the loop sleeps until the next retry is due. One
//! endpoint holds at most a quarter of the slots, so a slow or dead receiver
//! never delays the others. Finished attempts are recorded by one task in
//! batches (one statement and commit for whatever finished meanwhile), and a
//! delivery's slot is free again only once its attempt is recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::pause;
use crate::api::views::webhook::{EventBody, GrantEventData};
use crate::app::AppState;
use crate::domain::grant::Grant;
use crate::domain::webhook::EventType;
use crate::storage;
use crate::storage::webhooks::{AttemptRecord, ClaimedDelivery};
use crate::webhooks::retry::retry_delay;
use crate::webhooks::sender::{AttemptOutcome, ATTEMPT_TIMEOUT};
use crate::webhooks::signing::WebhookSecret;

/// Without any wake-up, the loops look for work at least this often (a missed NOTIFY while reconnecting).
const LONGEST_SLEEP: Duration = Duration::from_secs(300);

/// An attempt made, waiting to be recorded; its slot is freed once it is.
struct Finished {
    record: AttemptRecord,
    endpoint_id: Uuid,
    slot: OwnedSemaphorePermit,
}

/// Deliveries in flight (attempted or being recorded) in this process, per endpoint.
#[derive(Default)]
struct InFlight {
    by_endpoint: Mutex<HashMap<Uuid, i32>>,
    /// Deliveries were recorded: slots are free, endpoints may have room again.
    finished: Notify,
}

impl InFlight {
    fn snapshot(&self) -> Vec<(Uuid, i32)> {
        self.by_endpoint.lock().expect("not poisoned").iter().map(|(id, n)| (*id, *n)).collect()
    }

    fn change(&self, endpoint_id: Uuid, by: i32) {
        let mut map = self.by_endpoint.lock().expect("not poisoned");
        let count = map.entry(endpoint_id).or_default();
        *count += by;
        if *count <= 0 {
            map.remove(&endpoint_id);
        }
    }
}

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let concurrency = state.config.webhooks.webhook_concurrency as usize;
    let per_endpoint = (concurrency / 4).max(1) as i32;
    let slots = Arc::new(Semaphore::new(concurrency));
    let in_flight = Arc::new(InFlight::default());
    let (finished_tx, finished_rx) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record(state.clone(), finished_rx, concurrency, in_flight.clone()));
    // A claimed delivery is another replica's to retry once this passes
    // without its attempt recorded: longer than any attempt can take.
    let lease = state.config.worker.worker_lease + ATTEMPT_TIMEOUT;
    while !shutdown.is_cancelled() {
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = in_flight.finished.notified() => continue,
            }
        }
        let busy = in_flight.snapshot();
        let claimed =
            storage::webhooks::claim(&state.webhook_db, &state.instance_id, lease, &busy, per_endpoint, free as i64)
                .await;
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim webhook deliveries; retrying");
                pause(&shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        let filled = claimed.len() == free;
        for delivery in claimed {
            let slot = slots.clone().try_acquire_owned().expect("claimed no more than the free slots");
            in_flight.change(delivery.endpoint_id, 1);
            tokio::spawn(deliver(state.clone(), delivery, slot, finished_tx.clone()));
        }
        if filled {
            continue;
        }
        let saturated: Vec<Uuid> =
            in_flight.snapshot().into_iter().filter(|(_, n)| *n >= per_endpoint).map(|(id, _)| id).collect();
        let next = match storage::webhooks::next_due_in(&state.webhook_db, &saturated).await {
            Ok(next) => next.unwrap_or(LONGEST_SLEEP).min(LONGEST_SLEEP),
            Err(_) => Duration::from_secs(1),
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = state.wake.webhooks.notified() => {}
            _ = in_flight.finished.notified() => {}
            _ = tokio::time::sleep(next) => {}
        }
    }
    // Attempts under way may finish and be recorded (the recorder ends once
    // the last is); the rest are retried by whichever replica finds their
    // lease run out.
    drop(finished_tx);
    let _ = tokio::time::timeout(ATTEMPT_TIMEOUT, recorder).await;
}

/// Records finished attempts in batches: whatever finished while the last
/// batch was being written goes into the next, so a batch never waits to fill.
async fn record(
    state: AppState,
    mut finished: mpsc::UnboundedReceiver<Finished>,
    concurrency: usize,
    in_flight: Arc<InFlight>,
) {
    let disable_after = state.config.webhooks.webhook_disable_after;
    let mut batch = Vec::with_capacity(concurrency);
    while finished.recv_many(&mut batch, concurrency).await > 0 {
        let (records, held): (Vec<AttemptRecord>, Vec<(Uuid, OwnedSemaphorePermit)>) =
            batch.drain(..).map(|f| (f.record, (f.endpoint_id, f.slot))).unzip();
        match storage::webhooks::finish_attempts(&state.webhook_db, &state.instance_id, &records, disable_after).await {
            Ok(recorded) if recorded.len() < records.len() => {
                for lost in records.iter().filter(|r| !recorded.contains(&r.delivery_id)) {
                    tracing::warn!(delivery_id = %lost.delivery_id, "webhook lease lost; another replica retries");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(deliveries = records.len(), error = %e,
                                     "cannot record webhook attempts; they are retried when their leases run out"),
        }
        for (endpoint_id, slot) in held {
            in_flight.change(endpoint_id, -1);
            drop(slot);
        }
        in_flight.finished.notify_one();
    }
}

/// One attempt of one delivery, handed to the recorder with its slot.
async fn deliver(
    state: AppState,
    delivery: ClaimedDelivery,
    slot: OwnedSemaphorePermit,
    finished: mpsc::UnboundedSender<Finished>,
) {
    let config = &state.config.webhooks;
    let attempted_at = Utc::now();
    let (outcome, duration) = match render(&delivery) {
        Ok(body) => {
            let mut secrets = vec![WebhookSecret(delivery.secret.clone())];
            secrets.extend(delivery.previous_secret.clone().map(WebhookSecret));
            let attempt =
                state.webhook_sender.send(&delivery.url, &delivery.message_id.to_string(), &body, &secrets).await;
            (attempt.outcome, attempt.duration)
        }
        Err(error) => (AttemptOutcome::NoAnswer { error }, Duration::ZERO),
    };
    let succeeded = outcome.succeeded();
    let (http_status, error, response_body, retry_after) = match outcome {
        AttemptOutcome::Answered { status, body, retry_after } => (Some(status as i32), None, Some(body), retry_after),
        AttemptOutcome::NoAnswer { error } => (None, Some(error), None, None),
    };
    let gone = http_status == Some(410);
    let retry_in = if succeeded || gone {
        None
    } else {
        retry_delay(&config.webhook_retry_schedule.0, delivery.attempts).map(|step| retry_after.unwrap_or(step))
    };
    let outcome_label = match (succeeded, retry_in) {
        (true, _) => "succeeded",
        (false, Some(_)) => "retrying",
        (false, None) => "failed",
    };
    metrics::counter!("jit_iam_webhook_deliveries_total", "outcome" => outcome_label).increment(1);
    if succeeded {
        let lag = (Utc::now() - delivery.occurred_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("jit_iam_webhook_delivery_lag_seconds").record(lag);
    } else {
        tracing::info!(delivery_id = %delivery.delivery_id, attempt = delivery.attempts, status = ?http_status,
                       error = ?error, outcome = outcome_label, "webhook attempt failed");
    }
    let record = AttemptRecord {
        delivery_id: delivery.delivery_id,
        attempt: delivery.attempts,
        attempted_at,
        duration_ms: duration.as_millis().min(i32::MAX as u128) as i32,
        http_status,
        error,
        response_body,
        succeeded,
        gone,
        retry_in,
    };
    // The recorder outlives every sender.
    let _ = finished.send(Finished { record, endpoint_id: delivery.endpoint_id, slot });
}

/// The body: `{"type", "timestamp", "data"}`; for grant events `data` is the
/// grant as `GET /v1/grants/{id}` renders it, from the row kept at the event.
fn render(delivery: &ClaimedDelivery) -> Result<Vec<u8>, String> {
    let event_type =
        EventType::parse(&delivery.event_type).ok_or_else(|| format!("unknown event type {}", delivery.event_type))?;
    let timestamp = delivery.occurred_at;
    let body = match (&delivery.grant_row, &delivery.data) {
        (Some(row), _) => {
            let row: Grant = serde_json::from_value(row.0.clone()).map_err(|e| format!("unreadable grant: {e}"))?;
            let data = GrantEventData { grant: row.view(), event_sequence: delivery.event_sequence };
            serde_json::to_vec(&EventBody { event_type, timestamp, data })
        }
        (None, Some(data)) => serde_json::to_vec(&EventBody { event_type, timestamp, data: &data.0 }),
        (None, None) => return Err("the event has no data".into()),
    };
    body.map_err(|e| e.to_string())
}

/// Records `grant.expiring` for grants coming within `JIT_IAM_EXPIRY_NOTICE`
/// of their expiry: at that moment, or when a change (activation, extension)
/// brings one nearer.
pub async fn notice_expiring(state: AppState, shutdown: CancellationToken) {
    let notice = state.config.webhooks.expiry_notice;
    while !shutdown.is_cancelled() {
        let marked = match storage::webhooks::notice_expiring(&state.webhook_db, notice).await {
            Ok(marked) => marked,
            Err(e) => {
                tracing::warn!(error = %e, "cannot record expiry notices; retrying");
                pause(&shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        let next = match storage::webhooks::next_expiry_notice_in(&state.webhook_db, notice).await {
            // A grant due now but locked by someone else: look again shortly, not at once.
            Ok(Some(next)) if next.is_zero() && marked == 0 => Duration::from_secs(1),
            Ok(next) => next.unwrap_or(LONGEST_SLEEP).min(LONGEST_SLEEP),
            Err(_) => Duration::from_secs(1),
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = state.wake.expiry_notices.notified() => {}
            _ = tokio::time::sleep(next) => {}
        }
    }
}
