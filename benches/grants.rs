//! The grants benchmark: latency, AWS calls per lifecycle, AssumeRole calls,
//! and 1,000 grants expiring in the same second — each against the same SDK
//! calls made directly on the same moto in the same run (moto is the ceiling).
//!
//!   scripts/bench grants      (report in bench-results/grants.json)
//!   JIT_IAM_BENCH_AWS_LATENCY_MS=40 scripts/bench grants   (every AWS call, jit-iam's and
//!                             the baseline's, 40 ms later: report in bench-results/grants-40ms.json)

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use aws_sdk_iam::Client as Iam;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use common::{
    aws_calls_by_operation, breakdown_summary, calls_since, load_average, percentile, round3, run_bounded, summary,
    wait_status, with_aws_latency, Breakdown, Moto, Service,
};

const USERS: usize = 200;
const LATENCY_GRANTS: usize = 200;
const EXPIRING_GRANTS: usize = 1000;
/// Grants worked on at once by the service, and calls in flight in the direct baseline.
const CONCURRENCY: usize = 16;

fn main() {
    let moto = Moto::start();
    let report = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run(&moto));
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

const DOCUMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Bucket","Effect":"Allow","Action":["s3:ListBucket","s3:GetBucketLocation"],"Resource":["arn:aws:s3:::bench"]},{"Sid":"Objects","Effect":"Allow","Action":["s3:GetObject","s3:GetObjectVersion"],"Resource":["arn:aws:s3:::bench/*"]}]}"#;

/// The two kinds of grantee; user `user-NNN` and role `role-NNN` exist for each NNN.
#[derive(Clone, Copy, Debug)]
enum Grantee {
    User,
    Role,
}

impl Grantee {
    fn principal_type(self) -> &'static str {
        match self {
            Self::User => "iam_user",
            Self::Role => "iam_role",
        }
    }

    fn name(self, i: usize) -> String {
        match self {
            Self::User => user(i),
            Self::Role => format!("role-{:03}", i % USERS),
        }
    }
}

/// CreatePolicy + AttachUserPolicy made directly: what one grant costs in AWS.
async fn direct_apply(iam: &Iam, name: &str, user: &str) -> String {
    let arn = direct_create(iam, name).await;
    iam.attach_user_policy().user_name(user).policy_arn(&arn).send().await.expect("AttachUserPolicy");
    arn
}

/// CreatePolicy + Attach{User,Role}Policy made directly, for either kind of grantee.
async fn direct_apply_to(iam: &Iam, name: &str, grantee: Grantee, i: usize) -> (String, String) {
    let principal = grantee.name(i);
    let arn = match grantee {
        Grantee::User => direct_apply(iam, name, &principal).await,
        Grantee::Role => {
            let arn = direct_create(iam, name).await;
            iam.attach_role_policy().role_name(&principal).policy_arn(&arn).send().await.expect("AttachRolePolicy");
            arn
        }
    };
    (arn, principal)
}

async fn direct_create(iam: &Iam, name: &str) -> String {
    let tags = [("managed-by", "jit-iam"), ("jit-iam:grant-id", name)]
        .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().unwrap());
    let policy = iam
        .create_policy()
        .policy_name(name)
        .path("/bench/")
        .policy_document(DOCUMENT)
        .set_tags(Some(tags.to_vec()))
        .send()
        .await
        .expect("CreatePolicy");
    policy.policy.unwrap().arn.unwrap()
}

/// DetachUserPolicy + DeletePolicy made directly: what one revocation costs in AWS.
async fn direct_revoke(iam: &Iam, arn: &str, user: &str) {
    iam.detach_user_policy().user_name(user).policy_arn(arn).send().await.expect("DetachUserPolicy");
    iam.delete_policy().policy_arn(arn).send().await.expect("DeletePolicy");
}

async fn direct_revoke_from(iam: &Iam, arn: &str, grantee: Grantee, principal: &str) {
    match grantee {
        Grantee::User => direct_revoke(iam, arn, principal).await,
        Grantee::Role => {
            iam.detach_role_policy().role_name(principal).policy_arn(arn).send().await.expect("DetachRolePolicy");
            iam.delete_policy().policy_arn(arn).send().await.expect("DeletePolicy");
        }
    }
}

fn user(i: usize) -> String {
    format!("user-{:03}", i % USERS)
}

async fn run(raw: &Moto) -> Value {
    let (moto, proxy, aws_latency_ms) = with_aws_latency(raw).await;
    let moto = &moto;
    eprintln!("==> AWS latency per call: {aws_latency_ms} ms");
    let account_id = format!("3{:011}", rand::random_range(0..100_000_000_000u64));
    let iam = Iam::new(&moto.account(&account_id).await);
    eprintln!("==> seeding account {account_id}");
    let creates = (0..USERS).map(|i| {
        let iam = iam.clone();
        async move { iam.create_user().user_name(user(i)).send().await.map(|_| ()) }
    });
    run_bounded("users", 8, creates.collect()).await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    let creates = (0..USERS).map(|i| {
        let iam = iam.clone();
        let name = Grantee::Role.name(i);
        async move { iam.create_role().role_name(name).assume_role_policy_document(trust).send().await.map(|_| ()) }
    });
    run_bounded("roles", 8, creates.collect()).await;
    iam.create_group().group_name("bench-group").send().await.unwrap();
    iam.create_policy().policy_name("bench-shared").policy_document(DOCUMENT).send().await.unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto.account(&account_id).await).force_path_style(true).build(),
    );
    let bucket = format!("bench-{}", uuid::Uuid::new_v4().simple());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();

    let service = Service::start(moto, &[("JIT_IAM_MIN_GRANT", "1s")]).await;
    let integration = service.connect_single_account(&account_id).await;
    let resources = service.get(&format!("/v1/resources?integration_id={integration}&limit=1000")).await;
    let id_of = |t: &str| -> String {
        resources["items"].as_array().unwrap().iter().find(|r| r["type"] == t).unwrap()["id"].as_str().unwrap().into()
    };
    let (bucket_id, policy_id, group_id) = (id_of("s3_bucket"), id_of("iam_policy"), id_of("iam_group"));
    let body_to = |grantee: Grantee, resource: &str, level: &str, i: usize, expiry: Value| {
        let mut body = json!({
            "integration_id": integration, "resource_id": resource, "access_level": level,
            "principal": {"type": grantee.principal_type(), "name": grantee.name(i)},
            "request_id": uuid::Uuid::new_v4().to_string(), "approved_by": "bench"
        });
        match expiry {
            Value::String(at) => body["expires_at"] = json!(at),
            seconds => body["duration_seconds"] = seconds,
        }
        body
    };
    let body =
        |resource: &str, level: &str, i: usize, expiry: Value| body_to(Grantee::User, resource, level, i, expiry);

    // 1. Latency: grants one at a time, interleaved in blocks with the direct calls, to users then to roles.
    let metrics_before = aws_calls_by_operation(&service.metrics().await);
    let mut granted = Vec::new();
    let mut latency = serde_json::Map::new();
    for grantee in [Grantee::User, Grantee::Role] {
        eprintln!("==> latency: {LATENCY_GRANTS} grants to {grantee:?}s, one at a time");
        let (mut direct, mut through_service, mut direct_arns) = (vec![], vec![], vec![]);
        for block in 0..(LATENCY_GRANTS / 25) {
            for i in block * 25..(block + 1) * 25 {
                let started = Instant::now();
                direct_arns.push(direct_apply_to(&iam, &format!("direct-{grantee:?}-{i}"), grantee, i).await);
                direct.push(Breakdown::of(&proxy, started, Instant::now()));
            }
            for i in block * 25..(block + 1) * 25 {
                let started = Instant::now();
                let body = body_to(grantee, &bucket_id, "read", i, json!(3600));
                let grant = service.call(reqwest::Method::POST, "/v1/grants?wait=30", Some(body), 202).await;
                through_service.push(Breakdown::of(&proxy, started, Instant::now()));
                assert_eq!(grant["status"], "active", "{grant}");
                granted.push(grant["id"].as_str().unwrap().to_string());
            }
        }
        for (arn, principal) in &direct_arns {
            direct_revoke_from(&iam, arn, grantee, principal).await;
        }
        let direct_summary = summary(direct.iter().map(|b| b.total_ms).collect());
        let service_summary = summary(through_service.iter().map(|b| b.total_ms).collect());
        let ratio = |key: &str| round3(service_summary[key].as_f64().unwrap() / direct_summary[key].as_f64().unwrap());
        let added = |key: &str| round3(service_summary[key].as_f64().unwrap() - direct_summary[key].as_f64().unwrap());
        let key = match grantee {
            Grantee::User => "users",
            Grantee::Role => "roles",
        };
        latency.insert(
            key.into(),
            json!({
                "grants": LATENCY_GRANTS,
                "service": service_summary, "direct_create_and_attach": direct_summary,
                "ratio_p50": ratio("p50_ms"), "ratio_p99": ratio("p99_ms"),
                "goal_ratio_at_40ms": {"p50": 1.05, "p99": 1.15},
                "added_ms_p50": added("p50_ms"), "added_ms_p99": added("p99_ms"),
                "goal_added_ms_raw": {"p50": 3.0, "p99": 10.0},
                "where_the_time_goes": {"service": breakdown_summary(&through_service), "direct": breakdown_summary(&direct)},
            }),
        );
    }

    // 2. AWS calls per lifecycle: revoke what was granted, then policy and group grants.
    eprintln!("==> calls per lifecycle");
    revoke_all(&service, &granted).await;
    let generated_calls = calls_since(&metrics_before, &aws_calls_by_operation(&service.metrics().await));
    let mut shared = BTreeMap::new();
    for (kind, resource, level) in [("iam_policy", &policy_id, "attach"), ("iam_group", &group_id, "member")] {
        let before = aws_calls_by_operation(&service.metrics().await);
        let mut ids = Vec::new();
        for i in 0..50 {
            let grant = service
                .call(reqwest::Method::POST, "/v1/grants?wait=30", Some(body(resource, level, i, json!(3600))), 202)
                .await;
            assert_eq!(grant["status"], "active", "{grant}");
            ids.push(grant["id"].as_str().unwrap().to_string());
        }
        revoke_all(&service, &ids).await;
        let calls = calls_since(&before, &aws_calls_by_operation(&service.metrics().await));
        shared.insert(kind, json!({"grants": 50, "calls": calls, "per_lifecycle": per_grant(&calls, 50)}));
    }
    let calls = json!({
        "generated_policy": {"grants": granted.len(), "calls": generated_calls, "per_lifecycle": per_grant(&generated_calls, granted.len()),
                             "goal": 4},
        "iam_policy": shared["iam_policy"], "iam_group": shared["iam_group"], "goal_shared": 2
    });

    // 3. Expiry at scale: 1,000 grants expiring in the same second.
    eprintln!("==> direct revocation throughput ({EXPIRING_GRANTS} policies, {CONCURRENCY} in flight)");
    let creates = (0..EXPIRING_GRANTS).map(|i| {
        let iam = iam.clone();
        async move { Ok::<_, ()>((direct_apply(&iam, &format!("expiring-{i}"), &user(i)).await, user(i))) }
    });
    let direct_policies = run_bounded("direct applies", CONCURRENCY, creates.collect()).await;
    let started = Instant::now();
    let revokes = direct_policies.iter().map(|(arn, user)| {
        let iam = iam.clone();
        async move {
            direct_revoke(&iam, arn, user).await;
            Ok::<_, ()>(())
        }
    });
    run_bounded("direct revocations", CONCURRENCY, revokes.collect()).await;
    let direct_seconds = started.elapsed().as_secs_f64();
    let direct_rate = EXPIRING_GRANTS as f64 / direct_seconds;

    eprintln!("==> {EXPIRING_GRANTS} grants expiring in the same second");
    let expires_at: DateTime<Utc> = (Utc::now() + chrono::Duration::seconds(90)).with_timezone(&Utc);
    let expires = json!(expires_at.to_rfc3339());
    let submissions = (0..EXPIRING_GRANTS).map(|i| {
        let (service, body) = (&service, body(&bucket_id, "read", i, expires.clone()));
        async move {
            Ok::<_, ()>(
                service.call(reqwest::Method::POST, "/v1/grants", Some(body), 202).await["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        }
    });
    let expiring = run_bounded("submissions", 32, submissions.collect()).await;
    wait_status(&service, &expiring, "active").await;
    let applied_by = Utc::now();
    assert!(applied_by < expires_at, "the grants were applied too late for the test ({applied_by})");
    eprintln!("  all active; waiting for {expires_at}");
    let finished = wait_status(&service, &expiring, "revoked").await;
    let mut lags: Vec<f64> = finished
        .iter()
        .map(|g| {
            let done: DateTime<Utc> = g["finished_at"].as_str().unwrap().parse().unwrap();
            (done - expires_at).num_milliseconds() as f64 / 1000.0
        })
        .collect();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let all_revoked_after = *lags.last().unwrap();
    let service_rate = EXPIRING_GRANTS as f64 / all_revoked_after;
    let expiry = json!({
        "grants": EXPIRING_GRANTS,
        "seconds_until_all_revoked": round3(all_revoked_after),
        "revocations_per_second": round3(service_rate),
        "direct_detach_and_delete_per_second": round3(direct_rate),
        "fraction_of_direct_throughput": round3(service_rate / direct_rate),
        "goal_fraction": 0.8,
        "lag_p50_seconds": round3(percentile(&lags, 0.5)),
        "lag_p99_seconds": round3(percentile(&lags, 0.99)),
    });
    let total_grants = 2 * LATENCY_GRANTS + 100 + EXPIRING_GRANTS;
    // Every sts:AssumeRole since the service started, the first sync's included.
    let assume = assume_role_calls(&service.metrics().await);
    let (peak_rss_mb, _) = service.memory_mb();
    json!({
        "aws_latency_per_call_ms": aws_latency_ms,
        "latency": latency,
        "aws_calls": calls,
        "assume_role": {"calls": assume, "grants": total_grants, "per_1000_grants": round3(assume * 1000.0 / total_grants as f64),
                        "accounts": 1, "session": "1h (JIT_IAM_SESSION_DURATION)"},
        "expiry": expiry,
        "service_peak_rss_mb": round3(peak_rss_mb),
        "service_cpu_seconds": round3(service.cpu_seconds()),
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "load_average_1m": round3(load_average())},
    })
}

fn per_grant(calls: &BTreeMap<String, u64>, grants: usize) -> Value {
    let iam: u64 = calls.iter().filter(|(op, _)| op.starts_with("iam:")).map(|(_, n)| n).sum();
    round3(iam as f64 / grants as f64)
}

fn assume_role_calls(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("jit_iam_assume_role_total"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

async fn revoke_all(service: &Service, ids: &[String]) {
    let revocations = ids.iter().map(|id| async move {
        service.call(reqwest::Method::POST, &format!("/v1/grants/{id}/revoke"), None, 202).await;
        Ok::<_, ()>(())
    });
    run_bounded("revocations", 16, revocations.collect()).await;
    wait_status(service, ids, "revoked").await;
}
