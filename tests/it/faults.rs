//! AWS and Postgres failing under the service: nothing is lost, nothing is
//! orphaned, no IAM change is made twice.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::crashes::{all_finished, assert_clean, grant_body, seeded, wait_until};
use crate::support::{eventually, unique, DatabaseProxy, Exchange, Fault, FaultProxy, Moto, TestDb, TestServer};

/// Effective IAM changes made more than once: a policy created or deleted
/// twice, an attachment or membership made again while already in place.
fn duplicate_changes(exchanges: &[Exchange]) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_place: BTreeMap<String, bool> = BTreeMap::new();
    for exchange in exchanges.iter().filter(|e| e.upstream_status.is_some_and(|s| (200..300).contains(&s))) {
        let p = |k: &str| exchange.params.get(k).cloned().unwrap_or_default();
        let (key, makes) = match exchange.action.as_str() {
            "CreatePolicy" => (format!("create {}", p("PolicyName")), None),
            "DeletePolicy" => (format!("delete {}", p("PolicyArn")), None),
            "AttachUserPolicy" => (format!("policy {} {}", p("UserName"), p("PolicyArn")), Some(true)),
            "DetachUserPolicy" => (format!("policy {} {}", p("UserName"), p("PolicyArn")), Some(false)),
            "AddUserToGroup" => (format!("group {} {}", p("UserName"), p("GroupName")), Some(true)),
            "RemoveUserFromGroup" => (format!("group {} {}", p("UserName"), p("GroupName")), Some(false)),
            _ => continue,
        };
        match makes {
            None => *counts.entry(key).or_default() += 1,
            Some(attach) => {
                let state = in_place.entry(key.clone()).or_default();
                if *state != attach {
                    *state = attach;
                    *counts.entry(format!("{key} {attach}")).or_default() += 1;
                }
            }
        }
    }
    counts.into_iter().filter(|(_, n)| *n > 1).map(|(k, n)| format!("{k}: {n} times")).collect()
}

/// A server whose AWS calls go through a fault proxy (faulting nothing yet),
/// with a 1 s attempt timeout that the proxy's slow answers exceed.
async fn behind_fault_proxy(env: &[(&str, &str)]) -> (FaultProxy, TestServer) {
    let moto = Moto::shared();
    let proxy = FaultProxy::start(&moto.endpoint, Duration::from_millis(1500)).await;
    let mut builder =
        TestServer::builder(moto).env("AWS_ENDPOINT_URL", &proxy.endpoint).env("JIT_IAM_AWS_ATTEMPT_TIMEOUT", "1s");
    for (key, value) in env {
        builder = builder.env(key, value);
    }
    (proxy, builder.start().await)
}

/// Submits `count` one-hour grants one after the other; returns their ids.
async fn submit(
    server: &TestServer,
    integration: &str,
    resources: &BTreeMap<String, String>,
    count: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let (status, grant) = server.post("/v1/grants", grant_body(integration, resources, i, 3600)).await;
        assert_eq!(status, 202, "{grant}");
        ids.push(grant["id"].as_str().unwrap().to_string());
    }
    ids
}

#[tokio::test]
async fn three_hundred_grants_survive_thirty_percent_of_aws_calls_failing() {
    let (proxy, server) = behind_fault_proxy(&[]).await;
    let (account, integration, resources) = seeded(&server).await;

    proxy.set_rate(0.3);
    let mut ids = Vec::new();
    for chunk in (0..300).collect::<Vec<_>>().chunks(25) {
        let submissions =
            chunk.iter().map(|i| server.post("/v1/grants", grant_body(&integration, &resources, *i, 3600)));
        for (status, grant) in futures::future::join_all(submissions).await {
            assert_eq!(status, 202, "{grant}");
            ids.push(grant["id"].as_str().unwrap().to_string());
        }
    }
    wait_until(&server, &ids, "active").await;
    // In chunks, as the grants were submitted: the faults are the AWS calls', not a burst of 300 requests.
    let mut refused = Vec::new();
    for chunk in ids.chunks(25) {
        let revocations = chunk.iter().map(|id| {
            let path = format!("/v1/grants/{id}/revoke");
            let server = &server;
            async move { server.post(&path, json!({})).await }
        });
        for (status, answer) in futures::future::join_all(revocations).await {
            if status != 202 {
                refused.push(format!("{status} {answer}"));
            }
        }
    }
    assert!(refused.is_empty(), "revocations not accepted: {refused:?}");
    let grants = all_finished(&server, &ids).await;
    proxy.set_rate(0.0);

    assert!(
        grants.iter().all(|g| g["status"] == "revoked" && !g["activated_at"].is_null()),
        "every grant active, then revoked"
    );
    assert_clean(&account).await;
    let exchanges = proxy.exchanges();
    let faults: Vec<Fault> = exchanges.iter().filter_map(|e| e.fault).collect();
    let duplicates = duplicate_changes(&exchanges);
    assert!(duplicates.is_empty(), "IAM changes made twice: {duplicates:?}");
    // The faults reached the service, and its events show the retries.
    assert!(faults.len() >= 300, "only {} faults injected", faults.len());
    for kind in
        [Fault::Throttle, Fault::InternalError, Fault::Unavailable, Fault::ResetBefore, Fault::ResetAfter, Fault::Slow]
    {
        assert!(faults.contains(&kind), "no {kind:?} injected");
    }
    let retried_calls =
        aws_calls(&server, &ids[..60]).await.iter().filter(|e| e["attempts"].as_i64().unwrap_or(0) > 1).count();
    assert!(retried_calls > 0, "no retry shows in the events");
    println!(
        "aws faults: {} injected over {} calls ({:?}); grants lost 0; orphaned policies 0; duplicate IAM changes {}",
        faults.len(),
        exchanges.len(),
        count_by_kind(&faults),
        duplicates.len()
    );
}

/// The AWS calls recorded in the events of `ids`.
async fn aws_calls(server: &TestServer, ids: &[String]) -> Vec<Value> {
    let mut calls = Vec::new();
    for id in ids {
        let (_, events) = server.get(&format!("/v1/grants/{id}/events?limit=1000")).await;
        calls.extend(events["items"].as_array().unwrap().iter().filter(|e| e["kind"] == "aws_call").cloned());
    }
    calls
}

/// The SDK stops retrying once too many calls fail (its retry quota). jit-iam
/// keeps one quota per account: a customer account failing every call must
/// not stop the retries of another customer's calls.
#[tokio::test]
async fn an_account_failing_every_call_leaves_the_retries_of_another_alone() {
    let (proxy, server) = behind_fault_proxy(&[("JIT_IAM_AWS_MAX_ATTEMPTS", "8")]).await;
    let (failing, failing_integration, failing_resources) = seeded(&server).await;
    let (healthy, healthy_integration, healthy_resources) = seeded(&server).await;

    proxy.set_account_rate(&failing.id, 1.0);
    let failing_ids = submit(&server, &failing_integration, &failing_resources, 8).await;
    // Its quota is used up once a call failing with a retryable error got no retry at all.
    eventually(Duration::from_secs(90), "the failing account's retry quota to run out", || async {
        aws_calls(&server, &failing_ids)
            .await
            .iter()
            .any(|call| {
                let retryable = matches!(
                    call["error_code"].as_str(),
                    Some("Throttling" | "InternalFailure" | "ServiceUnavailable")
                );
                retryable && call["attempts"] == 1
            })
            .then_some(())
    })
    .await;

    proxy.set_account_rate(&healthy.id, 0.2);
    let healthy_ids = submit(&server, &healthy_integration, &healthy_resources, 20).await;
    wait_until(&server, &healthy_ids, "active").await;
    let calls = aws_calls(&server, &healthy_ids).await;
    let failed: Vec<&Value> = calls.iter().filter(|call| call["outcome"] == "failed").collect();
    assert!(failed.is_empty(), "calls of the healthy account failed without their retries: {failed:?}");
    assert!(calls.iter().any(|call| call["attempts"].as_i64() > Some(1)), "the healthy account's calls were retried");
    let faulted =
        proxy.exchanges().iter().filter(|e| e.fault.is_some() && e.account.as_ref() == Some(&healthy.id)).count();
    assert!(faulted > 0, "the healthy account saw faults");
}

fn count_by_kind(faults: &[Fault]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for fault in faults {
        *counts.entry(format!("{fault:?}")).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_ten_second_database_outage_loses_nothing() {
    let db = TestDb::new();
    let postgres = DatabaseProxy::start("127.0.0.1:5432").await;
    let server = TestServer::builder(Moto::shared())
        .database(db.clone())
        .env("DATABASE_URL", &format!("postgres://postgres@127.0.0.1:{}/{}", postgres.port, db.name))
        .env("JIT_IAM_MIN_GRANT", "1s")
        .start()
        .await;
    let (account, integration, resources) = seeded(&server).await;

    let mut ids = Vec::new();
    for i in 0..40 {
        let seconds = if i % 2 == 0 { 6 } else { 3600 };
        let (status, grant) = server.post("/v1/grants", grant_body(&integration, &resources, i, seconds)).await;
        assert_eq!(status, 202, "{grant}");
        ids.push(grant["id"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    postgres.down();
    let outage = std::time::Instant::now();
    let answer = reqwest::get(format!("{}/readyz", server.url)).await.unwrap();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.json::<Value>().await.unwrap()["error"]["code"], "database_unavailable");
    for (status, body) in [
        server.get("/v1/grants").await,
        server.post("/v1/grants", grant_body(&integration, &resources, 99, 600)).await,
        server.get(&format!("/v1/grants/{}", ids[0])).await,
    ] {
        assert_eq!(
            (status.as_u16(), body["error"]["code"].as_str()),
            (503, Some("database_unavailable")),
            "{body}\n{}",
            server.problems()
        );
    }
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(outage.elapsed())).await;
    postgres.up();

    eventually(Duration::from_secs(30), "readiness after the outage", || async {
        (reqwest::get(format!("{}/readyz", server.url)).await.ok()?.status() == 200).then_some(())
    })
    .await;
    // The long grants are revoked on request; the short ones expire.
    wait_until(&server, &ids, "active|revoked|failed").await;
    for id in ids.iter().skip(1).step_by(2) {
        let (status, _) = server.post(&format!("/v1/grants/{id}/revoke"), json!({})).await;
        assert_eq!(status, 202);
    }
    let grants = all_finished(&server, &ids).await;
    assert_eq!(grants.len(), 40, "nothing lost");
    for grant in &grants {
        let expired_unapplied = grant["status"] == "failed" && grant["last_error"]["code"] == "expired";
        assert!(grant["status"] == "revoked" || expired_unapplied, "{grant}");
    }
    assert_clean(&account).await;
    let rows: i64 = sqlx::query_scalar("select count(*) from grants").fetch_one(&db.pool().await).await.unwrap();
    assert_eq!(rows, 40);
}

/// IAM throttles writes per account at a rate it does not publish. Grants
/// expiring together in a throttled account are paced by jit-iam (the SDK's
/// adaptive retry, one rate per account), not failed and not retried blindly.
#[tokio::test]
async fn grants_expiring_together_under_throttled_iam_writes_are_revoked_paced_not_failed() {
    let (proxy, server) = behind_fault_proxy(&[("JIT_IAM_MIN_GRANT", "1s")]).await;
    let (account, integration, resources) = seeded(&server).await;
    let mut ids = Vec::new();
    for chunk in (0..60).collect::<Vec<_>>().chunks(20) {
        let submissions = chunk.iter().map(|i| server.post("/v1/grants", grant_body(&integration, &resources, *i, 15)));
        for (status, grant) in futures::future::join_all(submissions).await {
            assert_eq!(status, 202, "{grant}");
            ids.push(grant["id"].as_str().unwrap().to_string());
        }
    }
    wait_until(&server, &ids, "active").await;
    let writes_per_second = 10.0;
    proxy.throttle_writes("iam", writes_per_second);
    let grants = all_finished(&server, &ids).await;
    assert!(grants.iter().all(|g| g["status"] == "revoked"), "every grant revoked, none failed");
    assert_clean(&account).await;
    let revocation_writes: Vec<Value> = aws_calls(&server, &ids)
        .await
        .into_iter()
        .filter(|call| {
            let operation = call["operation"].as_str().unwrap_or_default();
            ["iam:Detach", "iam:Delete", "iam:Remove"].iter().any(|w| operation.starts_with(w))
        })
        .collect();
    let succeeded = revocation_writes.iter().filter(|call| call["outcome"] != "failed").count();
    let attempts: i64 = revocation_writes.iter().map(|call| call["attempts"].as_i64().unwrap_or(1)).sum();
    let throttled = proxy.exchanges().iter().filter(|e| e.fault == Some(Fault::Throttle)).count();
    let per_success = attempts as f64 / succeeded as f64;
    println!("throttled revocations: {succeeded} writes, {attempts} attempts ({per_success:.2} per write), {throttled} throttled");
    assert!(throttled > 0, "the proxy throttled");
    assert!(per_success < 1.5, "{attempts} attempts for {succeeded} writes");
}

/// One account's backlog (AWS throttling it, or answering slowly) takes at most
/// `JIT_IAM_WORKER_ACCOUNT_CONCURRENCY` of the worker's slots: another
/// account's grant is applied meanwhile, not after the backlog.
#[tokio::test]
async fn a_slow_accounts_backlog_leaves_the_other_slots_to_other_accounts() {
    let (proxy, server) = behind_fault_proxy(&[
        ("JIT_IAM_WORKER_CONCURRENCY", "4"),
        ("JIT_IAM_WORKER_ACCOUNT_CONCURRENCY", "2"),
        ("JIT_IAM_AWS_ATTEMPT_TIMEOUT", "120s"),
    ])
    .await;
    let (_, slow_integration, slow_resources) = seeded(&server).await;
    let (other, other_integration, other_resources) = seeded(&server).await;
    let body = |integration: &str, resource: &str, level: &str, user: usize| {
        json!({
            "integration_id": integration, "resource_id": resource, "access_level": level,
            "principal": {"type": "iam_user", "name": format!("user-{user:02}")},
            "duration_seconds": 3600, "request_id": unique("fair"), "approved_by": "approver"
        })
    };

    // The slow account's grants wait on CreatePolicy answers that do not come.
    proxy.hold_answers("CreatePolicy");
    let mut slow = Vec::new();
    for user in 0..6 {
        let (status, grant) =
            server.post("/v1/grants", body(&slow_integration, &slow_resources["s3_bucket"], "read", user)).await;
        assert_eq!(status, 202, "{grant}");
        slow.push(grant["id"].as_str().unwrap().to_string());
    }
    proxy.holding().await;
    let (status, grant) =
        server.post("/v1/grants", body(&other_integration, &other_resources["iam_policy"], "attach", 0)).await;
    assert_eq!(status, 202, "{grant}");
    let other_grant = grant["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(30), "the other account's grant to be active", || async {
        (server.get(&format!("/v1/grants/{other_grant}")).await.1["status"] == "active").then_some(())
    })
    .await;
    assert_eq!(proxy.held(), 2, "the slow account holds exactly its 2 slots");
    let pending = wait_until(&server, &slow, "pending|active").await;
    assert!(pending.iter().all(|g| g["status"] == "pending"), "the slow account's grants still wait");
    assert!(other.user_policies("user-00").await.iter().any(|p| p.ends_with("/readonly")), "attached in IAM");

    proxy.release();
    wait_until(&server, &slow, "active").await;
}
