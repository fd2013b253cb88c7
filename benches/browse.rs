//! Browse benchmark (`scripts/bench browse`).
//!
//! An organization of 1,000 member accounts with 1,000 resources each
//! (1,000,000), loaded in bulk with SQL exactly as a sync stores it (the
//! accounts, the run's per-account records, the resources with their tags and
//! principal details, the inventory version bumped), then under wrk with 64
//! keep-alive connections:
//! 1. `GET /v1/resources?type=iam_role&tag=env:prod&limit=100` as configured
//!    (pages cached per inventory version);
//! 2. the same on a second replica of the database with the page cache off,
//!    where every request reads Postgres;
//! 3. name searches (`q=`) on that replica, one matching a handful of
//!    resources, one matching tens of thousands;
//!
//! with the CPU each request cost jit-iam and Postgres, and the plans Postgres
//! chose (EXPLAIN ANALYZE of each page's query).
//!
//! Prints the JSON report on stdout, progress on stderr.
//! Knobs (for trying it out quickly): JIT_IAM_BENCH_SCALE (default 1: the
//! issue's 1,000,000 resources), JIT_IAM_BENCH_WRK_SECONDS (default 20).

mod common;

use std::time::Instant;

use common::{round3, wrk, Moto, Service};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

const ROOT_ACCOUNT: &str = "111122223333";
const ACCOUNTS: i64 = 1000;
const RESOURCES_PER_ACCOUNT: i64 = 1000;
const BROWSE_PATH: &str = "/v1/resources?type=iam_role&tag=env:prod&limit=100";
/// A name search matching a few resources, and one matching 1 in 15.
const SEARCHES: [(&str, &str); 2] =
    [("few_matches", "/v1/resources?q=role-12345&limit=100"), ("many_matches", "/v1/resources?q=eu-west-1&limit=100")];
/// No scheduled sync during the run: it would find the loaded accounts gone from moto.
const SYNC_INTERVAL: (&str, &str) = ("JIT_IAM_SYNC_INTERVAL", "24h");
const GOAL_CACHED_RPS: f64 = 15_000.0;
const GOAL_UNCACHED_RPS: f64 = 3_000.0;
const GOAL_UNCACHED_P99_MS: f64 = 25.0;
const GOAL_SEARCH_P99_MS: f64 = 50.0;

fn main() {
    common::self_check_wrk_parser();
    let scale: f64 = std::env::var("JIT_IAM_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let wrk_seconds: u32 = std::env::var("JIT_IAM_BENCH_WRK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let accounts = ((ACCOUNTS as f64 * scale).round() as i64).max(1);
    // Children are spawned from this thread: they die with it (PR_SET_PDEATHSIG).
    let moto = Moto::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let report = runtime.block_on(run(&moto, accounts, wrk_seconds));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

async fn run(moto: &Moto, accounts: i64, wrk_seconds: u32) -> Value {
    eprintln!("==> organization {ROOT_ACCOUNT} (no members in moto), first sync");
    let root = moto.account(ROOT_ACCOUNT).await;
    aws_sdk_organizations::Client::new(&root)
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("CreateOrganization");
    let service = Service::start(moto, &[SYNC_INTERVAL]).await;
    let integration_id = create_integration(&service).await;

    eprintln!("==> loading {accounts} accounts x {RESOURCES_PER_ACCOUNT} resources with SQL");
    let db = service.db.pool().await;
    let loading = Instant::now();
    let sync_id = load(&db, &integration_id, accounts).await;
    let load_seconds = loading.elapsed().as_secs_f64();
    let stored: i64 = sqlx::query_scalar("select count(*) from resources").fetch_one(&db).await.unwrap();
    let matching: i64 = sqlx::query_scalar(
        "select count(*) from resources where offered and type = 'iam_role' and tags @> '{\"env\":\"prod\"}'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let table_mb: f64 = sqlx::query_scalar("select pg_total_relation_size('resources')::float8 / 1048576")
        .fetch_one(&db)
        .await
        .unwrap();
    eprintln!("    {stored} resources in {load_seconds:.1}s (sync {sync_id}), {matching} match the filter");

    let page = service.get(BROWSE_PATH).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(100), "the browse page should hold 100 items: {page}");
    let plans = json!({
        "browse": explain(&db, "type = 'iam_role' and tags @> '{\"env\":\"prod\"}'").await,
        "few_matches": explain(&db, &search_condition("role-12345")).await,
        "many_matches": explain(&db, &search_condition("eu-west-1")).await,
    });
    db.close().await;

    eprintln!("==> browse, pages cached (the default)");
    let cached = load_path(&service, BROWSE_PATH, wrk_seconds).await;
    let cached_meets = cached["requests_per_second"].as_f64().unwrap_or(0.0) >= GOAL_CACHED_RPS;
    let uncached_replica = Service::start(
        moto,
        &[("DATABASE_URL", service.db.url.as_str()), ("JIT_IAM_BROWSE_CACHE_MB", "0"), SYNC_INTERVAL],
    )
    .await;
    eprintln!("==> browse, page cache off (JIT_IAM_BROWSE_CACHE_MB=0)");
    let uncached = load_path(&uncached_replica, BROWSE_PATH, wrk_seconds).await;
    let uncached_meets = uncached["requests_per_second"].as_f64().unwrap_or(0.0) >= GOAL_UNCACHED_RPS
        && uncached["p99_ms"].as_f64().unwrap_or(f64::INFINITY) < GOAL_UNCACHED_P99_MS;
    let mut searches = serde_json::Map::new();
    for (name, path) in SEARCHES {
        eprintln!("==> name search, page cache off: {path}");
        let matched = uncached_replica.get(path).await["items"].as_array().map(Vec::len).unwrap_or(0);
        let mut measured = load_path(&uncached_replica, path, wrk_seconds).await;
        let meets = measured["p99_ms"].as_f64().unwrap_or(f64::INFINITY) < GOAL_SEARCH_P99_MS;
        measured["items_on_page"] = json!(matched);
        measured["meets_goal"] = json!(meets);
        searches.insert(name.to_string(), measured);
    }
    let (peak_rss, _) = service.memory_mb();
    let (replica_peak_rss, _) = uncached_replica.memory_mb();

    json!({
        "resources": stored,
        "accounts": accounts,
        "matching_filter": matching,
        "resources_table_mb": round3(table_mb),
        "load_seconds": round3(load_seconds),
        "path": BROWSE_PATH,
        "cached": {
            "measured": cached,
            "goal": {"requests_per_second": GOAL_CACHED_RPS},
            "meets_goal": cached_meets,
        },
        "uncached": {
            "measured": uncached,
            "goal": {"requests_per_second": GOAL_UNCACHED_RPS, "p99_ms_below": GOAL_UNCACHED_P99_MS},
            "meets_goal": uncached_meets,
        },
        "name_search": {
            "note": "page cache off: every search reads Postgres",
            "measured": searches,
            "goal": {"p99_ms_below": GOAL_SEARCH_P99_MS},
        },
        "plans": plans,
        "service_peak_rss_mb": {"cached": round3(peak_rss), "uncached": round3(replica_peak_rss)},
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
    })
}

/// An organization integration whose first sync finds the root account only.
async fn create_integration(service: &Service) -> String {
    let posted = Instant::now();
    let created = service
        .call(
            Method::POST,
            "/v1/integrations",
            Some(json!({
                "name": "bench",
                "connection": "organization",
                "root_account": {
                    "account_id": ROOT_ACCOUNT,
                    "access_role_arn": format!("arn:aws:iam::{ROOT_ACCOUNT}:role/jit-iam-access"),
                    "external_id": "bench-external-id",
                    "region": "us-east-1",
                },
                "options": {"regions": ["us-east-1", "eu-west-1", "ap-southeast-2"], "member_role_name": "jit-iam-access"},
            })),
            201,
        )
        .await;
    let integration_id = created["id"].as_str().expect("integration id").to_string();
    let syncs = service.get(&format!("/v1/integrations/{integration_id}/syncs")).await;
    let sync_id = syncs["items"][0]["id"].as_str().expect("the created sync").to_string();
    let (run, _) = service.wait_for_sync(&integration_id, &sync_id, posted).await;
    assert_eq!(run["status"], "succeeded", "first sync: {run:#}\n{}", service.recent_logs());
    integration_id
}

/// Stores `accounts` member accounts of 1,000 resources each as the first
/// sync's: the rows `accounts`, `sync_run_accounts` and `resources` a sync
/// writes (`storage::accounts`, `storage::syncs`, `storage::resources`), the
/// inventory version bumped in the same transaction. Every resource is
/// offered (the integration has no tag filter). Within an account, rows come
/// in no particular type order, as a sync upserts them (from a hash map);
/// types, tags and regions come from independent bits of a hash.
async fn load(db: &PgPool, integration_id: &str, accounts: i64) -> String {
    let integration_id: uuid::Uuid = integration_id.parse().unwrap();
    let mut tx = db.begin().await.unwrap();
    let sync_id: uuid::Uuid =
        sqlx::query_scalar("select sync_id from sync_runs where integration_id = $1 order by sync_id limit 1")
            .bind(integration_id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    sqlx::query(
        "insert into accounts (integration_id, account_id, name, status, is_root, last_sync_id, last_sync_status, last_synced_at)
         select $1, (900000000000 + a)::text, format('member-%s', a), 'ACTIVE', false, $2, 'succeeded', now()
         from generate_series(0, $3 - 1) as a",
    )
    .bind(integration_id)
    .bind(sync_id)
    .bind(accounts)
    .execute(&mut *tx)
    .await
    .expect("insert accounts");
    sqlx::query(
        "insert into sync_run_accounts (sync_id, account_id, status, counts, aws_calls, started_at, finished_at)
         select $1, (900000000000 + a)::text, 'succeeded', '{}', 0, now(), now()
         from generate_series(0, $2 - 1) as a",
    )
    .bind(sync_id)
    .bind(accounts)
    .execute(&mut *tx)
    .await
    .expect("insert sync_run_accounts");
    sqlx::query(
        "insert into resources (integration_id, account_id, type, arn, name, region, tags, offered, details, sync_id, synced_at)
         select $1, s.account_id, s.type,
                case s.type
                    when 'ec2_instance' then format('arn:aws:ec2:%s:%s:instance/i-%s', s.region, s.account_id, lpad(to_hex(s.g), 17, '0'))
                    when 's3_bucket' then format('arn:aws:s3:::bucket-%s-%s', s.account_id, s.g)
                    else format('arn:aws:iam::%s:%s/%s', s.account_id, split_part(s.type, '_', 2), s.name)
                end,
                s.name, s.region,
                case when s.type = 'iam_group' then '{}'::jsonb  -- IAM groups carry no tags
                     else jsonb_build_object('env', (array['prod', 'dev'])[1 + s.h / 10 % 2],
                                             'team', (array['payments', 'search', 'platform', 'data'])[1 + s.h / 20 % 4])
                          || case when s.type = 'ec2_instance' then jsonb_build_object('Name', s.name) else '{}' end
                end,
                true,
                case when s.type in ('iam_user', 'iam_role') then
                    jsonb_build_object('attached_policy_arns', '[]'::jsonb, 'group_names', '[]'::jsonb,
                                       'unique_id', case s.type when 'iam_user' then 'AIDA' else 'AROA' end
                                                    || upper(lpad(to_hex(s.g), 17, '0')))
                     else '{}' end,
                $2, now()
         from (select g, h, t.type, (900000000000 + g / $4)::text as account_id,
                      case t.type
                          when 'ec2_instance' then format('web-%s', g)
                          when 's3_bucket' then format('bucket-%s-%s', 900000000000 + g / $4, g)
                          else format('%s-%s', split_part(t.type, '_', 2), g)
                      end as name,
                      case when t.type in ('ec2_instance', 's3_bucket')
                           then (array['us-east-1', 'eu-west-1', 'ap-southeast-2'])[1 + h / 80 % 3] end as region
               from (select g, hashint8(g)::bigint + 2147483648 as h from generate_series(0, $3 * $4 - 1) as g) as hashed,
                    lateral (select (array['iam_role', 'iam_role', 'iam_role', 'iam_policy', 'iam_policy', 'iam_group',
                                           's3_bucket', 'ec2_instance', 'ec2_instance', 'iam_user'])[1 + h % 10] as type) as t) as s",
    )
    .bind(integration_id)
    .bind(sync_id)
    .bind(accounts)
    .bind(RESOURCES_PER_ACCOUNT)
    .execute(&mut *tx)
    .await
    .expect("insert resources");
    sqlx::query(jit_iam::storage::resources::MARK_CHANGED).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    // Settled, as the table is between syncs: autovacuum would otherwise run during the measurement.
    sqlx::query("vacuum analyze resources").execute(db).await.unwrap();
    sync_id.to_string()
}

/// The condition a `q=` search adds (storage::resources::browse).
fn search_condition(query: &str) -> String {
    format!("(name ilike '%{query}%' or arn ilike '%{query}%')")
}

/// EXPLAIN ANALYZE of a page's query with `condition`: its plan, in short,
/// and where its time went.
async fn explain(db: &PgPool, condition: &str) -> Value {
    let sql = format!(
        "explain (analyze, buffers, format json)
         select resource_id, integration_id, account_id, type, arn, name, region, tags, synced_at
         from resources where offered and {condition} order by resource_id limit 101"
    );
    // The second run, buffers warm, as under load.
    let _: Value = sqlx::query_scalar(&sql).fetch_one(db).await.unwrap();
    let explained: Value = sqlx::query_scalar(&sql).fetch_one(db).await.unwrap();
    let top = &explained[0];
    let mut nodes = Vec::new();
    let mut node = Some(&top["Plan"]);
    while let Some(plan) = node {
        let mut name = plan["Node Type"].as_str().unwrap_or_default().to_string();
        if let Some(index) = plan["Index Name"].as_str() {
            name += &format!(" using {index}");
        }
        nodes.push(name);
        node = plan["Plans"].get(0);
    }
    json!({
        "condition": condition,
        "plan": nodes.join(" > "),
        "planning_ms": top["Planning Time"],
        "execution_ms": top["Execution Time"],
        "rows_removed_by_filter": top["Plan"]["Plans"][0]["Rows Removed by Filter"],
        "shared_buffers_hit": top["Plan"]["Shared Hit Blocks"],
    })
}

/// wrk on `service`'s `path`: one connection first (latency without
/// queueing), then 64 connections; with the CPU time it cost.
async fn load_path(service: &Service, path: &str, wrk_seconds: u32) -> Value {
    let url = format!("{}{path}", service.url);
    let single = wrk(&url, &service.token, 1, 1, 5).await;
    eprintln!("==> wrk -t2 -c64 -d{wrk_seconds}s {path}");
    let load_before = common::load_average();
    let cpu_before = (service.cpu_seconds(), common::cpu_seconds_of("postgres"), common::machine_cpu_ticks());
    let result = wrk(&url, &service.token, 2, 64, wrk_seconds).await;
    let (service_cpu, postgres_cpu) =
        (service.cpu_seconds() - cpu_before.0, common::cpu_seconds_of("postgres") - cpu_before.1);
    let machine = common::machine_cpu_ticks();
    let machine_busy = (machine.0 - cpu_before.2 .0) / (machine.1 - cpu_before.2 .1);
    let per_request_ms = |seconds: f64| round3(seconds * 1000.0 / result.requests.max(1) as f64);
    eprintln!("{}", result.raw);
    let percentile = |p: &str| result.latency_ms.get(p).map(|v| round3(*v));
    json!({
        "tool": format!("wrk -t2 -c64 -d{wrk_seconds}s --latency"),
        "path": path,
        "requests": result.requests,
        "requests_per_second": round3(result.requests_per_second),
        "p50_ms": percentile("50"),
        "p90_ms": percentile("90"),
        "p99_ms": percentile("99"),
        "non_2xx": result.non_2xx,
        "cpu_ms_per_request": {
            "service": per_request_ms(service_cpu),
            "postgres": per_request_ms(postgres_cpu),
            "note": "postgres: every process named postgres, so other databases' work counts too",
        },
        "machine_cpu_busy_fraction": round3(machine_busy),
        "load_average_before": load_before,
        "single_connection": {
            "tool": "wrk -t1 -c1 -d5s --latency",
            "requests_per_second": round3(single.requests_per_second),
            "p50_ms": single.latency_ms.get("50").map(|v| round3(*v)),
            "p99_ms": single.latency_ms.get("99").map(|v| round3(*v)),
        },
        "socket_errors": (!result.socket_errors.is_empty()).then_some(result.socket_errors),
    })
}
