//! Organization benchmark (`scripts/bench organization`): an organization of
//! JIT_IAM_BENCH_MEMBERS member accounts (default 2,000), each with a few
//! users, a group, a role and a bucket, reached through the latency proxy
//! with Organizations' calls throttled per account. Measures:
//! 1. the first sync (into an empty database) against the same calls made
//!    directly (jit-iam's own listing code in this process, nothing stored)
//!    at several account concurrencies, the best of which is the baseline;
//!    the AssumeRole calls of each (goal: one per account) and the service's
//!    peak RSS;
//! 2. a re-sync that finds nothing changed, against the same calls made
//!    directly again with cached credentials;
//! 3. browsing the organization's users (`GET /v1/resources?type=iam_user`,
//!    pages of 100, every page, one request at a time);
//! 4. where the time goes: calls moto served per second, and per operation
//!    the calls and their time through the proxy.
//!
//!   scripts/bench organization                                 (bench-results/organization.json)
//!   JIT_IAM_BENCH_AWS_LATENCY_MS=40 scripts/bench organization (bench-results/organization-40ms.json)
//!
//! Knobs: JIT_IAM_BENCH_MEMBERS (default 2000), JIT_IAM_BENCH_DIRECT_CONCURRENCIES
//! (account concurrencies the direct baseline tries, default 4,8,16), and
//! JIT_IAM_SYNC_CONCURRENCY, JIT_IAM_SYNC_ACCOUNT_CONCURRENCY given to the
//! service (default: the service's defaults).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};
use common::latency::{CallRate, LatencyProxy};
use common::{
    aws_calls_by_operation, calls_since, list_organization_directly, round3, run_bounded, summary, with_aws_latency,
    Moto, Service,
};
use futures::StreamExt;
use jit_iam::aws::AwsPool;
use jit_iam::config::AwsConfig;
use jit_iam::domain::integration::{Connection, Integration, IntegrationOptions, IntegrationStatus, RootAccount};
use reqwest::Method;
use serde_json::{json, Value};

const ROOT_ACCOUNT: &str = "111122223333";
const USERS_PER_ACCOUNT: usize = 3;
/// Seeding calls in flight, on moto directly (one Python process: more does not go faster).
const SEED_CONCURRENCY: usize = 8;
/// Every Organizations call of the management account, per second. AWS
/// publishes no rate for ListAccounts; tools listing large organizations
/// report throttling from a few calls a second, so: 5.
const ORGANIZATIONS_CALLS_PER_SECOND: f64 = 5.0;
/// The service's defaults (JIT_IAM_SYNC_CONCURRENCY, JIT_IAM_SYNC_ACCOUNT_CONCURRENCY), src/config.rs;
/// the direct listing runs the first's calls per account in flight.
const SYNC_CONCURRENCY: usize = 8;
const ACCOUNT_CONCURRENCY: usize = 16;
const REGIONS: [&str; 1] = ["us-east-1"];
const MEMBER_ROLE: &str = "jit-iam-access";
const BROWSE_PATH: &str = "/v1/resources?type=iam_user&limit=100";
const BROWSE_PASSES: usize = 3;
const GOAL_RATIO: f64 = 1.1;
const GOAL_RSS_MB: f64 = 200.0;
const GOAL_BROWSE_P99_MS: f64 = 25.0;

fn main() {
    let members: usize = std::env::var("JIT_IAM_BENCH_MEMBERS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let concurrencies: Vec<usize> = std::env::var("JIT_IAM_BENCH_DIRECT_CONCURRENCIES")
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![4, 8, 16]);
    // Inherited by moto: no AWS-managed policies or AMIs loaded into each of thousands of accounts.
    std::env::set_var("MOTO_IAM_LOAD_MANAGED_POLICIES", "false");
    std::env::set_var("MOTO_EC2_LOAD_DEFAULT_AMIS", "false");
    // Children are spawned from this thread: they die with it (PR_SET_PDEATHSIG).
    let raw = Moto::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (moto, proxy, latency_ms) = runtime.block_on(with_aws_latency(&raw));
    // The direct listing's SDK reads its endpoint and keys from the environment,
    // like the service: set while the runtime's threads are idle.
    for (key, value) in [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "bench-direct-secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(key, value);
    }
    let report = runtime.block_on(run(&raw, &moto, &proxy, latency_ms, members, &concurrencies));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

async fn run(
    raw: &Moto,
    moto: &Moto,
    proxy: &LatencyProxy,
    latency_ms: u64,
    members: usize,
    concurrencies: &[usize],
) -> Value {
    // Per-operation counts of the direct listing, from the pool's call metrics.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().expect("metrics recorder");
    eprintln!("==> AWS latency per call: {latency_ms} ms; Organizations: {ORGANIZATIONS_CALLS_PER_SECOND} calls/s");
    let seed = seed(raw, members).await;
    proxy.set_call_rate(Some(CallRate {
        service: "organizations".into(),
        calls_per_second: ORGANIZATIONS_CALLS_PER_SECOND,
    }));
    let accounts = members + 1;

    eprintln!("==> starting jit-iam ({})", common::service_binary().display());
    // Only the syncs asked for, and no reconciliation runs beside them; the
    // sync settings as given to the bench (to try others), else the defaults.
    let mut service_env =
        vec![("JIT_IAM_SYNC_INTERVAL", "24h".to_string()), ("JIT_IAM_RECONCILE_INTERVAL", "0".into())];
    let setting = |name: &'static str, default: usize| {
        let value = std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
        (name, value)
    };
    let settings = [
        setting("JIT_IAM_SYNC_CONCURRENCY", SYNC_CONCURRENCY),
        setting("JIT_IAM_SYNC_ACCOUNT_CONCURRENCY", ACCOUNT_CONCURRENCY),
    ];
    service_env.extend(settings.iter().map(|(name, value)| (*name, value.to_string())));
    let env: Vec<(&str, &str)> = service_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let service = Service::start(moto, &env).await;
    let load_before_first_sync = common::load_average();
    let window = Window::open(proxy, aws_calls_by_operation(&service.metrics().await));
    let created = service
        .call(
            Method::POST,
            "/v1/integrations",
            Some(json!({
                "name": "bench-organization",
                "connection": "organization",
                "root_account": {
                    "account_id": ROOT_ACCOUNT,
                    "access_role_arn": format!("arn:aws:iam::{ROOT_ACCOUNT}:role/{MEMBER_ROLE}"),
                    "external_id": "bench-external-id",
                    "region": "us-east-1",
                },
                "options": {"regions": REGIONS, "member_role_name": MEMBER_ROLE},
            })),
            201,
        )
        .await;
    let integration_id = created["id"].as_str().expect("integration id").to_string();
    let syncs = service.get(&format!("/v1/integrations/{integration_id}/syncs")).await;
    let first_id = syncs["items"][0]["id"].as_str().expect("the created sync").to_string();
    eprintln!("==> first sync of {accounts} accounts (into an empty database)");
    let first = ServiceRun::of(&service, wait_for_sync(&service, &integration_id, &first_id).await);
    let first_window = window.close(proxy, aws_calls_by_operation(&service.metrics().await));
    let (rss_after_first_sync, _) = service.memory_mb();
    eprintln!(
        "    {:.1}s, {} calls, {} AssumeRole, peak RSS {rss_after_first_sync:.0} MB",
        first.seconds, first.aws_calls, first_window.assume_roles
    );
    assert_eq!(first.succeeded, accounts, "every account synced: {:#}", first.run["error"]);

    let integration = integration(&integration_id);
    let mut direct_first = Vec::new();
    let mut pools = Vec::new();
    for &concurrency in concurrencies {
        eprintln!("==> direct listing, first (fresh credentials), {concurrency} accounts at a time");
        let pool = aws_pool().await;
        let round = direct_listing(proxy, &pool, &integration, concurrency, &metrics).await;
        eprintln!("    {:.1}s, {} calls, {} AssumeRole", round.seconds, round.calls, round.window.assume_roles);
        direct_first.push(round);
        pools.push(pool);
    }
    let best = (0..direct_first.len()).min_by(|&a, &b| direct_first[a].seconds.total_cmp(&direct_first[b].seconds));
    let best = best.expect("at least one direct concurrency");

    eprintln!("==> re-sync (nothing changed)");
    let load_before_resync = common::load_average();
    let window = Window::open(proxy, aws_calls_by_operation(&service.metrics().await));
    let queued = service.call(Method::POST, &format!("/v1/integrations/{integration_id}/sync"), None, 202).await;
    let resync_id = queued["id"].as_str().expect("sync id").to_string();
    let resync = ServiceRun::of(&service, wait_for_sync(&service, &integration_id, &resync_id).await);
    let resync_window = window.close(proxy, aws_calls_by_operation(&service.metrics().await));
    eprintln!("    {:.1}s, {} calls, {} AssumeRole", resync.seconds, resync.aws_calls, resync_window.assume_roles);
    let mut direct_again = Vec::new();
    for (pool, &concurrency) in pools.iter().zip(concurrencies) {
        eprintln!("==> direct listing again (credentials cached), {concurrency} accounts at a time");
        let round = direct_listing(proxy, pool, &integration, concurrency, &metrics).await;
        eprintln!("    {:.1}s, {} calls, {} AssumeRole", round.seconds, round.calls, round.window.assume_roles);
        direct_again.push(round);
    }
    let best_again =
        (0..direct_again.len()).min_by(|&a, &b| direct_again[a].seconds.total_cmp(&direct_again[b].seconds)).unwrap();

    eprintln!("==> browse: every page of {BROWSE_PATH}, {BROWSE_PASSES} passes");
    let browse = browse(&service).await;
    let (peak_rss, rss_now) = service.memory_mb();

    let first_ratio = first.seconds / direct_first[best].seconds;
    let resync_ratio = resync.seconds / direct_again[best_again].seconds;
    json!({
        "members": members,
        "accounts": accounts,
        "aws_latency_per_call_ms": latency_ms,
        "organizations_calls_per_second_per_account": ORGANIZATIONS_CALLS_PER_SECOND,
        "first_sync": {
            "service_seconds": round3(first.seconds),
            "service_listing_seconds": round3(first.listing_seconds),
            "service_after_listing_seconds": round3(first.after_listing_seconds),
            "best_direct_seconds": round3(direct_first[best].seconds),
            "best_direct_account_concurrency": concurrencies[best],
            "ratio": round3(first_ratio),
            "goal_ratio": GOAL_RATIO,
            "meets_goal": first_ratio <= GOAL_RATIO,
            "service_aws_calls": first.aws_calls,
            "service_by_operation": first_window.by_operation,
            "assume_role_calls": first_window.assume_roles,
            "assume_role_goal": accounts,
            "proxy": first_window.report(),
            "direct": direct_first.iter().zip(concurrencies).map(|(d, c)| d.report(*c)).collect::<Vec<_>>(),
            "load_average_before": load_before_first_sync,
        },
        "resync": {
            "service_seconds": round3(resync.seconds),
            "best_direct_seconds": round3(direct_again[best_again].seconds),
            "best_direct_account_concurrency": concurrencies[best_again],
            "ratio": round3(resync_ratio),
            "goal_ratio": GOAL_RATIO,
            "meets_goal": resync_ratio <= GOAL_RATIO,
            "service_aws_calls": resync.aws_calls,
            "service_by_operation": resync_window.by_operation,
            "assume_role_calls": resync_window.assume_roles,
            "proxy": resync_window.report(),
            "direct": direct_again.iter().zip(concurrencies).map(|(d, c)| d.report(*c)).collect::<Vec<_>>(),
            "load_average_before": load_before_resync,
        },
        "browse": browse,
        "service_peak_rss_mb": round3(peak_rss),
        "service_rss_mb": {"after_first_sync_peak": round3(rss_after_first_sync), "at_end": round3(rss_now)},
        "goal_rss_mb": GOAL_RSS_MB,
        "meets_rss_goal": peak_rss <= GOAL_RSS_MB,
        "service_env": service_env.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "service_defaults": {"JIT_IAM_SYNC_CONCURRENCY": SYNC_CONCURRENCY, "JIT_IAM_SYNC_ACCOUNT_CONCURRENCY": ACCOUNT_CONCURRENCY},
        "seeded": seed,
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "load_average_at_end": common::load_average(),
        },
    })
}

/// Creates the organization and its members on moto directly (no proxy),
/// then seeds every account; each account's EC2 backend is touched once so
/// that neither side pays moto's lazy creation of it.
async fn seed(raw: &Moto, members: usize) -> Value {
    use aws_sdk_organizations::types::OrganizationFeatureSet;
    eprintln!("==> organization {ROOT_ACCOUNT} with {members} members (at most {SEED_CONCURRENCY} calls in flight)");
    let started = Instant::now();
    let org = aws_sdk_organizations::Client::new(&raw.account(ROOT_ACCOUNT).await);
    org.create_organization().feature_set(OrganizationFeatureSet::All).send().await.expect("CreateOrganization");
    let creations = (0..members).map(|i| {
        let org = org.clone();
        async move {
            let created = org
                .create_account()
                .email(format!("bench-member-{i}@example.com"))
                .account_name(format!("bench-member-{i:05}"))
                .send()
                .await
                .map_err(|e| format!("CreateAccount {i}: {}", DisplayErrorContext(e)))?;
            Ok::<_, String>(
                created.create_account_status().and_then(|s| s.account_id()).expect("account id").to_string(),
            )
        }
    });
    let mut ids = run_bounded("CreateAccount", SEED_CONCURRENCY, creations.collect()).await;
    let accounts_seconds = started.elapsed().as_secs_f64();
    ids.push(ROOT_ACCOUNT.to_string());
    let seeding = Instant::now();
    let raw = Arc::new(raw.through(&raw.endpoint));
    let jobs = ids.iter().map(|id| seed_account(raw.clone(), id.clone()));
    let calls: u64 = run_bounded("seed accounts", SEED_CONCURRENCY, jobs.collect()).await.iter().sum();
    let seed_seconds = seeding.elapsed().as_secs_f64();
    json!({
        "per_account": {"iam_users": USERS_PER_ACCOUNT, "iam_groups": 1, "iam_roles": 1, "s3_buckets": 1},
        "create_accounts_seconds": round3(accounts_seconds),
        "create_accounts_per_second": round3(members as f64 / accounts_seconds),
        "seed_accounts_seconds": round3(seed_seconds),
        "seed_calls": calls,
        "seed_calls_per_second": round3(calls as f64 / seed_seconds),
        "moto_env": {"MOTO_IAM_LOAD_MANAGED_POLICIES": "false", "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"},
    })
}

/// One account's users, group, role and bucket; answers the calls made.
async fn seed_account(raw: Arc<Moto>, account_id: String) -> Result<u64, String> {
    let config = raw.account(&account_id).await;
    let iam = aws_sdk_iam::Client::new(&config);
    for i in 0..USERS_PER_ACCOUNT {
        let user = format!("org-user-{i}");
        iam.create_user().user_name(&user).send().await.map_err(failed("CreateUser", &account_id))?;
    }
    iam.create_group().group_name("org-group").send().await.map_err(failed("CreateGroup", &account_id))?;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name("org-role")
        .assume_role_policy_document(trust)
        .send()
        .await
        .map_err(failed("CreateRole", &account_id))?;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    // Bucket names are global: the account id keeps them apart.
    s3.create_bucket()
        .bucket(format!("org-bench-{account_id}"))
        .send()
        .await
        .map_err(failed("CreateBucket", &account_id))?;
    aws_sdk_ec2::Client::new(&config)
        .describe_instances()
        .send()
        .await
        .map_err(failed("DescribeInstances", &account_id))?;
    // AssumeRole, the users, group, role, bucket, DescribeInstances.
    Ok(1 + USERS_PER_ACCOUNT as u64 + 4)
}

/// Describes an SDK error with its causes, after what failed.
fn failed<E: std::error::Error>(what: &str, account_id: &str) -> impl FnOnce(E) -> String {
    let what = format!("{what} in {account_id}");
    move |e| format!("{what}: {}", DisplayErrorContext(e))
}

/// The integration as the service stores it, for the direct listing.
fn integration(id: &str) -> Integration {
    Integration {
        id: id.parse().unwrap(),
        name: "bench-organization".into(),
        connection: Connection::Organization,
        root_account: RootAccount {
            account_id: ROOT_ACCOUNT.into(),
            access_role_arn: format!("arn:aws:iam::{ROOT_ACCOUNT}:role/{MEMBER_ROLE}"),
            external_id: "bench-external-id".into(),
            region: "us-east-1".into(),
        },
        options: IntegrationOptions {
            regions: Some(REGIONS.iter().map(|r| r.to_string()).collect()),
            member_role_name: Some(MEMBER_ROLE.into()),
            ..IntegrationOptions::default()
        },
        status: IntegrationStatus::Active,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        revision: 1,
    }
}

/// A client pool with the service's default settings (AwsConfig, src/config.rs) and no credentials yet.
async fn aws_pool() -> AwsPool {
    AwsPool::load(AwsConfig {
        service_principal_arn: None,
        session_duration: Duration::from_secs(3600),
        max_attempts: 5,
        attempt_timeout: Duration::from_secs(30),
        s3_force_path_style: false,
        identity_center_requests_per_second: 15,
        identity_center_max_assignment_creations: 10,
    })
    .await
}

/// Polls a sync run once a second (a run of thousands of accounts is a large
/// answer: polling it faster would load the service it measures); returns it ended.
async fn wait_for_sync(service: &Service, integration_id: &str, sync_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(4 * 3600);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let run = service.get(&format!("/v1/integrations/{integration_id}/syncs/{sync_id}")).await;
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            return run;
        }
        assert!(Instant::now() < deadline, "sync {sync_id} did not end within 4 hours");
    }
}

/// A finished sync run of the service, timed by its own timestamps.
struct ServiceRun {
    seconds: f64,
    /// From the run's start to the last account listed and stored, then to the run's end.
    listing_seconds: f64,
    after_listing_seconds: f64,
    aws_calls: u64,
    succeeded: usize,
    run: Value,
}

impl ServiceRun {
    fn of(service: &Service, run: Value) -> ServiceRun {
        assert_ne!(run["status"], "failed", "sync failed: {run:#}\nservice logs:\n{}", service.recent_logs());
        let time = |value: &Value| value.as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()).expect("a time");
        let seconds = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_microseconds().unwrap_or(0) as f64 / 1e6;
        let (started, finished) = (time(&run["started_at"]), time(&run["finished_at"]));
        let accounts = run["accounts"].as_array().cloned().unwrap_or_default();
        let listed = accounts.iter().map(|a| time(&a["finished_at"])).max().unwrap_or(finished);
        ServiceRun {
            seconds: seconds(started, finished),
            listing_seconds: seconds(started, listed),
            after_listing_seconds: seconds(listed, finished),
            aws_calls: run["aws_calls"].as_u64().unwrap_or(0),
            succeeded: accounts.iter().filter(|a| a["status"] == "succeeded").count(),
            run: json!({"status": run["status"], "error": run["error"], "counts": run["counts"]}),
        }
    }
}

/// What the proxy and the call metrics saw between two moments.
struct Window {
    started: Instant,
    forwarded: u64,
    throttled: u64,
    calls: BTreeMap<String, u64>,
}

struct Seen {
    seconds: f64,
    forwarded: u64,
    throttled: u64,
    assume_roles: usize,
    /// Per action as the proxy saw it (S3's REST calls have none): calls and time through the proxy.
    per_action: BTreeMap<String, Value>,
    by_operation: BTreeMap<String, u64>,
}

impl Window {
    /// From now; `calls`: the call counts by operation so far (of the service's /metrics or this process's).
    fn open(proxy: &LatencyProxy, calls: BTreeMap<String, u64>) -> Window {
        Window { started: Instant::now(), forwarded: proxy.forwarded(), throttled: proxy.throttled(), calls }
    }

    /// Until now; `calls`: the same counts as at the start, now.
    fn close(self, proxy: &LatencyProxy, calls: BTreeMap<String, u64>) -> Seen {
        let ended = Instant::now();
        let by_operation = calls_since(&self.calls, &calls);
        let calls = proxy.calls_between(self.started, ended);
        let mut durations: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for call in &calls {
            let action = if call.action.is_empty() { "(s3, REST)".to_string() } else { call.action.clone() };
            durations.entry(action).or_default().push((call.answered - call.arrived).as_secs_f64() * 1000.0);
        }
        let per_action = durations
            .into_iter()
            .map(|(action, ms)| {
                let mean = ms.iter().sum::<f64>() / ms.len() as f64;
                let mut stats = summary(ms);
                stats["mean_ms"] = round3(mean);
                (action, stats)
            })
            .collect();
        Seen {
            seconds: (ended - self.started).as_secs_f64(),
            forwarded: proxy.forwarded() - self.forwarded,
            throttled: proxy.throttled() - self.throttled,
            assume_roles: calls.iter().filter(|c| c.action == "AssumeRole").count(),
            per_action,
            by_operation,
        }
    }
}

impl Seen {
    fn report(&self) -> Value {
        json!({
            "calls_forwarded_to_moto": self.forwarded,
            "moto_calls_per_second": round3(self.forwarded as f64 / self.seconds),
            "throttled": self.throttled,
            "per_action_through_proxy": self.per_action,
        })
    }
}

struct DirectRound {
    seconds: f64,
    calls: u64,
    resources: usize,
    window: Seen,
}

impl DirectRound {
    fn report(&self, concurrency: usize) -> Value {
        json!({
            "account_concurrency": concurrency,
            "calls_per_account_in_flight": SYNC_CONCURRENCY,
            "seconds": round3(self.seconds),
            "aws_calls": self.calls,
            "resources": self.resources,
            "assume_role_calls": self.window.assume_roles,
            "by_operation": self.window.by_operation,
            "proxy": self.window.report(),
        })
    }
}

/// What a sync lists, listed by the service's own code in this process,
/// `concurrency` accounts at a time, and nothing stored.
async fn direct_listing(
    proxy: &LatencyProxy,
    pool: &AwsPool,
    integration: &Integration,
    concurrency: usize,
    metrics: &metrics_exporter_prometheus::PrometheusHandle,
) -> DirectRound {
    let window = Window::open(proxy, aws_calls_by_operation(&metrics.render()));
    let started = Instant::now();
    let (resources, calls) = list_organization_directly(pool, integration, concurrency, SYNC_CONCURRENCY).await;
    let seconds = started.elapsed().as_secs_f64();
    DirectRound { seconds, calls, resources, window: window.close(proxy, aws_calls_by_operation(&metrics.render())) }
}

/// Every page of the users listing, one request at a time, a few passes.
async fn browse(service: &Service) -> Value {
    let mut latencies = Vec::new();
    let mut users = 0;
    let mut pages = 0;
    for _ in 0..BROWSE_PASSES {
        let (mut path, mut seen) = (BROWSE_PATH.to_string(), 0);
        pages = 0;
        loop {
            let asked = Instant::now();
            let page = service.get(&path).await;
            latencies.push(asked.elapsed().as_secs_f64() * 1000.0);
            pages += 1;
            seen += page["items"].as_array().map(Vec::len).unwrap_or(0);
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("{BROWSE_PATH}&cursor={cursor}"),
                None => break,
            }
        }
        users = seen;
    }
    let stats = summary(latencies);
    let meets_goal = stats["p99_ms"].as_f64().is_some_and(|p99| p99 < GOAL_BROWSE_P99_MS);
    json!({
        "path": BROWSE_PATH,
        "users": users,
        "pages_per_pass": pages,
        "passes": BROWSE_PASSES,
        "latency": stats,
        "note": "one request at a time over every page (the first pass fills the page cache)",
        "goal_p99_ms_below": GOAL_BROWSE_P99_MS,
        "meets_goal": meets_goal,
    })
}
