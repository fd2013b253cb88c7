//! The metrics benchmark: what a `/metrics` scrape costs as the grants table
//! grows from empty to 1,000,000 rows (1,000 of them live, the rest finished,
//! inserted straight into Postgres), what one refresh of the database gauges
//! costs, and whether `/readyz` and the API keep answering under a flood of
//! scrapes.
//!
//!   scripts/bench metrics   (report in bench-results/metrics.json)
//!
//! `JIT_IAM_BENCH_METRICS_SIZES` (default `0,100000,1000000`) sets the sizes.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;

use common::{round3, wrk, Moto, Service};

/// Grants that are pending, active or revoking at every size but 0: history grows, live work does not.
const LIVE: i64 = 1000;
/// Refreshes of the gauges timed at each size.
const REFRESHES: usize = 20;
const FLOOD_CONNECTIONS: u32 = 256;
const FLOOD_SECONDS: u64 = 10;

fn main() {
    let moto = Moto::start();
    let report = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run(&moto));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

fn sizes() -> Vec<i64> {
    std::env::var("JIT_IAM_BENCH_METRICS_SIZES")
        .unwrap_or_else(|_| "0,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("JIT_IAM_BENCH_METRICS_SIZES: numbers separated by commas"))
        .collect()
}

/// Adds grants up to `total`: the first `LIVE` active, the others revoked
/// or failed, shaped as the service stores them.
async fn grow_to(db: &PgPool, from: i64, total: i64) {
    sqlx::query(
        "insert into grants (grant_id, account_id, resource_id, resource_type, resource_arn, resource_name,
                             access_level, principal_type, principal_name, principal_arn, request_id,
                             request_fingerprint, approved_by, requested_by, status, revoke_reason,
                             expires_at, next_run_at, activated_at, finished_at)
         select gen_random_uuid(), '111122223333', gen_random_uuid(), 's3_bucket',
                'arn:aws:s3:::bucket-' || i, 'bucket-' || i, 'read', 'iam_user', 'user-' || (i % 500),
                'arn:aws:iam::111122223333:user/user-' || (i % 500), 'bench-' || i, repeat('f', 64),
                'approver@example.com', 'bench',
                case when i <= $3 then 'active' when i % 50 = 0 then 'failed' else 'revoked' end,
                case when i <= $3 or i % 50 = 0 then null else 'expired' end,
                now() + case when i <= $3 then interval '1 day' else - interval '1 day' end,
                case when i <= $3 then now() + interval '1 day' end,
                now() - interval '2 days', case when i > $3 then now() - interval '1 day' end
         from generate_series($1 + 1, $2) i",
    )
    .bind(from)
    .bind(total)
    .bind(LIVE)
    .execute(db)
    .await
    .expect("insert grants");
    // What autovacuum does to a table of that size: visibility map and statistics.
    sqlx::query("vacuum analyze grants").execute(db).await.expect("vacuum analyze grants");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// p50 and p99 of `samples` (milliseconds).
fn summary(mut samples: Vec<f64>) -> Value {
    samples.sort_by(f64::total_cmp);
    json!({"requests": samples.len(), "p50_ms": round3(percentile(&samples, 0.5)),
           "p99_ms": round3(percentile(&samples, 0.99)), "max_ms": round3(*samples.last().unwrap())})
}

/// One refresh of the database gauges, as the service's task runs it, `REFRESHES` times.
async fn refresh_ms(db: &PgPool) -> Value {
    let mut samples = Vec::new();
    for _ in 0..REFRESHES {
        let started = Instant::now();
        jit_iam::storage::grants::gauges(db).await.expect("gauges");
        jit_iam::storage::webhooks::queue_depth(db).await.expect("webhook queue depth");
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    summary(samples)
}

/// Latencies of `path` asked one after the other for `duration`; the statuses other than 200.
async fn sequential(service: &Service, path: &str, duration: Duration) -> (Value, usize) {
    let (mut samples, mut refused) = (Vec::new(), 0);
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let started = Instant::now();
        let response = service.client.get(format!("{}{path}", service.url)).bearer_auth(&service.token).send().await;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        if !response.is_ok_and(|r| r.status() == 200) {
            refused += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (summary(samples), refused)
}

/// `/readyz` and a grant list page, each asked in turn for the duration.
async fn probes(service: &Service, duration: Duration) -> Value {
    let ((readyz, readyz_refused), (api, api_refused)) =
        tokio::join!(sequential(service, "/readyz", duration), sequential(service, "/v1/grants?limit=10", duration));
    json!({"readyz": readyz, "readyz_not_200": readyz_refused, "api_list_grants": api, "api_not_200": api_refused})
}

async fn run(moto: &Moto) -> Value {
    let service = Service::start(moto, &[]).await;
    let db = service.db.pool().await;
    let mut by_size = Vec::new();
    let mut grown = 0;
    for size in sizes() {
        eprintln!("==> {size} grants");
        let started = Instant::now();
        grow_to(&db, grown, size).await;
        grown = size;
        let insert_seconds = started.elapsed().as_secs_f64();
        let refresh = refresh_ms(&db).await;
        let scrape = wrk(&format!("{}/metrics", service.url), &service.token, 2, 8, 5).await;
        assert_eq!(scrape.non_2xx, 0, "{}", scrape.raw);
        by_size.push(json!({
            "grants": size,
            "insert_and_vacuum_seconds": round3(insert_seconds),
            "scrape": {"connections": 8, "requests_per_second": round3(scrape.requests_per_second),
                       "p50_ms": scrape.latency_ms.get("50"), "p99_ms": scrape.latency_ms.get("99")},
            "gauge_refresh": refresh,
        }));
    }

    eprintln!("==> /readyz and the API, alone then under a flood of /metrics ({FLOOD_CONNECTIONS} connections)");
    let quiet = probes(&service, Duration::from_secs(FLOOD_SECONDS)).await;
    let url = format!("{}/metrics", service.url);
    let (flood, flooded) = tokio::join!(wrk(&url, &service.token, 2, FLOOD_CONNECTIONS, FLOOD_SECONDS as u32), async {
        // Let wrk open its connections first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        probes(&service, Duration::from_secs(FLOOD_SECONDS - 1)).await
    });

    let first = &by_size[0]["scrape"]["p99_ms"];
    let last = &by_size[by_size.len() - 1]["scrape"]["p99_ms"];
    json!({
        "machine": {"cores": std::thread::available_parallelism().map_or(0, |n| n.get())},
        "live_grants_per_size": LIVE,
        "sizes": by_size,
        "goal": "scrape p99 at the largest size within 1.5x of the empty table's; /readyz and the API answer 200 throughout the flood",
        "scrape_p99_ms_smallest_largest": [first, last],
        "flood": {
            "connections": FLOOD_CONNECTIONS, "seconds": FLOOD_SECONDS,
            "scrapes_per_second": round3(flood.requests_per_second), "scrape_non_2xx": flood.non_2xx,
            "scrape_p99_ms": flood.latency_ms.get("99"),
            "without_flood": quiet, "during_flood": flooded,
        },
        "service_cpu_seconds": round3(service.cpu_seconds()),
    })
}
