//! The reconciliation benchmark: one account with 1,000 active grants (each a
//! generated policy attached to its own user) and 2,000 other IAM entities.
//! A run that finds nothing, against the same GetAccountAuthorizationDetails
//! pages read directly on the same moto in the same run; then a run repairing
//! 100 grants whose policies were detached by hand. Then an organization of
//! 100 member accounts with 100 active grants each: a run that finds nothing,
//! against the same pages read directly at the best concurrency found.
//!
//!   scripts/bench reconcile   (report in bench-results/reconcile.json)
//!   JIT_IAM_BENCH_AWS_LATENCY_MS=40 scripts/bench reconcile   (every AWS call 40 ms later:
//!                             bench-results/reconcile-40ms.json)

mod common;

use std::time::{Duration, Instant};

use aws_sdk_iam::types::EntityType;
use aws_sdk_iam::Client as Iam;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};

use common::{round3, run_bounded, with_aws_latency, Moto, Service};

const GRANTS: usize = 1000;
const ROLES: usize = 1000;
const GROUPS: usize = 1000;
const DRIFTED: usize = 100;
const MEMBERS: usize = 100;
const GRANTS_PER_MEMBER: usize = 100;

fn main() {
    let moto = Moto::start();
    let report = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run(&moto));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

fn user(i: usize) -> String {
    format!("user-{i:04}")
}

/// Every page of iam:GetAccountAuthorizationDetails as a run reads it; returns the pages.
async fn direct_read(iam: &Iam) -> usize {
    let mut pages = 0;
    let mut marker: Option<String> = None;
    loop {
        let page = iam
            .get_account_authorization_details()
            .filter(EntityType::User)
            .filter(EntityType::Role)
            .filter(EntityType::Group)
            .filter(EntityType::LocalManagedPolicy)
            .max_items(1000)
            .set_marker(marker.clone())
            .send()
            .await
            .expect("GetAccountAuthorizationDetails");
        pages += 1;
        match page.marker().filter(|_| page.is_truncated()) {
            Some(next) => marker = Some(next.to_string()),
            None => return pages,
        }
    }
}

/// Asks for a run and waits for it; returns it and how long it ran (by its own timestamps).
async fn reconcile(service: &Service, integration: &str) -> (Value, f64) {
    let path = format!("/v1/integrations/{integration}/reconcile");
    let run = service.call(reqwest::Method::POST, &path, Some(json!({})), 202).await;
    let id = run["id"].as_str().unwrap();
    loop {
        let run = service.get(&format!("/v1/integrations/{integration}/reconciliations/{id}")).await;
        if run["status"] != "queued" && run["status"] != "running" {
            let at = |field: &str| run[field].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
            let seconds = (at("finished_at") - at("started_at")).num_milliseconds() as f64 / 1000.0;
            return (run, seconds);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run(raw: &Moto) -> Value {
    let (moto, _proxy, aws_latency_ms) = with_aws_latency(raw).await;
    let moto = &moto;
    eprintln!("==> AWS latency per call: {aws_latency_ms} ms");
    let account_id = format!("4{:011}", rand::random_range(0..100_000_000_000u64));
    let iam = Iam::new(&moto.account(&account_id).await);
    eprintln!("==> seeding account {account_id}: {GRANTS} users, {ROLES} roles, {GROUPS} groups");
    let users = (0..GRANTS).map(|i| {
        let iam = iam.clone();
        async move { iam.create_user().user_name(user(i)).send().await.map(|_| ()) }
    });
    run_bounded("users", 16, users.collect()).await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    let roles = (0..ROLES).map(|i| {
        let iam = iam.clone();
        async move {
            iam.create_role()
                .role_name(format!("role-{i:04}"))
                .assume_role_policy_document(trust)
                .send()
                .await
                .map(|_| ())
        }
    });
    run_bounded("roles", 16, roles.collect()).await;
    let groups = (0..GROUPS).map(|i| {
        let iam = iam.clone();
        async move { iam.create_group().group_name(format!("group-{i:04}")).send().await.map(|_| ()) }
    });
    run_bounded("groups", 16, groups.collect()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.account(&account_id).await).force_path_style(true).build(),
    );
    let bucket = format!("bench-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    let service = Service::start(moto, &[("JIT_IAM_RECONCILE_INTERVAL", "0")]).await;
    let integration = service.connect_single_account(&account_id).await;

    eprintln!("==> {GRANTS} grants, 16 at a time");
    let grants = (0..GRANTS).map(|i| {
        let (service, integration, bucket) = (&service, &integration, &bucket);
        async move {
            let body = json!({
                "integration_id": integration, "resource_arn": format!("arn:aws:s3:::{bucket}"), "access_level": "read",
                "principal": {"type": "iam_user", "name": user(i)}, "duration_seconds": 86_400,
                "request_id": uuid::Uuid::new_v4().to_string(), "approved_by": "bench"
            });
            let grant = service.call(reqwest::Method::POST, "/v1/grants?wait=30", Some(body), 202).await;
            if grant["status"] == "active" {
                Ok(grant)
            } else {
                Err(format!("{grant}"))
            }
        }
    });
    let grants = run_bounded("grants", 16, grants.collect()).await;

    eprintln!("==> a run that finds nothing, and the same pages read directly (best of 3 each)");
    let (mut service_s, mut direct_s, mut clean) = (f64::MAX, f64::MAX, Value::Null);
    let mut pages = 0;
    for _ in 0..3 {
        let (run, seconds) = reconcile(&service, &integration).await;
        assert_eq!(run["findings"], json!([]), "{run}");
        service_s = service_s.min(seconds);
        clean = run;
        let started = Instant::now();
        pages = direct_read(&iam).await;
        direct_s = direct_s.min(started.elapsed().as_secs_f64());
    }

    eprintln!("==> {DRIFTED} grants' policies detached by hand, then a run repairing them");
    for grant in grants.iter().take(DRIFTED) {
        let arn = grant["policy"]["arn"].as_str().unwrap();
        iam.detach_user_policy()
            .user_name(grant["principal"]["name"].as_str().unwrap())
            .policy_arn(arn)
            .send()
            .await
            .unwrap();
    }
    let (repairing, repair_s) = reconcile(&service, &integration).await;
    let repaired = repairing["findings"].as_array().unwrap().iter().filter(|f| f["action"] == "repaired").count();
    assert_eq!(repaired, DRIFTED, "{repairing}");

    let clean_calls = clean["aws_calls"].as_i64().unwrap();
    let repair_calls = repairing["aws_calls"].as_i64().unwrap();
    let organization = organization(moto, &service).await;
    json!({
        "aws_latency_per_call_ms": aws_latency_ms,
        "account": {"active_grants": GRANTS, "users": GRANTS, "roles": ROLES, "groups": GROUPS, "policies": GRANTS},
        "clean_run": {
            "aws_calls": clean_calls,
            "minimum_pages": pages,
            "seconds": round3(service_s),
            "direct_seconds": round3(direct_s),
            "ratio": round3(service_s / direct_s),
            "goal_ratio": 1.25,
        },
        "repair_run": {
            "drifted": DRIFTED,
            "repaired": repaired,
            "aws_calls": repair_calls,
            "bound": pages as i64 + DRIFTED as i64,
            "seconds": round3(repair_s),
        },
        "organization": organization,
    })
}

/// An organization of `MEMBERS` accounts, `GRANTS_PER_MEMBER` active grants
/// in each: a run that finds nothing against the same pages read directly.
async fn organization(moto: &Moto, service: &Service) -> Value {
    use aws_sdk_organizations::types::OrganizationFeatureSet;
    let root_id = format!("6{:011}", rand::random_range(0..100_000_000_000u64));
    let root = moto.account(&root_id).await;
    let org = aws_sdk_organizations::Client::new(&root);
    org.create_organization().feature_set(OrganizationFeatureSet::All).send().await.expect("CreateOrganization");
    eprintln!("==> organization {root_id}: {MEMBERS} members, {GRANTS_PER_MEMBER} users and a bucket each");
    let creates = (0..MEMBERS).map(|i| {
        let org = org.clone();
        async move {
            let created = org
                .create_account()
                .email(format!("member{i}@example.com"))
                .account_name(format!("member-{i}"))
                .send()
                .await?;
            Ok::<_, aws_sdk_organizations::Error>(created.create_account_status.unwrap().account_id.unwrap())
        }
    });
    let members = run_bounded("members", 8, creates.collect()).await;
    let mut configs = vec![root.clone()];
    for member in &members {
        configs.push(moto.account(member).await);
    }
    let users = configs[1..].iter().flat_map(|config| {
        let iam = Iam::new(config);
        (0..GRANTS_PER_MEMBER).map(move |i| {
            let iam = iam.clone();
            async move { iam.create_user().user_name(user(i)).send().await.map(|_| ()) }
        })
    });
    run_bounded("users", 16, users.collect()).await;
    let buckets =
        configs[1..].iter().map(|config| {
            let s3 =
                aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build());
            async move {
                s3.create_bucket().bucket(format!("bench-{}", uuid::Uuid::new_v4().simple())).send().await.map(|_| ())
            }
        });
    run_bounded("buckets", 16, buckets.collect()).await;

    let body = json!({
        "name": format!("bench-org-{root_id}"), "connection": "organization",
        "root_account": {"account_id": root_id, "access_role_arn": format!("arn:aws:iam::{root_id}:role/jit-iam-access"),
                         "external_id": "bench-external-id", "region": "us-east-1"},
        "options": {"regions": ["us-east-1"], "member_role_name": "jit-iam-access"}
    });
    let integration = service.call(reqwest::Method::POST, "/v1/integrations", Some(body), 201).await;
    let integration = integration["id"].as_str().unwrap().to_string();
    let runs = service.get(&format!("/v1/integrations/{integration}/syncs")).await;
    service.wait_for_sync(&integration, runs["items"][0]["id"].as_str().unwrap(), Instant::now()).await;
    let found = service.get(&format!("/v1/resources?integration_id={integration}&type=s3_bucket&limit=1000")).await;
    let bucket_of: std::collections::HashMap<String, String> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["account_id"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(bucket_of.len(), MEMBERS, "a bucket in every member");

    eprintln!("==> {} grants, 32 submitted at a time", MEMBERS * GRANTS_PER_MEMBER);
    let grants = members.iter().flat_map(|member| {
        let (integration, bucket) = (&integration, &bucket_of[member]);
        (0..GRANTS_PER_MEMBER).map(move |i| async move {
            let body = json!({
                "integration_id": integration, "resource_id": bucket, "access_level": "read",
                "principal": {"type": "iam_user", "name": user(i)}, "duration_seconds": 86_400,
                "request_id": uuid::Uuid::new_v4().to_string(), "approved_by": "bench"
            });
            let grant = service.call(reqwest::Method::POST, "/v1/grants?wait=30", Some(body), 202).await;
            match grant["status"] == "active" {
                true => Ok(()),
                false => Err(format!("{grant}")),
            }
        })
    });
    run_bounded("grants", 32, grants.collect()).await;

    eprintln!("==> a run that finds nothing, and the same pages read directly (best of 2 each)");
    let (mut service_s, mut aws_calls) = (f64::MAX, 0);
    for _ in 0..2 {
        let (run, seconds) = reconcile(service, &integration).await;
        assert_eq!(run["findings"], json!([]), "{run}");
        service_s = service_s.min(seconds);
        aws_calls = run["aws_calls"].as_i64().unwrap();
    }
    let clients: Vec<Iam> = configs.iter().map(Iam::new).collect();
    let mut direct = serde_json::Map::new();
    let mut best = f64::MAX;
    for concurrency in [1, 4, 8, 16, 32] {
        let mut seconds = f64::MAX;
        for _ in 0..2 {
            let started = Instant::now();
            futures::stream::iter(&clients).map(direct_read).buffer_unordered(concurrency).collect::<Vec<_>>().await;
            seconds = seconds.min(started.elapsed().as_secs_f64());
        }
        direct.insert(concurrency.to_string(), round3(seconds));
        best = best.min(seconds);
    }
    json!({
        "accounts": MEMBERS + 1,
        "active_grants": MEMBERS * GRANTS_PER_MEMBER,
        "clean_run": {
            "seconds": round3(service_s),
            "aws_calls": aws_calls,
            "direct_seconds_by_accounts_at_once": direct,
            "best_direct_seconds": round3(best),
            "ratio_to_best_direct": round3(service_s / best),
            "goal_ratio": 1.25,
        },
        "service_settings": {"JIT_IAM_RECONCILE_ACCOUNT_CONCURRENCY": "default"},
    })
}
