//! Inventory benchmark (`scripts/bench inventory`).
//!
//! Seeds moto with two accounts of an organization, then measures:
//! 1. a full sync by the service against the same list calls made directly
//!    with the SDK (the service's own listing code, no Postgres) on the same
//!    moto in the same run, alternately, as a ratio of the best times;
//! 2. the AWS calls a sync makes against the minimum number of pages;
//! 3. the service's peak RSS.
//!
//! Browsing is measured apart, at 1,000,000 resources (benches/browse.rs).
//!
//! Prints the JSON report on stdout, progress on stderr.
//! Knob (for trying it out quickly): JIT_IAM_BENCH_SCALE (default 1: the
//! sizes of the issue).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};
use common::{aws_calls_by_operation, calls_since, list_organization_directly, round3, run_bounded, Moto, Service};
use futures::StreamExt;
use jit_iam::aws::AwsPool;
use jit_iam::config::AwsConfig;
use jit_iam::domain::integration::{Connection, Integration, IntegrationOptions, IntegrationStatus, RootAccount};
use reqwest::Method;
use serde_json::{json, Value};

const ROOT_ACCOUNT: &str = "111122223333";
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
const TEAMS: [&str; 4] = ["payments", "search", "platform", "data"];
/// Seeding calls in flight (moto is single-core: more does not go faster).
const SEED_CONCURRENCY: usize = 8;
/// Instances per RunInstances call: one reservation each.
const INSTANCE_BATCH: usize = 50;
/// The service's defaults (JIT_IAM_SYNC_CONCURRENCY, JIT_IAM_SYNC_ACCOUNT_CONCURRENCY).
const SYNC_CONCURRENCY: usize = 8;
const ACCOUNT_CONCURRENCY: usize = 16;
const ROUNDS: usize = 2;
/// JIT_IAM_AWS_ATTEMPT_TIMEOUT, for the service and the direct listing alike.
/// The default (10s) is too short here: on single-core moto a DescribeInstances
/// of ~330 instances or a GetAccountAuthorizationDetails of 3,500 entities,
/// queued behind the sync's other calls, takes longer, and every retry re-sends it.
const ATTEMPT_TIMEOUT_SECONDS: u64 = 120;
const GOAL_RATIO: f64 = 1.25;

/// What one account is seeded with.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    roles: usize,
    policies: usize,
    groups: usize,
    users: usize,
    buckets: usize,
    instances: usize,
}

impl Sizes {
    fn scaled(scale: f64) -> Sizes {
        let n = |full: usize| ((full as f64 * scale).round() as usize).max(1);
        Sizes { roles: n(2000), policies: n(2000), groups: n(500), users: n(1000), buckets: n(300), instances: n(1000) }
    }

    /// Instances of each region, split as evenly as possible.
    fn instances_in(&self, region_index: usize) -> usize {
        self.instances / REGIONS.len() + usize::from(region_index < self.instances % REGIONS.len())
    }

    /// RunInstances calls, hence reservations, of each region.
    fn reservations_in(&self, region_index: usize) -> usize {
        self.instances_in(region_index).div_ceil(INSTANCE_BATCH)
    }
}

fn env_tag(i: usize) -> &'static str {
    if i % 2 == 0 {
        "prod"
    } else {
        "dev"
    }
}

fn team_tag(i: usize) -> &'static str {
    TEAMS[(i / 2) % TEAMS.len()]
}

fn main() {
    let scale: f64 = std::env::var("JIT_IAM_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);

    // Children are spawned from this thread: they die with it (PR_SET_PDEATHSIG).
    let moto = Moto::start();
    // The SDK of the direct listing reads its endpoint and keys from the
    // environment, exactly like the service: set before any thread exists.
    for (key, value) in [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "bench-direct-secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(key, value);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let report = runtime.block_on(run(&moto, Sizes::scaled(scale)));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

async fn run(moto: &Moto, sizes: Sizes) -> Value {
    // Per-operation counts of the direct listing, from the pool's call metrics.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().expect("metrics recorder");

    eprintln!("==> organization: {ROOT_ACCOUNT} and one member");
    let root_config = moto.account(ROOT_ACCOUNT).await;
    let member = create_organization(&root_config).await;
    let accounts = [ROOT_ACCOUNT.to_string(), member.clone()];

    eprintln!("==> seeding 2 accounts with {sizes:?} (at most {SEED_CONCURRENCY} calls in flight)");
    let seeding = Instant::now();
    let seeders =
        vec![Arc::new(Seeder::new(root_config).await), Arc::new(Seeder::new(moto.account(&member).await).await)];
    let mut jobs = Vec::new();
    for seeder in &seeders {
        for job in plan(&sizes) {
            jobs.push(seeder.clone().run(job));
        }
    }
    run_bounded("seed", SEED_CONCURRENCY, jobs).await;
    let seed_seconds = seeding.elapsed().as_secs_f64();

    eprintln!("==> starting jit-iam ({})", common::service_binary().display());
    let attempt_timeout = format!("{ATTEMPT_TIMEOUT_SECONDS}s");
    let service_env = [("JIT_IAM_SYNC_INTERVAL", "24h"), ("JIT_IAM_AWS_ATTEMPT_TIMEOUT", attempt_timeout.as_str())];
    let service = Service::start(moto, &service_env).await;
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
                "options": {"regions": REGIONS, "member_role_name": "jit-iam-access"},
            })),
            201,
        )
        .await;
    let integration_id = created["id"].as_str().expect("integration id").to_string();
    let syncs = service.get(&format!("/v1/integrations/{integration_id}/syncs")).await;
    let first_id = syncs["items"][0]["id"].as_str().expect("the created sync").to_string();
    eprintln!("==> first sync (trigger created: empty database)");
    let (first, first_wall) = service.wait_for_sync(&integration_id, &first_id, posted).await;
    let first = expect_succeeded(&service, first);
    let (rss_after_first_sync, _) = service.memory_mb();

    // The same integration, as the service sees it, for the direct listing.
    let integration = Integration {
        id: integration_id.parse().unwrap(),
        name: "bench".into(),
        connection: Connection::Organization,
        root_account: RootAccount {
            account_id: ROOT_ACCOUNT.into(),
            access_role_arn: format!("arn:aws:iam::{ROOT_ACCOUNT}:role/jit-iam-access"),
            external_id: "bench-external-id".into(),
            region: "us-east-1".into(),
        },
        options: IntegrationOptions {
            tags: vec![],
            regions: Some(REGIONS.iter().map(|r| r.to_string()).collect()),
            member_role_name: Some("jit-iam-access".into()),
            include_aws_managed_policies: false,
            ..IntegrationOptions::default()
        },
        status: IntegrationStatus::Active,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        revision: 1,
    };
    // The service's settings (see AwsConfig in src/config.rs).
    let pool = AwsPool::load(AwsConfig {
        service_principal_arn: None,
        session_duration: Duration::from_secs(3600),
        max_attempts: 5,
        attempt_timeout: Duration::from_secs(ATTEMPT_TIMEOUT_SECONDS),
        s3_force_path_style: false,
        identity_center_requests_per_second: 15,
        identity_center_max_assignment_creations: 10,
    })
    .await;

    let load_before_rounds = common::load_average();
    let mut direct_rounds = Vec::new();
    let mut service_rounds = Vec::new();
    for round in 1..=ROUNDS {
        eprintln!("==> round {round}/{ROUNDS}: direct SDK listing");
        let direct = direct_listing(&pool, &integration, &metrics).await;
        eprintln!("    {:.2}s, {} calls, {} resources", direct.seconds, direct.calls, direct.resources);
        direct_rounds.push(direct);
        eprintln!("==> round {round}/{ROUNDS}: service sync");
        let before = aws_calls_by_operation(&service.metrics().await);
        let asked = Instant::now();
        let queued = service.call(Method::POST, &format!("/v1/integrations/{integration_id}/sync"), None, 202).await;
        let sync_id = queued["id"].as_str().expect("sync id").to_string();
        let (run, wall) = service.wait_for_sync(&integration_id, &sync_id, asked).await;
        let mut run = expect_succeeded(&service, run);
        run.by_operation = calls_since(&before, &aws_calls_by_operation(&service.metrics().await));
        eprintln!("    {:.2}s (wall {:.2}s), {} calls", run.seconds, wall.as_secs_f64(), run.aws_calls);
        service_rounds.push((run, wall));
    }

    let service_seconds: Vec<f64> = service_rounds.iter().map(|(r, _)| r.seconds).collect();
    let direct_seconds: Vec<f64> = direct_rounds.iter().map(|d| d.seconds).collect();
    let best_service = service_seconds.iter().copied().fold(f64::INFINITY, f64::min);
    let best_direct = direct_seconds.iter().copied().fold(f64::INFINITY, f64::min);
    let best_ratio = best_service / best_direct;
    let minimum = minimum_pages(&first.accounts, &sizes);
    let minimum_total: u64 = minimum.values().sum();
    let last_direct = direct_rounds.last().unwrap();

    let (peak_rss, rss_now) = service.memory_mb();

    json!({
        "sync": {
            "service_seconds": service_seconds.iter().map(|s| round3(*s)).collect::<Vec<_>>(),
            "service_wall_seconds": service_rounds.iter().map(|(_, w)| round3(w.as_secs_f64())).collect::<Vec<_>>(),
            "service_listing_seconds": service_rounds.iter().map(|(r, _)| round3(r.listing_seconds)).collect::<Vec<_>>(),
            "service_after_listing_seconds": service_rounds.iter().map(|(r, _)| round3(r.after_listing_seconds)).collect::<Vec<_>>(),
            "direct_seconds": direct_seconds.iter().map(|s| round3(*s)).collect::<Vec<_>>(),
            "best_service_seconds": round3(best_service),
            "best_direct_seconds": round3(best_direct),
            "best_ratio": round3(best_ratio),
            "goal_ratio": GOAL_RATIO,
            "meets_goal": best_ratio <= GOAL_RATIO,
            "first_sync": {
                "note": "trigger created, into an empty database; not one of the rounds",
                "seconds": round3(first.seconds),
                "listing_seconds": round3(first.listing_seconds),
                "after_listing_seconds": round3(first.after_listing_seconds),
                "wall_seconds_from_post": round3(first_wall.as_secs_f64()),
                "aws_calls": first.aws_calls,
            },
            "aws_calls": service_rounds.last().unwrap().0.aws_calls,
            "aws_calls_per_round": service_rounds.iter().map(|(r, _)| r.aws_calls).collect::<Vec<_>>(),
            "direct_calls": last_direct.calls,
            "minimum_pages": minimum_total,
            "by_operation_minimum": minimum,
            "by_operation_service": service_rounds.last().unwrap().0.by_operation,
            "by_operation_direct": last_direct.by_operation,
            "resources_synced": first.counts,
            "resources_listed_direct": last_direct.resources,
        },
        "service_peak_rss_mb": round3(peak_rss),
        "service_rss_mb": {"after_first_sync_peak": round3(rss_after_first_sync), "at_end": round3(rss_now)},
        "service_settings": service_env.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "seeded": {
            "accounts": accounts,
            "per_account": {
                "iam_roles": sizes.roles,
                "iam_policies": sizes.policies,
                "iam_groups": sizes.groups,
                "iam_users": sizes.users,
                "s3_buckets": sizes.buckets,
                "ec2_instances": sizes.instances,
                "ec2_reservations": (0..REGIONS.len()).map(|r| sizes.reservations_in(r)).sum::<usize>(),
                "regions": REGIONS,
            },
            "seconds": round3(seed_seconds),
        },
        "machine": {
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "load_average_before_sync_rounds": load_before_rounds,
        },
    })
}

async fn create_organization(root: &SdkConfig) -> String {
    use aws_sdk_organizations::types::OrganizationFeatureSet;
    let org = aws_sdk_organizations::Client::new(root);
    org.create_organization().feature_set(OrganizationFeatureSet::All).send().await.expect("CreateOrganization");
    let created = org
        .create_account()
        .email("bench-member@example.com")
        .account_name("bench-member")
        .send()
        .await
        .expect("CreateAccount");
    created.create_account_status().and_then(|s| s.account_id()).expect("member account id").to_string()
}

/// One seeding call (or two, for a bucket and its tags).
#[derive(Clone, Copy, Debug)]
enum Job {
    Role(usize),
    Policy(usize),
    Group(usize),
    User(usize),
    Bucket(usize),
    Instances { region: usize, batch: usize, count: usize },
}

fn plan(sizes: &Sizes) -> Vec<Job> {
    let mut jobs = Vec::new();
    jobs.extend((0..sizes.roles).map(Job::Role));
    jobs.extend((0..sizes.policies).map(Job::Policy));
    jobs.extend((0..sizes.groups).map(Job::Group));
    jobs.extend((0..sizes.users).map(Job::User));
    jobs.extend((0..sizes.buckets).map(Job::Bucket));
    for region in 0..REGIONS.len() {
        let total = sizes.instances_in(region);
        for batch in 0..sizes.reservations_in(region) {
            let count = INSTANCE_BATCH.min(total - batch * INSTANCE_BATCH);
            jobs.push(Job::Instances { region, batch, count });
        }
    }
    jobs
}

/// Clients acting inside one seeded account.
struct Seeder {
    account_id: String,
    iam: aws_sdk_iam::Client,
    s3: Vec<aws_sdk_s3::Client>,
    ec2: Vec<aws_sdk_ec2::Client>,
}

impl Seeder {
    async fn new(config: SdkConfig) -> Seeder {
        let sts = aws_sdk_sts::Client::new(&config);
        let identity = sts.get_caller_identity().send().await.expect("GetCallerIdentity");
        let regional = |region: &str| config.to_builder().region(Region::new(region.to_string())).build();
        Seeder {
            account_id: identity.account().expect("account").to_string(),
            iam: aws_sdk_iam::Client::new(&config),
            s3: REGIONS
                .iter()
                .map(|r| {
                    let s3 = aws_sdk_s3::config::Builder::from(&regional(r)).force_path_style(true).build();
                    aws_sdk_s3::Client::from_conf(s3)
                })
                .collect(),
            ec2: REGIONS.iter().map(|r| aws_sdk_ec2::Client::new(&regional(r))).collect(),
        }
    }

    async fn run(self: Arc<Self>, job: Job) -> Result<(), String> {
        match job {
            Job::Role(i) => {
                let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
                self.iam
                    .create_role()
                    .role_name(format!("bench-role-{i:05}"))
                    .assume_role_policy_document(trust)
                    .set_tags(Some(iam_tags(i)))
                    .send()
                    .await
                    .map_err(failed(format!("CreateRole {i}")))?;
            }
            Job::Policy(i) => {
                let document = format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::bench-data-{i}/*"}}]}}"#
                );
                self.iam
                    .create_policy()
                    .policy_name(format!("bench-policy-{i:05}"))
                    .policy_document(document)
                    .set_tags(Some(iam_tags(i)))
                    .send()
                    .await
                    .map_err(failed(format!("CreatePolicy {i}")))?;
            }
            Job::Group(i) => {
                self.iam
                    .create_group()
                    .group_name(format!("bench-group-{i:05}"))
                    .send()
                    .await
                    .map_err(failed(format!("CreateGroup {i}")))?;
            }
            Job::User(i) => {
                self.iam
                    .create_user()
                    .user_name(format!("bench-user-{i:05}"))
                    .set_tags(Some(iam_tags(i)))
                    .send()
                    .await
                    .map_err(failed(format!("CreateUser {i}")))?;
            }
            Job::Bucket(i) => {
                use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, Tag, Tagging};
                // Names are global across accounts: the account id keeps them apart.
                let name = format!("jit-bench-{}-{i:05}", self.account_id);
                let region = REGIONS[i % REGIONS.len()];
                let configuration = (region != "us-east-1").then(|| {
                    CreateBucketConfiguration::builder()
                        .location_constraint(BucketLocationConstraint::from(region))
                        .build()
                });
                let s3 = &self.s3[i % REGIONS.len()];
                s3.create_bucket()
                    .bucket(&name)
                    .set_create_bucket_configuration(configuration)
                    .send()
                    .await
                    .map_err(failed(format!("CreateBucket {name}")))?;
                let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
                let tagging = Tagging::builder()
                    .tag_set(tag("env", env_tag(i)))
                    .tag_set(tag("team", team_tag(i)))
                    .build()
                    .unwrap();
                s3.put_bucket_tagging()
                    .bucket(&name)
                    .tagging(tagging)
                    .send()
                    .await
                    .map_err(failed(format!("PutBucketTagging {name}")))?;
            }
            Job::Instances { region, batch, count } => {
                use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
                let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
                let tags = TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(tag("Name", &format!("bench-{}-{batch:03}", REGIONS[region])))
                    .tags(tag("env", env_tag(batch)))
                    .tags(tag("team", team_tag(batch)))
                    .build();
                self.ec2[region]
                    .run_instances()
                    .image_id("ami-0123456789abcdef0")
                    .instance_type(InstanceType::T3Micro)
                    .min_count(count as i32)
                    .max_count(count as i32)
                    .tag_specifications(tags)
                    .send()
                    .await
                    .map_err(failed(format!("RunInstances {} batch {batch}", REGIONS[region])))?;
            }
        }
        Ok(())
    }
}

/// Describes an SDK error with its causes, after what failed.
fn failed<E: std::error::Error>(what: String) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {}", DisplayErrorContext(e))
}

fn iam_tags(i: usize) -> Vec<aws_sdk_iam::types::Tag> {
    let tag = |k: &str, v: &str| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().unwrap();
    vec![tag("env", env_tag(i)), tag("team", team_tag(i))]
}

/// A finished sync run of the service.
struct ServiceRun {
    seconds: f64,
    /// From the run's start to the last account listed, then to the run's end
    /// (storing the accounts' inventories is most of that).
    listing_seconds: f64,
    after_listing_seconds: f64,
    aws_calls: u64,
    counts: Value,
    accounts: Vec<Value>,
    /// From the service's /metrics (attempts, so retries count).
    by_operation: BTreeMap<String, u64>,
}

fn expect_succeeded(service: &Service, run: Value) -> ServiceRun {
    assert_eq!(run["status"], "succeeded", "sync did not succeed: {run:#}\nservice logs:\n{}", service.recent_logs());
    let time = |value: &Value| value.as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()).expect("a time");
    let seconds = |from: DateTime<Utc>, to: DateTime<Utc>| (to - from).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let (started, finished) = (time(&run["started_at"]), time(&run["finished_at"]));
    let listed =
        run["accounts"].as_array().into_iter().flatten().map(|a| time(&a["finished_at"])).max().unwrap_or(finished);
    ServiceRun {
        seconds: seconds(started, finished),
        listing_seconds: seconds(started, listed),
        after_listing_seconds: seconds(listed, finished),
        aws_calls: run["aws_calls"].as_u64().unwrap_or(0),
        counts: run["counts"].clone(),
        accounts: run["accounts"].as_array().cloned().unwrap_or_default(),
        by_operation: BTreeMap::new(),
    }
}

struct DirectRound {
    seconds: f64,
    calls: u64,
    resources: usize,
    by_operation: BTreeMap<String, u64>,
}

/// What a sync lists, listed by the service's own code in this process, with
/// the service's concurrency, and nothing stored.
async fn direct_listing(
    pool: &AwsPool,
    integration: &Integration,
    metrics: &metrics_exporter_prometheus::PrometheusHandle,
) -> DirectRound {
    let before = aws_calls_by_operation(&metrics.render());
    let started = Instant::now();
    let (resources, calls) = list_organization_directly(pool, integration, ACCOUNT_CONCURRENCY, SYNC_CONCURRENCY).await;
    let seconds = started.elapsed().as_secs_f64();
    let by_operation = calls_since(&before, &aws_calls_by_operation(&metrics.render()));
    DirectRound { seconds, calls, resources, by_operation }
}

/// The fewest pages a sync can ask for, by operation, with the largest page
/// sizes the APIs allow; from the per-account counts of the first sync.
fn minimum_pages(accounts: &[Value], sizes: &Sizes) -> BTreeMap<String, u64> {
    let pages = |items: u64, per_page: u64| items.div_ceil(per_page).max(1);
    let mut minimum: BTreeMap<String, u64> = BTreeMap::new();
    let mut add = |op: &str, n: u64| *minimum.entry(op.to_string()).or_insert(0) += n;
    add("organizations:ListAccounts", pages(accounts.len() as u64, 20));
    for account in accounts {
        let count = |kind: &str| account["counts"][kind].as_u64().unwrap_or(0);
        add(
            "iam:GetAccountAuthorizationDetails",
            pages(count("iam_user") + count("iam_role") + count("iam_group"), 1000),
        );
        add("iam:ListPolicies", pages(count("iam_policy"), 1000));
        add("iam:ListPolicyTags", count("iam_policy"));
        add("s3:ListBuckets", 1);
        // moto's ListBuckets gives no BucketRegion: one GetBucketLocation per bucket.
        add("s3:GetBucketLocation", count("s3_bucket"));
        add("s3:GetBucketTagging", count("s3_bucket"));
        for region in 0..REGIONS.len() {
            add("ec2:DescribeInstances", pages(sizes.reservations_in(region) as u64, 1000));
        }
    }
    minimum
}
