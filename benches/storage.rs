//! The storage benchmark: Postgres bytes per grant lifecycle (the grant, its
//! events, its webhook messages, deliveries and attempts, its audit event)
//! before and after pruning, and 100,000 lifecycles over two simulated years
//! at the default retention staying under a stated bound.
//!
//! Lifecycles are written straight into Postgres, ten rounds of 10,000 by
//! `generate_series`, each shaped as the service writes them
//! (benches/storage_lifecycle.json, read from a real run). Round `r` happens
//! 73 days after round `r - 1`: its rows are dated so, and pruning runs with
//! the service's own statements and each retention moved back by the same
//! offset, so that it sees the round's time as "now". After pruning, a plain
//! VACUUM stands for autovacuum: deleted rows' space is reused, not returned.
//!
//!   scripts/bench storage    (report in bench-results/storage.json)

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use common::{round3, BenchDb, POSTGRES};
use jit_iam::storage::retention::{Prune, GRANT_EVENTS, WEBHOOK_DELIVERIES, WEBHOOK_MESSAGES};

const ROUNDS: i32 = 10;
const PER_ROUND: i32 = 10_000;
/// Simulated days between two rounds: 100,000 lifecycles over two years (137 a day).
const ROUND_DAYS: i32 = 73;
const DAY: Duration = Duration::from_secs(86_400);
/// The defaults of JIT_IAM_RETAIN_GRANT_EVENTS and JIT_IAM_RETAIN_WEBHOOK_DELIVERIES.
const RETAIN_GRANT_EVENTS_DAYS: u32 = 365;
const RETAIN_WEBHOOK_DELIVERIES_DAYS: u32 = 30;
/// The pruning job's batch.
const BATCH: i64 = 1000;
/// The bound stated for 100,000 lifecycles at the default retention.
const BOUND_BYTES: i64 = 600 * 1024 * 1024;
const TABLES: [&str; 6] =
    ["grants", "grant_events", "webhook_messages", "webhook_deliveries", "webhook_attempts", "audit_events"];

fn main() {
    let report = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run());
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

/// One round's lifecycles, ending `days_ago` days before now; how many of each row.
const INSERT_ROUND: &str = r#"
with lc as materialized (
    select uuid_generate_v7() as grant_id, uuid_generate_v7() as m1, uuid_generate_v7() as m2,
           uuid_generate_v7() as d1, uuid_generate_v7() as d2, g,
           now() - make_interval(days => $2) - make_interval(days => $3) * (1 - g::float8 / $4) as t
    from generate_series(1, $4) g),
template as (select $1::jsonb as shape),
grants as (
    insert into grants
    select (jsonb_populate_record(null::grants, shape->'grant' || jsonb_build_object(
        'grant_id', lc.grant_id, 'integration_id', null, 'request_id', 'bench-' || lc.grant_id,
        'policy_name', 'jit-iam-' || lc.grant_id,
        'policy_arn', 'arn:aws:iam::863860782750:policy/jit-iam/jit-iam-' || lc.grant_id,
        'created_at', lc.t, 'activated_at', lc.t, 'expires_at', lc.t + interval '10 min',
        'finished_at', lc.t + interval '10 min', 'updated_at', lc.t + interval '10 min'))).*
    from lc, template
    returning 1),
events as (
    insert into grant_events (grant_id, kind, from_status, to_status, operation, target, outcome,
                              aws_request_id, error_code, message, actor, attempts, created_at)
    select lc.grant_id, (e).kind, (e).from_status, (e).to_status, (e).operation, (e).target, (e).outcome,
           (e).aws_request_id, (e).error_code, (e).message, (e).actor, (e).attempts,
           lc.t + case when x.ord > 5 then interval '10 min' else interval '0' end
    from lc, template, jsonb_array_elements(shape->'events') with ordinality x(event, ord),
         lateral (select jsonb_populate_record(null::grant_events, x.event) as e) p
    returning 1),
messages as (
    insert into webhook_messages (message_id, event_type, occurred_at, grant_id, grant_row)
    select lc.m1, 'grant.activated', lc.t, lc.grant_id,
           shape->'grant' || jsonb_build_object('grant_id', lc.grant_id, 'status', 'active', 'finished_at', null)
    from lc, template
    union all
    select lc.m2, 'grant.revoked', lc.t + interval '10 min', lc.grant_id,
           shape->'grant' || jsonb_build_object('grant_id', lc.grant_id)
    from lc, template
    returning 1),
endpoint as (select endpoint_id from webhook_endpoints limit 1),
deliveries as (
    insert into webhook_deliveries (delivery_id, endpoint_id, message_id, status, attempts, next_attempt_at,
                                    created_at, finished_at)
    select lc.d1, endpoint.endpoint_id, lc.m1, 'succeeded', 1, null::timestamptz, lc.t, lc.t + interval '80 ms'
    from lc, endpoint
    union all
    select lc.d2, endpoint.endpoint_id, lc.m2, 'succeeded', 1, null, lc.t + interval '10 min',
           lc.t + interval '10 min 40 ms'
    from lc, endpoint
    returning delivery_id, finished_at),
attempts as (
    insert into webhook_attempts (delivery_id, attempt, attempted_at, duration_ms, http_status, error, response_body)
    select d.delivery_id, 1, d.finished_at, (a).duration_ms, (a).http_status, (a).error, (a).response_body
    from deliveries d, template, lateral (select jsonb_populate_record(null::webhook_attempts, shape->'attempt') as a) p
    returning 1),
-- grant.submitted, its changes the submitted grant's fields (before: null)
audit as (
    insert into audit_events (event_id, occurred_at, actor, role, request_id, action, target_type, target_id, changes)
    select uuid_generate_v7(), lc.t, 'portal', 'portal', 'req-' || lc.grant_id, 'grant.submitted', 'grant',
           lc.grant_id, changes.changes
    from lc, (select jsonb_object_agg(key, jsonb_build_object('before', null, 'after', value)) as changes
              from template, jsonb_each(shape->'grant') where value <> 'null') changes
    returning 1)
select (select count(*) from grants), (select count(*) from events), (select count(*) from messages),
       (select count(*) from attempts), (select count(*) from audit)
"#;

async fn run() -> Value {
    let started = Instant::now();
    let db = BenchDb::new("jit_iam_bench_storage");
    let admin = PgPoolOptions::new().max_connections(1).connect(&format!("{POSTGRES}/postgres")).await.unwrap();
    sqlx::query(&format!("create database \"{}\"", db.name)).execute(&admin).await.unwrap();
    let pool = db.pool().await;
    jit_iam::storage::migrate(&pool).await.unwrap();
    sqlx::query("insert into webhook_endpoints (url, secret) values ('https://portal.example.com/hooks', $1)")
        .bind(vec![7u8; 32])
        .execute(&pool)
        .await
        .unwrap();
    let shape: Value = serde_json::from_str(include_str!("storage_lifecycle.json")).unwrap();

    let mut rounds = Vec::new();
    let mut before_pruning_per_lifecycle = 0.0;
    for round in 1..=ROUNDS {
        let days_ago = (ROUNDS - round) * ROUND_DAYS;
        let inserting = Instant::now();
        let counts: (i64, i64, i64, i64, i64) = sqlx::query_as(INSERT_ROUND)
            .bind(&shape)
            .bind(days_ago)
            .bind(ROUND_DAYS)
            .bind(PER_ROUND)
            .fetch_one(&pool)
            .await
            .unwrap();
        let insert_seconds = inserting.elapsed().as_secs_f64();
        let before = sizes(&pool).await;
        if round == 1 {
            // Nothing pruned yet: what a lifecycle costs without retention.
            before_pruning_per_lifecycle = total(&before) as f64 / f64::from(PER_ROUND);
        }
        // The round's "now" is `days_ago` days back: every retention is moved back as much.
        let offset = DAY * days_ago as u32;
        let pruning = Instant::now();
        let mut pruned = serde_json::Map::new();
        for (kind, days) in [
            (GRANT_EVENTS, RETAIN_GRANT_EVENTS_DAYS),
            (WEBHOOK_DELIVERIES, RETAIN_WEBHOOK_DELIVERIES_DAYS),
            (WEBHOOK_MESSAGES, RETAIN_WEBHOOK_DELIVERIES_DAYS),
        ] {
            for (table, rows) in prune(&pool, kind, DAY * days + offset).await {
                pruned.insert(table, json!(rows));
            }
        }
        let prune_seconds = pruning.elapsed().as_secs_f64();
        sqlx::query(&format!("vacuum (analyze) {}", TABLES.join(", "))).execute(&pool).await.unwrap();
        let after = sizes(&pool).await;
        let lifecycles = round * PER_ROUND;
        eprintln!(
            "  round {round}: {lifecycles} lifecycles, {:.1} MB before pruning, {:.1} MB after \
             (insert {insert_seconds:.1}s, prune {prune_seconds:.1}s)",
            mb(total(&before)),
            mb(total(&after))
        );
        rounds.push(json!({
            "lifecycles": lifecycles,
            "simulated_day": round * ROUND_DAYS,
            "rows_inserted": {"grants": counts.0, "grant_events": counts.1, "webhook_messages": counts.2,
                              "webhook_attempts": counts.3, "audit_events": counts.4},
            "rows_pruned": pruned,
            "bytes_before_pruning": total(&before),
            "bytes_after_pruning": total(&after),
            "bytes_after_pruning_by_table": after,
            "insert_seconds": round3(insert_seconds),
            "prune_seconds": round3(prune_seconds),
        }));
    }
    let final_bytes = rounds.last().unwrap()["bytes_after_pruning"].as_i64().unwrap();
    let lifecycles = ROUNDS * PER_ROUND;

    // What a lifecycle keeps once all of it that can be pruned is: its grant and its audit event.
    sqlx::query(&format!("vacuum full {}", TABLES.join(", "))).execute(&pool).await.unwrap();
    let compact = sizes(&pool).await;
    let kept = compact["grants"].as_i64().unwrap() + compact["audit_events"].as_i64().unwrap();
    let without_pruning = before_pruning_per_lifecycle * f64::from(lifecycles);
    json!({
        "lifecycle": "an s3_bucket read grant activated then revoked: 1 grant, 9 events, 2 webhook messages, \
                      2 deliveries and 2 attempts (one endpoint), 1 audit event",
        "lifecycles": lifecycles,
        "simulated_days": ROUNDS * ROUND_DAYS,
        "retention_days": {"grant_events": RETAIN_GRANT_EVENTS_DAYS, "webhook_deliveries": RETAIN_WEBHOOK_DELIVERIES_DAYS},
        "bytes_per_lifecycle_before_pruning": before_pruning_per_lifecycle.round(),
        "bytes_per_lifecycle_after_pruning": (kept as f64 / f64::from(lifecycles)).round(),
        "bytes_without_pruning": without_pruning.round(),
        "bytes_with_pruning": final_bytes,
        "bytes_by_table_with_pruning_compacted": compact,
        "bound_bytes": BOUND_BYTES,
        "within_bound": final_bytes <= BOUND_BYTES,
        "rounds": rounds,
        "seconds": round3(started.elapsed().as_secs_f64()),
    })
}

/// Prunes `kind` batch after batch until one comes back short, as the job does.
async fn prune(pool: &PgPool, kind: Prune, retain: Duration) -> Vec<(String, i64)> {
    let mut totals: Vec<(String, i64)> = Vec::new();
    loop {
        let batch = kind.batch(pool, retain, BATCH).await.unwrap();
        let full = batch.iter().any(|(table, rows)| table == kind.table && *rows >= BATCH);
        for (table, rows) in batch {
            match totals.iter_mut().find(|(t, _)| *t == table) {
                Some((_, sum)) => *sum += rows,
                None => totals.push((table, rows)),
            }
        }
        if !full {
            return totals;
        }
    }
}

async fn sizes(pool: &PgPool) -> Value {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select relname::text, pg_total_relation_size(oid) from pg_class
         where relkind = 'r' and relname::text = any($1) order by relname",
    )
    .bind(TABLES.map(String::from).to_vec())
    .fetch_all(pool)
    .await
    .unwrap();
    Value::Object(rows.into_iter().map(|(table, bytes)| (table, json!(bytes))).collect())
}

fn total(sizes: &Value) -> i64 {
    sizes.as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum()
}

fn mb(bytes: i64) -> f64 {
    bytes as f64 / 1_048_576.0
}
