//! The webhooks benchmark, with two endpoints on one local receiver:
//! - lag from a committed grant transition to the receiver's 2xx, over 2,000
//!   transitions (1,000 grants activated, then revoked);
//! - throughput draining backlogs of 2,000 deliveries recorded at once (every
//!   grant changed by one SQL statement: made active again, then extended),
//!   with where the time goes: Postgres transactions per delivery (the worker
//!   runs no explicit transaction, so one per statement), CPU per delivery of
//!   the service, of Postgres and of the bench's receiver;
//! - lag at a controlled rate: 1,000 transitions a second for 5 s (10 grants
//!   extended by one statement every 10 ms), to one endpoint, then to two;
//! - a receiver down for 30 s (connections dropped) then back: every delivery
//!   arrives, none is lost.
//!
//!   scripts/bench webhooks    (report in bench-results/webhooks.json)

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_iam::Client as Iam;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use common::{cpu_seconds_of, load_average, process_cpu_seconds, round3, run_bounded, Moto, Service};

const USERS: usize = 250;
const BUCKETS: usize = 4;
/// USERS x BUCKETS grants, each activated then revoked: 2,000 transitions.
const GRANTS: usize = USERS * BUCKETS;
const BACKLOG_ROUNDS: usize = 3;
/// The paced round: this many transitions every tick, for `PACED_FOR`.
const PACED_PER_SECOND: usize = 1_000;
const PACED_TICK: Duration = Duration::from_millis(10);
const PACED_FOR: Duration = Duration::from_secs(5);
const EXTEND_ALL: &str = "update grants set expires_at = expires_at + interval '1 second' where status = 'active'";
const DOWN_FOR: Duration = Duration::from_secs(30);
/// Retries close enough together for the outage test to end in minutes (the default starts 5s, 5m, ...).
const RETRY_SCHEDULE: &str = "5s,10s,20s,30s,1m,5m";

fn main() {
    let moto = Moto::start();
    let report = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run(&moto));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

/// One request as the receiver got it.
struct Arrival {
    at: SystemTime,
    /// The endpoint's path and the event's id: one delivery.
    delivery: (String, String),
    body: Bytes,
}

/// A receiver answering 204 at once, or, while `down`, closing every
/// connection (new or kept alive) without an answer.
#[derive(Clone, Default)]
struct Receiver {
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    async fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let receiver = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                if receiver.down.load(Ordering::SeqCst) {
                    drop(stream);
                    continue;
                }
                let receiver = receiver.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let receiver = receiver.clone();
                        async move {
                            if receiver.down.load(Ordering::SeqCst) {
                                return Err("down");
                            }
                            let webhook_id = request.headers()["webhook-id"].to_str().unwrap().to_string();
                            let path = request.uri().path().to_string();
                            let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let arrival = Arrival { at: SystemTime::now(), delivery: (path, webhook_id), body };
                            receiver.arrivals.lock().unwrap().push(arrival);
                            Ok(Response::builder().status(204).body(Full::new(Bytes::new())).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        url
    }

    fn count(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    async fn wait_for(&self, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.count() < count {
            assert!(Instant::now() < deadline, "{} of {count} deliveries arrived in {timeout:?}", self.count());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Takes what arrived so far.
    fn take(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.arrivals.lock().unwrap())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds from each event's `timestamp` (the commit of its change) to its arrival.
fn lags_ms(arrivals: &[Arrival]) -> Vec<f64> {
    let mut lags: Vec<f64> = arrivals
        .iter()
        .map(|a| {
            let body: Value = serde_json::from_slice(&a.body).unwrap();
            let at: DateTime<Utc> = body["timestamp"].as_str().unwrap().parse().unwrap();
            (DateTime::<Utc>::from(a.at) - at).num_microseconds().unwrap() as f64 / 1000.0
        })
        .collect();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    lags
}

/// Transactions committed in the service's database so far. Backends report
/// them within 10 s of going idle (Postgres 15), so read after a pause.
async fn commits(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("select xact_commit from pg_stat_database where datname = current_database()")
        .fetch_one(db)
        .await
        .unwrap()
}

/// CPU seconds so far: the service, every Postgres process, this bench (the receiver).
fn cpu(service: &Service) -> [f64; 3] {
    [service.cpu_seconds(), cpu_seconds_of("postgres"), process_cpu_seconds(std::process::id())]
}

async fn wait_finished(db: &sqlx::PgPool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 = sqlx::query_scalar("select count(*) from webhook_deliveries where status = 'pending'")
            .fetch_one(db)
            .await
            .unwrap();
        if pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{pending} deliveries still pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `PACED_PER_SECOND` transitions a second for `PACED_FOR` (grants extended
/// by one statement a tick), then the lag of every delivery they made.
async fn paced_lag(db: &sqlx::PgPool, receiver: &Receiver, grant_ids: &[uuid::Uuid], endpoints: usize) -> Value {
    let per_tick = PACED_PER_SECOND * PACED_TICK.as_millis() as usize / 1000;
    let ticks = (PACED_FOR.as_millis() / PACED_TICK.as_millis()) as usize;
    let mut interval = tokio::time::interval(PACED_TICK);
    let started = Instant::now();
    for tick in 0..ticks {
        interval.tick().await;
        let ids: Vec<uuid::Uuid> = (0..per_tick).map(|i| grant_ids[(tick * per_tick + i) % grant_ids.len()]).collect();
        sqlx::query("update grants set expires_at = expires_at + interval '1 second' where grant_id = any($1)")
            .bind(&ids)
            .execute(db)
            .await
            .unwrap();
    }
    let issued_in = started.elapsed().as_secs_f64();
    let transitions = ticks * per_tick;
    receiver.wait_for(transitions * endpoints, Duration::from_secs(120)).await;
    let lags = lags_ms(&receiver.take());
    json!({
        "transitions": transitions, "endpoints": endpoints, "deliveries": lags.len(),
        "transitions_per_second": round3(transitions as f64 / issued_in),
        "p50_ms": round3(percentile(&lags, 0.5)), "p99_ms": round3(percentile(&lags, 0.99)),
        "max_ms": round3(*lags.last().unwrap()), "goal_p99_ms": 100,
    })
}

async fn wait_all(service: &Service, ids: &[String], status: &str) {
    for id in ids {
        loop {
            let grant = service.get(&format!("/v1/grants/{id}")).await;
            if grant["status"] == status {
                break;
            }
            assert_ne!(grant["status"], "failed", "{grant}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn run(moto: &Moto) -> Value {
    let account_id = format!("5{:011}", rand::random_range(0..100_000_000_000u64));
    let account = moto.account(&account_id).await;
    let iam = Iam::new(&account);
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&account).force_path_style(true).build());
    eprintln!("==> seeding account {account_id}: {USERS} users, {BUCKETS} buckets");
    let users = (0..USERS).map(|i| {
        let iam = iam.clone();
        async move { iam.create_user().user_name(format!("user-{i:03}")).send().await.map(|_| ()) }
    });
    run_bounded("create users", 16, users.collect()).await;
    let buckets: Vec<String> = (0..BUCKETS).map(|b| format!("hooks-{account_id}-{b}")).collect();
    for bucket in &buckets {
        s3.create_bucket().bucket(bucket).send().await.expect("CreateBucket");
    }

    let service = Service::start(
        moto,
        &[
            ("JIT_IAM_WEBHOOK_ALLOW_HTTP", "true"),
            ("JIT_IAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
            ("JIT_IAM_WEBHOOK_RETRY_SCHEDULE", RETRY_SCHEDULE),
            ("JIT_IAM_RECONCILE_INTERVAL", "0"),
        ],
    )
    .await;
    let integration = service.connect_single_account(&account_id).await;
    let receiver = Receiver::default();
    let base = receiver.start().await;
    let types = json!(["grant.activated", "grant.revoked", "grant.extended"]);
    let mut endpoints = Vec::new();
    for path in ["portal", "audit"] {
        let body = json!({"url": format!("{base}/{path}"), "event_types": types});
        let endpoint = service.call(reqwest::Method::POST, "/v1/webhooks", Some(body), 201).await;
        endpoints.push(endpoint["id"].as_str().unwrap().to_string());
    }

    eprintln!("==> lag: {GRANTS} grants activated, then revoked, two endpoints");
    let submissions = (0..GRANTS).map(|i| {
        let service = &service;
        let body = json!({
            "integration_id": integration, "resource_arn": format!("arn:aws:s3:::{}", buckets[i % BUCKETS]),
            "access_level": "read", "principal": {"type": "iam_user", "name": format!("user-{:03}", i / BUCKETS)},
            "duration_seconds": 7200, "request_id": format!("bench-{i}"), "approved_by": "bench"
        });
        async move {
            let grant = service.call(reqwest::Method::POST, "/v1/grants", Some(body), 202).await;
            Ok::<_, String>(grant["id"].as_str().unwrap().to_string())
        }
    });
    let ids: Vec<String> = run_bounded("submit grants", 16, submissions.collect()).await;
    wait_all(&service, &ids, "active").await;
    let revocations = ids.iter().map(|id| {
        let service = &service;
        async move {
            service.call(reqwest::Method::POST, &format!("/v1/grants/{id}/revoke"), None, 202).await;
            Ok::<_, String>(())
        }
    });
    run_bounded("revoke grants", 16, revocations.collect()).await;
    wait_all(&service, &ids, "revoked").await;
    receiver.wait_for(4 * GRANTS, Duration::from_secs(60)).await;
    let transitions = receiver.take();
    let lags = lags_ms(&transitions);
    let lag = json!({
        "transitions": 2 * GRANTS, "deliveries": transitions.len(),
        "p50_ms": round3(percentile(&lags, 0.5)), "p99_ms": round3(percentile(&lags, 0.99)),
        "max_ms": round3(*lags.last().unwrap()), "goal_p99_ms": 250,
        "note": "transitions as fast as the API makes them, not at a controlled rate",
    });
    eprintln!("    {lag}");

    // Backlogs recorded by one statement each: every grant made active again
    // in the database alone (grant.activated), then extended twice.
    eprintln!("==> throughput: {BACKLOG_ROUNDS} backlogs of {GRANTS} events x 2 endpoints");
    let db = service.db.pool().await;
    let rounds = [
        "update grants set status = 'active', revoke_reason = null, finished_at = null, next_run_at = expires_at",
        EXTEND_ALL,
        EXTEND_ALL,
    ];
    let mut throughput = Vec::new();
    let (commits_before, cpu_before) = (commits(&db).await, cpu(&service));
    for statement in rounds {
        let started = SystemTime::now();
        sqlx::query(statement).execute(&db).await.unwrap();
        receiver.wait_for(2 * GRANTS, Duration::from_secs(120)).await;
        let arrivals = receiver.take();
        let last = arrivals.iter().map(|a| a.at).max().unwrap();
        let seconds = last.duration_since(started).unwrap().as_secs_f64();
        throughput.push(arrivals.len() as f64 / seconds);
    }
    wait_finished(&db).await;
    let cpu_after = cpu(&service);
    tokio::time::sleep(Duration::from_secs(11)).await;
    // Less the two statements of this function.
    let commits_during = commits(&db).await - commits_before - 2;
    let delivered = (BACKLOG_ROUNDS * 2 * GRANTS) as f64;
    let per_delivery_ms = |i: usize| round3((cpu_after[i] - cpu_before[i]) * 1000.0 / delivered);
    throughput.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let throughput = json!({
        "deliveries_per_round": 2 * GRANTS, "rounds": BACKLOG_ROUNDS,
        "median_per_second": round3(throughput[BACKLOG_ROUNDS / 2]), "goal_per_second": 2000,
        "per_second_by_round": throughput.iter().map(|t| round3(*t)).collect::<Vec<_>>(),
        "postgres_transactions_per_delivery": round3(commits_during as f64 / delivered),
        "cpu_ms_per_delivery": {
            "service": per_delivery_ms(0), "postgres": per_delivery_ms(1), "bench_and_receiver": per_delivery_ms(2),
        },
        "load_average_after": round3(load_average()),
    });
    eprintln!("    {throughput}");

    eprintln!("==> lag at {PACED_PER_SECOND} transitions/s for {PACED_FOR:?}: one endpoint, then two");
    let grant_ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.parse().unwrap()).collect();
    let audit = &endpoints[1];
    service.call(reqwest::Method::PATCH, &format!("/v1/webhooks/{audit}"), Some(json!({"enabled": false})), 200).await;
    let paced_one = paced_lag(&db, &receiver, &grant_ids, 1).await;
    eprintln!("    {paced_one}");
    service.call(reqwest::Method::PATCH, &format!("/v1/webhooks/{audit}"), Some(json!({"enabled": true})), 200).await;
    let paced_two = paced_lag(&db, &receiver, &grant_ids, 2).await;
    eprintln!("    {paced_two}");

    eprintln!("==> outage: the receiver drops every connection for {DOWN_FOR:?}");
    receiver.down.store(true, Ordering::SeqCst);
    let down_at = Instant::now();
    sqlx::query(EXTEND_ALL).execute(&db).await.unwrap();
    tokio::time::sleep(DOWN_FOR.saturating_sub(down_at.elapsed())).await;
    let arrived_while_down = receiver.count();
    receiver.down.store(false, Ordering::SeqCst);
    let back_at = Instant::now();
    receiver.wait_for(2 * GRANTS, Duration::from_secs(600)).await;
    let drained_after = back_at.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arrivals = receiver.take();
    let unique: HashSet<&(String, String)> = arrivals.iter().map(|a| &a.delivery).collect();
    let (failed, pending): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where status = 'failed'), count(*) filter (where status = 'pending') \
         from webhook_deliveries",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let attempts: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "select case when http_status is null then 'no answer' else http_status::text end, count(*) \
         from webhook_attempts group by 1",
    )
    .fetch_all(&db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let outage = json!({
        "deliveries": 2 * GRANTS, "down_seconds": DOWN_FOR.as_secs(), "retry_schedule": RETRY_SCHEDULE,
        "arrived_while_down": arrived_while_down, "distinct_arrived": unique.len(),
        "duplicates": arrivals.len() - unique.len(), "lost": 2 * GRANTS - unique.len(),
        "drained_seconds_after_back": round3(drained_after.as_secs_f64()),
        "deliveries_failed": failed, "deliveries_pending": pending, "attempts_by_answer": attempts,
    });
    eprintln!("    {outage}");
    json!({
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "lag": lag, "throughput": throughput,
        "lag_at_1000_transitions_per_second": {"one_endpoint": paced_one, "two_endpoints": paced_two},
        "outage": outage,
        "service_cpu_seconds": round3(service.cpu_seconds()),
    })
}
