//! The expiry benchmark: 1,000 grants expiring in the same second in one
//! account whose IAM writes AWS throttles at 20 per second (the proxy of
//! `benches/common/latency.rs` answering `Throttling` over that rate, per
//! account, as IAM does), while grants to another account are made one at a time.
//! - the throttled account: every grant revoked, none failed, the last within
//!   1.15x of the ideal (its 2,000 writes at 20 per second: 100 s), at most 1.2
//!   attempts per write that went through (the proxy counts both);
//! - the other account: its grants' latency (`POST /v1/grants?wait=` to
//!   `active`) while the backlog drains, against the same before the expiry.
//!
//!   scripts/bench expiry      (report in bench-results/expiry.json)
//!   JIT_IAM_BENCH_AWS_LATENCY_MS=40 scripts/bench expiry   (every AWS call 40 ms later:
//!                             bench-results/expiry-40ms.json)

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use aws_sdk_iam::Client as Iam;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use common::latency::{LatencyProxy, Throttle};
use common::{
    aws_latency, aws_latency_ms, load_average, percentile, round3, run_bounded, summary, wait_status, Moto, Service,
};

const EXPIRING_GRANTS: usize = 1000;
const WRITES_PER_SECOND: f64 = 20.0;
/// Each revocation is two IAM writes: DetachUserPolicy, DeletePolicy.
const WRITES_PER_REVOCATION: usize = 2;
const USERS: usize = 200;
const OTHER_USERS: usize = 50;
const OTHER_GRANT_SECONDS: u64 = 5;
/// Grants to the other account measured before the expiry (the quiet baseline).
const QUIET_GRANTS: usize = 50;

fn main() {
    let moto = Moto::start();
    let report = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run(&moto));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

/// An account with `users` users and a bucket; answers the bucket's name.
async fn seed(moto: &Moto, account_id: &str, users: usize) -> String {
    let iam = Iam::new(&moto.account(account_id).await);
    let creates = (0..users).map(|i| {
        let iam = iam.clone();
        async move { iam.create_user().user_name(format!("user-{i:03}")).send().await.map(|_| ()) }
    });
    run_bounded(&format!("users of {account_id}"), 8, creates.collect()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.account(account_id).await).force_path_style(true).build(),
    );
    let bucket = format!("bench-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    bucket
}

/// The id of the one bucket jit-iam found in the integration.
async fn bucket_of(service: &Service, integration: &str) -> String {
    let page = service.get(&format!("/v1/resources?integration_id={integration}&type=s3_bucket")).await;
    page["items"][0]["id"].as_str().unwrap().to_string()
}

fn grant(integration: &str, bucket: &str, user: usize, expiry: Value) -> Value {
    let mut body = json!({
        "integration_id": integration, "resource_id": bucket, "access_level": "read",
        "principal": {"type": "iam_user", "name": format!("user-{user:03}")},
        "request_id": uuid::Uuid::new_v4().to_string(), "approved_by": "bench"
    });
    match expiry {
        Value::String(at) => body["expires_at"] = json!(at),
        seconds => body["duration_seconds"] = seconds,
    }
    body
}

/// One grant to the other account, submitted and waited for; its latency in ms.
async fn timed_grant(service: &Service, integration: &str, bucket: &str, i: usize) -> f64 {
    let started = Instant::now();
    // Short grants: the other account's users stay far from IAM's 10 policies each.
    let body = grant(integration, bucket, i % OTHER_USERS, json!(OTHER_GRANT_SECONDS));
    let answer = service.call(reqwest::Method::POST, "/v1/grants?wait=30", Some(body), 202).await;
    assert_eq!(answer["status"], "active", "{answer}");
    started.elapsed().as_secs_f64() * 1000.0
}

async fn run(raw: &Moto) -> Value {
    let aws_latency_ms = aws_latency_ms();
    eprintln!("==> AWS latency per call: {aws_latency_ms} ms");
    // Always through the proxy, which throttles once the grants are active.
    let proxy = LatencyProxy::start(&raw.endpoint, aws_latency(aws_latency_ms)).await;
    let moto = &raw.through(&proxy.endpoint);
    let throttled_account = format!("4{:011}", rand::random_range(0..100_000_000_000u64));
    let other_account = format!("5{:011}", rand::random_range(0..100_000_000_000u64));
    seed(moto, &throttled_account, USERS).await;
    seed(moto, &other_account, OTHER_USERS).await;

    let service = Service::start(moto, &[("JIT_IAM_MIN_GRANT", "1s")]).await;
    let throttled_integration = service.connect_single_account(&throttled_account).await;
    let other_integration = service.connect_single_account(&other_account).await;
    let throttled_bucket = bucket_of(&service, &throttled_integration).await;
    let other_bucket = bucket_of(&service, &other_integration).await;

    eprintln!("==> {EXPIRING_GRANTS} grants in {throttled_account}, expiring in the same second");
    let expires_at: DateTime<Utc> = Utc::now() + chrono::Duration::seconds(90);
    let submissions = (0..EXPIRING_GRANTS).map(|i| {
        let service = &service;
        let body = grant(&throttled_integration, &throttled_bucket, i % USERS, json!(expires_at.to_rfc3339()));
        async move {
            let answer = service.call(reqwest::Method::POST, "/v1/grants", Some(body), 202).await;
            Ok::<_, ()>(answer["id"].as_str().unwrap().to_string())
        }
    });
    let expiring = run_bounded("submissions", 32, submissions.collect()).await;
    wait_status(&service, &expiring, "active").await;
    assert!(Utc::now() < expires_at, "the grants were applied too late for the benchmark");

    eprintln!("==> {QUIET_GRANTS} grants in {other_account}, one at a time, before the expiry");
    let mut quiet = Vec::new();
    for i in 0..QUIET_GRANTS {
        quiet.push(timed_grant(&service, &other_integration, &other_bucket, i).await);
    }
    let throttle = Throttle {
        service: "iam".into(),
        writes_per_second: WRITES_PER_SECOND,
        accounts: vec![throttled_account.clone()],
    };
    proxy.set_throttle(Some(throttle));
    let (admitted_before, throttled_before) = (proxy.admitted(), proxy.throttled());
    let wait = (expires_at - Utc::now()).to_std().expect("the quiet grants ended after the expiry");
    eprintln!(
        "  waiting {:.0} s for {expires_at}; IAM writes of {throttled_account} throttled at {WRITES_PER_SECOND}/s",
        wait.as_secs_f64()
    );
    tokio::time::sleep(wait).await;

    eprintln!("==> the backlog drains; grants in {other_account} one at a time meanwhile");
    let drained = AtomicBool::new(false);
    let (finished, during) = futures::join!(
        async {
            // Panics if a grant failed.
            let finished = wait_status(&service, &expiring, "revoked").await;
            drained.store(true, Ordering::SeqCst);
            finished
        },
        async {
            let mut during = Vec::new();
            while !drained.load(Ordering::SeqCst) {
                during
                    .push(timed_grant(&service, &other_integration, &other_bucket, QUIET_GRANTS + during.len()).await);
            }
            during
        }
    );
    let writes = proxy.admitted() - admitted_before;
    let refused = proxy.throttled() - throttled_before;

    let mut lags: Vec<f64> = finished
        .iter()
        .map(|g| {
            let done: DateTime<Utc> = g["finished_at"].as_str().unwrap().parse().unwrap();
            (done - expires_at).num_milliseconds() as f64 / 1000.0
        })
        .collect();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let all_revoked_after = *lags.last().unwrap();
    let ideal = (EXPIRING_GRANTS * WRITES_PER_REVOCATION) as f64 / WRITES_PER_SECOND;
    let attempts_per_write = (writes + refused) as f64 / writes as f64;
    let (quiet, during) = (summary(quiet), summary(during));
    let ratio = |key: &str| round3(during[key].as_f64().unwrap() / quiet[key].as_f64().unwrap());
    json!({
        "aws_latency_per_call_ms": aws_latency_ms,
        "throttled_account": {
            "grants": EXPIRING_GRANTS,
            "iam_writes_per_second_allowed": WRITES_PER_SECOND,
            "revoked": finished.len(),
            "seconds_until_all_revoked": round3(all_revoked_after),
            "ideal_seconds": ideal,
            "ratio_to_ideal": round3(all_revoked_after / ideal),
            "goal_ratio_to_ideal": 1.15,
            "lag_p50_seconds": round3(percentile(&lags, 0.5)),
            "lag_p99_seconds": round3(percentile(&lags, 0.99)),
            "iam_writes_through": writes,
            "iam_writes_throttled": refused,
            "attempts_per_successful_write": round3(attempts_per_write),
            "goal_attempts_per_write": 1.2,
        },
        "other_account": {
            "grants_before_expiry": quiet,
            "grants_while_draining": during,
            "ratio_p50": ratio("p50_ms"),
            "ratio_p99": ratio("p99_ms"),
        },
        "service_settings": {"JIT_IAM_WORKER_CONCURRENCY": 16, "JIT_IAM_WORKER_ACCOUNT_CONCURRENCY": 12},
        "service_peak_rss_mb": round3(service.memory_mb().0),
        "service_cpu_seconds": round3(service.cpu_seconds()),
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "load_average_1m": round3(load_average())},
    })
}
