//! Webhooks to the approval portal: every event once per transition, signed
//! as Standard Webhooks says (checked by the reference library), retried with
//! the same id, durable across a SIGKILL, once across replicas, and sent only
//! where the address rules allow.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jit_iam::domain::webhook::EventType;
use jit_iam::storage::webhooks::{self as storage, AttemptRecord, ClaimedDelivery};
use jit_iam::webhooks::signing::WebhookSecret;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{
    eventually, random_account_id, unique, Account, Answer, Fault, FaultProxy, Moto, Receiver, ServerBuilder, TestDb,
    TestServer,
};

/// Loopback receivers need both settings; retries come quickly.
fn builder(moto: &Moto) -> ServerBuilder {
    TestServer::builder(moto)
        .env("JIT_IAM_WEBHOOK_ALLOW_HTTP", "true")
        .env("JIT_IAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
        .env("JIT_IAM_WEBHOOK_RETRY_SCHEDULE", "300ms,300ms,300ms")
}

/// Registers `url` for `event_types` (None: all); returns the endpoint with its secret.
async fn register(server: &TestServer, url: &str, event_types: Option<&[&str]>) -> Value {
    let (status, endpoint) = server.post("/v1/webhooks", json!({"url": url, "event_types": event_types})).await;
    assert_eq!(status, 201, "{endpoint}");
    assert!(endpoint["secret"].as_str().unwrap().starts_with("whsec_"));
    endpoint
}

async fn connected(server: &TestServer) -> (Account, String, String) {
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    account.create_user("dave", &[]).await;
    let bucket = unique("hooks");
    account.create_bucket(&bucket, &[]).await;
    let integration = server.connect(&account, &unique("hooks")).await;
    (account, integration, bucket)
}

async fn grant(server: &TestServer, integration: &str, bucket: &str, user: &str, seconds: i64) -> Value {
    let body = json!({
        "integration_id": integration, "resource_arn": format!("arn:aws:s3:::{bucket}"), "access_level": "read",
        "principal": {"type": "iam_user", "name": user}, "duration_seconds": seconds,
        "request_id": unique("hook"), "approved_by": "approver@example.com"
    });
    let (status, grant) = server.call(Method::POST, "/v1/grants?wait=20", Some(body)).await;
    assert!(status == 201 || status == 202, "{grant}");
    grant
}

async fn status_of(server: &TestServer, id: &str, wanted: &str) -> Value {
    eventually(Duration::from_secs(60), &format!("grant {id} {wanted}"), || async {
        let (_, grant) = server.get(&format!("/v1/grants/{id}")).await;
        (grant["status"] == wanted).then_some(grant)
    })
    .await
}

/// The grant events the receiver got, as (type, grant id) in arrival order.
fn grant_events(receiver: &Receiver) -> Vec<(String, String)> {
    let mut events: Vec<Value> = receiver.received().iter().map(|r| r.json()).collect();
    events.sort_by_key(|e| e["data"]["event_sequence"].as_i64());
    events
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("grant."))
        .map(|e| (e["type"].as_str().unwrap().to_string(), e["data"]["id"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn every_event_type_arrives_once_per_transition_signed_for_a_standard_verifier() {
    let moto = Moto::shared();
    let proxy = FaultProxy::start(&moto.endpoint, Duration::from_secs(1)).await;
    let server = builder(moto)
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("JIT_IAM_AWS_MAX_ATTEMPTS", "1")
        .env("JIT_IAM_EXPIRY_NOTICE", "1h")
        .start()
        .await;
    let (account, integration, bucket) = connected(&server).await;
    let receiver = Receiver::start().await;
    let endpoint = register(&server, &receiver.url, None).await;
    let secret = endpoint["secret"].as_str().unwrap().to_string();

    // Activated, then expiring at once (10 minutes left, the notice is 1 hour).
    let a = grant(&server, &integration, &bucket, "alice", 600).await;
    let a_id = a["id"].as_str().unwrap().to_string();
    status_of(&server, &a_id, "active").await;
    receiver.wait_for(2, Duration::from_secs(20)).await;
    // Extended within the notice: a new expiring; extended beyond it: none.
    let (status, _) = server.post(&format!("/v1/grants/{a_id}/extend"), json!({"duration_seconds": 1200})).await;
    assert_eq!(status, 200);
    receiver.wait_for(4, Duration::from_secs(20)).await;
    let (status, _) = server.post(&format!("/v1/grants/{a_id}/extend"), json!({"duration_seconds": 3 * 3600})).await;
    assert_eq!(status, 200);
    receiver.wait_for(5, Duration::from_secs(20)).await;

    // Drift: detached by hand, found and repaired.
    let policy_arn = a["policy"]["arn"].as_str().unwrap().to_string();
    account.iam.detach_user_policy().user_name("alice").policy_arn(&policy_arn).send().await.unwrap();
    let (status, _) = server.post(&format!("/v1/integrations/{integration}/reconcile"), json!({})).await;
    assert_eq!(status, 202);
    receiver.wait_for(7, Duration::from_secs(30)).await;

    // A revocation that fails once, then recovers.
    proxy.fault_next("DetachUserPolicy", Fault::Unavailable);
    let (status, _) = server.post(&format!("/v1/grants/{a_id}/revoke"), json!({"reason": "done"})).await;
    assert_eq!(status, 202);
    let revoked = status_of(&server, &a_id, "revoked").await;
    assert_eq!(revoked["revoke_reason"], "revoked");

    // A grant that fails: its user is gone.
    account.iam.delete_user().user_name("dave").send().await.unwrap();
    let d = grant(&server, &integration, &bucket, "dave", 600).await;
    let d_id = d["id"].as_str().unwrap().to_string();
    status_of(&server, &d_id, "failed").await;

    // An account of a sync that fails.
    proxy.fault_next("GetAccountAuthorizationDetails", Fault::Unavailable);
    let (status, _) = server.post(&format!("/v1/integrations/{integration}/sync"), json!({})).await;
    assert_eq!(status, 202);

    let received = receiver.wait_for(12, Duration::from_secs(60)).await;
    let expected: Vec<(String, String)> = [
        ("grant.activated", &a_id),
        ("grant.expiring", &a_id),
        ("grant.extended", &a_id),
        ("grant.expiring", &a_id),
        ("grant.extended", &a_id),
        ("grant.drift_detected", &a_id),
        ("grant.drift_repaired", &a_id),
        ("grant.revoke_failing", &a_id),
        ("grant.revoke_recovered", &a_id),
        ("grant.revoked", &a_id),
        ("grant.failed", &d_id),
    ]
    .iter()
    .map(|(t, id)| (t.to_string(), id.to_string()))
    .collect();
    // Nothing more arrives (once per transition).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(grant_events(&receiver), expected, "{}", server.problems());
    let sync_failed = receiver.of_type("sync.failed");
    assert_eq!(sync_failed.len(), 1);
    assert_eq!(sync_failed[0].json()["data"]["account_id"], account.id.as_str());
    assert_eq!(sync_failed[0].json()["data"]["integration_id"], integration.as_str());
    assert_eq!(receiver.received().len(), 12);

    for request in &received {
        request.verify(&secret).unwrap_or_else(|e| panic!("{e}: {:?}", request.headers));
        assert_eq!(request.header("content-type"), "application/json");
        let body = request.json();
        let webhook_id = request.webhook_id();
        assert!(!webhook_id.contains('.') && !webhook_id.is_empty());
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    }
    let ids: std::collections::HashSet<String> = received.iter().map(|r| r.webhook_id()).collect();
    assert_eq!(ids.len(), received.len(), "every event has its own webhook-id");

    // `data` is the grant as the API showed it at that transition.
    let revoked_event = &receiver.of_type("grant.revoked")[0].json()["data"];
    let (_, now) = server.get(&format!("/v1/grants/{a_id}")).await;
    let mut without_sequence = revoked_event.clone();
    without_sequence.as_object_mut().unwrap().remove("event_sequence");
    assert_eq!(without_sequence, now);
    let failing = &receiver.of_type("grant.revoke_failing")[0].json()["data"];
    assert_eq!((failing["status"].as_str(), failing["revoke_failing"].as_bool()), (Some("revoking"), Some(true)));
    let activated = &receiver.of_type("grant.activated")[0].json()["data"];
    assert_eq!(activated["status"], "active");
    let extended = receiver.of_type("grant.extended");
    assert_ne!(extended[0].json()["data"]["expires_at"], extended[1].json()["data"]["expires_at"]);
    assert_eq!(receiver.of_type("grant.failed")[0].json()["data"]["last_error"]["aws"]["code"], "NoSuchEntity");

    // The deliveries are listed, each with its one successful attempt.
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let (status, page) = server.get(&format!("/v1/webhooks/{endpoint_id}/deliveries?status=succeeded")).await;
    assert_eq!(status, 200, "{page}");
    let deliveries = page["items"].as_array().unwrap();
    assert_eq!(deliveries.len(), 12);
    assert!(deliveries.iter().all(|d| d["attempts"].as_array().unwrap().len() == 1));
    assert_eq!(deliveries[0]["attempts"][0]["http_status"], 200);
    assert_eq!(deliveries[0]["attempts"][0]["response_body"], "received");
    assert!(server.metric("jit_iam_webhook_deliveries_total{outcome=\"succeeded\"}").await >= 12.0);
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_webhook_id_until_it_answers_2xx() {
    let server = builder(Moto::shared()).start().await;
    let receiver = Receiver::start().await;
    let endpoint = register(&server, &receiver.url, Some(&["grant.revoked"])).await;
    let id = endpoint["id"].as_str().unwrap();
    receiver.answer_next(&[Answer::Status(500), Answer::RetryAfter(503, 2), Answer::Status(200)]);
    let (status, delivery) = server.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    assert_eq!(status, 202, "{delivery}");
    assert_eq!(delivery["event_type"], "webhook.test");

    let received = receiver.wait_for(3, Duration::from_secs(20)).await;
    let ids: Vec<String> = received.iter().map(|r| r.webhook_id()).collect();
    assert_eq!(ids, vec![delivery["message_id"].as_str().unwrap().to_string(); 3]);
    assert!(received[2].at - received[1].at >= Duration::from_secs(2), "Retry-After is honoured");
    assert!(received[1].at - received[0].at < Duration::from_secs(2), "the schedule, without Retry-After");
    for request in &received {
        request.verify(endpoint["secret"].as_str().unwrap()).unwrap();
    }
    let delivery = eventually(Duration::from_secs(10), "the delivery succeeded", || async {
        let (_, page) = server.get(&format!("/v1/webhooks/{id}/deliveries")).await;
        let delivery = page["items"][0].clone();
        (delivery["status"] == "succeeded").then_some(delivery)
    })
    .await;
    let statuses: Vec<i64> =
        delivery["attempts"].as_array().unwrap().iter().map(|a| a["http_status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [500, 503, 200]);

    // Past the schedule: failed, visible, and retried by hand with the same id.
    receiver.answer_always(Answer::Status(500));
    let (_, delivery) = server.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    let failed = eventually(Duration::from_secs(20), "the delivery failed", || async {
        let (_, page) = server.get(&format!("/v1/webhooks/{id}/deliveries?status=failed")).await;
        page["items"].as_array().unwrap().first().cloned()
    })
    .await;
    assert_eq!(failed["id"], delivery["id"]);
    assert_eq!(failed["attempts"].as_array().unwrap().len(), 4, "the first attempt and three retries");
    receiver.answer_always(Answer::Status(204));
    let delivery_id = failed["id"].as_str().unwrap();
    let (status, retried) = server.post(&format!("/v1/webhooks/{id}/deliveries/{delivery_id}/retry"), json!({})).await;
    assert_eq!(status, 202, "{retried}");
    let last = receiver.wait_for(8, Duration::from_secs(20)).await.pop().unwrap();
    assert_eq!(last.webhook_id(), failed["message_id"].as_str().unwrap());
    let (status, _) =
        server.post(&format!("/v1/webhooks/{id}/deliveries/{}/retry", uuid::Uuid::new_v4()), json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn gone_disables_the_endpoint_until_it_is_enabled_again() {
    let server = builder(Moto::shared()).start().await;
    let receiver = Receiver::start().await;
    let endpoint = register(&server, &receiver.url, None).await;
    let id = endpoint["id"].as_str().unwrap();
    receiver.answer_next(&[Answer::Status(410)]);
    server.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    let disabled = eventually(Duration::from_secs(20), "the endpoint disabled", || async {
        let (_, endpoint) = server.get(&format!("/v1/webhooks/{id}")).await;
        (endpoint["enabled"] == false).then_some(endpoint)
    })
    .await;
    assert_eq!(disabled["disabled_reason"], "gone");
    assert!(disabled.get("secret").is_none(), "the secret is shown only at creation and rotation");
    let (_, page) = server.get(&format!("/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(page["items"][0]["status"], "failed");
    let (status, error) = server.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    assert_eq!((status.as_u16(), error["error"]["code"].as_str()), (409, Some("invalid_state")));

    let (status, enabled) = server.patch(&format!("/v1/webhooks/{id}"), json!({"enabled": true})).await;
    assert_eq!(status, 200);
    assert_eq!((enabled["enabled"].as_bool(), enabled["disabled_reason"].as_str()), (Some(true), None));
    server.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    receiver.wait_for(2, Duration::from_secs(20)).await;
    let (_, audit) = server.get(&format!("/v1/audit-events?target_id={id}")).await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["webhook.test_sent", "webhook.updated", "webhook.test_sent", "webhook.created"]);
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_until_the_overlap_ends() {
    let server = builder(Moto::shared()).env("JIT_IAM_WEBHOOK_SECRET_OVERLAP", "3s").start().await;
    let receiver = Receiver::start().await;
    let endpoint = register(&server, &receiver.url, None).await;
    let id = endpoint["id"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap();
    let (status, rotated) = server.post(&format!("/v1/webhooks/{id}/rotate-secret"), json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(old, new);
    assert!(rotated["previous_secret_expires_at"].is_string());
    server.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    let during = receiver.wait_for(1, Duration::from_secs(20)).await.remove(0);
    assert_eq!(during.header("webhook-signature").split(' ').count(), 2);
    during.verify(old).unwrap();
    during.verify(new).unwrap();

    tokio::time::sleep(Duration::from_secs(4)).await;
    server.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    let after = receiver.wait_for(2, Duration::from_secs(20)).await.remove(1);
    assert_eq!(after.header("webhook-signature").split(' ').count(), 1);
    after.verify(new).unwrap();
    assert!(after.verify(old).is_err(), "the old secret no longer signs");
    let (_, audit) = server.get(&format!("/v1/audit-events?action=webhook.secret_rotated&target_id={id}")).await;
    assert_eq!(audit["items"][0]["changes"]["secret"]["after"], "(secret)");
    assert!(!audit.to_string().contains(&new[6..]), "the trail never holds a secret");

    // Nor a URL's query string, where portals put tokens.
    let with_token = register(&server, &format!("{}/hooks?token=s3cr3t-portal-token", receiver.url), None).await;
    let path = format!("/v1/audit-events?action=webhook.created&target_id={}", with_token["id"].as_str().unwrap());
    let (_, audit) = server.get(&path).await;
    assert_eq!(audit["items"][0]["changes"]["url"]["after"], format!("{}/hooks?(secret)", receiver.url), "{audit}");
    assert!(!audit.to_string().contains("s3cr3t-portal-token"), "{audit}");
}

#[tokio::test]
async fn a_transition_committed_before_a_sigkill_is_delivered_after_the_restart() {
    let moto = Moto::shared();
    let db = TestDb::new();
    let mut first = builder(moto).database(db.clone()).start().await;
    let (_, integration, bucket) = connected(&first).await;
    let receiver = Receiver::start().await;
    register(&first, &receiver.url, Some(&["grant.activated"])).await;
    // The first attempt never gets an answer: the process dies with it in flight.
    receiver.answer_next(&[Answer::Hang]);
    let granted = grant(&first, &integration, &bucket, "alice", 600).await;
    receiver.wait_for(1, Duration::from_secs(20)).await;
    first.kill();

    let second = builder(moto).database(db).start().await;
    let received = receiver.wait_for(2, Duration::from_secs(60)).await;
    assert_eq!(received[0].webhook_id(), received[1].webhook_id());
    assert_eq!(received[1].json()["data"]["id"], granted["id"]);
    assert_eq!(received[1].json()["data"]["status"], "active");
    let pool = second.db().await;
    let (status, attempts): (String, i32) =
        sqlx::query_as("select status, attempts from webhook_deliveries").fetch_one(&pool).await.unwrap();
    assert_eq!((status.as_str(), attempts), ("succeeded", 2));
}

#[tokio::test]
async fn two_replicas_deliver_each_event_once() {
    let moto = Moto::shared();
    let db = TestDb::new();
    let a = builder(moto).database(db.clone()).start().await;
    let b = builder(moto).database(db).start().await;
    let receiver = Receiver::start().await;
    let endpoint = register(&a, &receiver.url, None).await;
    let id = endpoint["id"].as_str().unwrap();
    for n in 0..40 {
        let server = if n % 2 == 0 { &a } else { &b };
        let (status, _) = server.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
        assert_eq!(status, 202);
    }
    receiver.wait_for(40, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for request in receiver.received() {
        *counts.entry(request.webhook_id()).or_default() += 1;
    }
    assert_eq!(counts.len(), 40);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

/// One attempt as a replica would record it.
fn attempt(delivery: &ClaimedDelivery, http_status: Option<i32>, retry_in: Option<Duration>) -> AttemptRecord {
    let succeeded = http_status.is_some_and(|s| (200..300).contains(&s));
    AttemptRecord {
        delivery_id: delivery.delivery_id,
        attempt: delivery.attempts,
        attempted_at: chrono::Utc::now(),
        duration_ms: 3,
        http_status,
        error: http_status.is_none().then(|| "connection refused".to_string()),
        response_body: http_status.map(|_| "answer".to_string()),
        succeeded,
        gone: http_status == Some(410),
        retry_in: if succeeded || http_status == Some(410) { None } else { retry_in },
    }
}

#[tokio::test]
async fn a_batch_records_each_attempt_in_one_commit_and_nothing_for_a_claimer_that_lost_its_lease() {
    let db = TestDb::new();
    // The server migrates the database; with it gone no worker claims behind the test's back.
    builder(Moto::shared()).database(db.clone()).start().await.kill();
    let pool = db.pool().await;
    let secret = WebhookSecret(vec![7; 32]);
    let mut endpoints = Vec::new();
    for name in ["ok", "failing", "gone", "mixed", "dead", "fenced"] {
        let url = format!("https://{name}.example/hooks");
        let endpoint = storage::insert_endpoint(&pool, &url, Some(name), None, &secret).await.unwrap();
        endpoints.push(endpoint.endpoint_id);
    }
    let [ok, failing, gone, mixed, dead, fenced] = endpoints[..] else { unreachable!() };
    // Every attempt to `dead` has failed for two hours: the next failure disables it.
    sqlx::query("update webhook_endpoints set failing_since = now() - interval '2 hours' where endpoint_id = $1")
        .bind(dead)
        .execute(&pool)
        .await
        .unwrap();
    for endpoint in [ok, ok, failing, gone, mixed, mixed, dead, fenced] {
        storage::enqueue_test(&pool, endpoint, &json!({"n": 1})).await.unwrap();
    }
    let lease = Duration::from_secs(60);
    let claimed = storage::claim(&pool, "replica-a", lease, &[], 10, 20).await.unwrap();
    assert_eq!(claimed.len(), 8);
    let of = |endpoint| claimed.iter().filter(move |d| d.endpoint_id == endpoint);

    // `fenced`'s lease runs out and replica b claims it again: a's record of it must not count.
    sqlx::query("update webhook_deliveries set lease_expires_at = now() - interval '1 second' where endpoint_id = $1")
        .bind(fenced)
        .execute(&pool)
        .await
        .unwrap();
    let reclaimed = storage::claim(&pool, "replica-b", lease, &[], 10, 20).await.unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert_eq!((reclaimed[0].endpoint_id, reclaimed[0].attempts), (fenced, 2));

    let retry = Some(Duration::from_secs(300));
    let mut records = Vec::new();
    records.extend(of(ok).map(|d| attempt(d, Some(204), retry)));
    records.extend(of(failing).map(|d| attempt(d, Some(500), retry)));
    records.extend(of(gone).map(|d| attempt(d, Some(410), retry)));
    // `mixed`: a failure, then a success, in the order they finished.
    let mut mixed_deliveries = of(mixed);
    records.push(attempt(mixed_deliveries.next().unwrap(), None, retry));
    records.push(attempt(mixed_deliveries.next().unwrap(), Some(200), retry));
    // The retry schedule is used up: failed for good.
    records.extend(of(dead).map(|d| attempt(d, None, None)));
    records.extend(of(fenced).map(|d| attempt(d, Some(200), retry)));
    let disable_after = Duration::from_secs(3600);
    let recorded = storage::finish_attempts(&pool, "replica-a", &records, disable_after).await.unwrap();
    assert_eq!(recorded.len(), 7, "every attempt but the fenced one");
    assert!(!recorded.contains(&reclaimed[0].delivery_id));

    let deliveries: Vec<(Uuid, String, i32, Option<String>, bool, bool, i64)> = sqlx::query_as(
        "select endpoint_id, status, attempts, lease_owner,
                coalesce(next_attempt_at > now() + interval '200 seconds', false),
                finished_at is not null, (select count(*) from webhook_attempts a where a.delivery_id = d.delivery_id)
         from webhook_deliveries d",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut by_endpoint: HashMap<Uuid, Vec<(String, i32, Option<String>, bool, bool, i64)>> = HashMap::new();
    for (endpoint, status, attempts, owner, retry_later, finished, rows) in deliveries {
        by_endpoint.entry(endpoint).or_default().push((status, attempts, owner, retry_later, finished, rows));
    }
    let done = |status: &str| (status.to_string(), 1, None, false, true, 1);
    assert_eq!(by_endpoint[&ok], [done("succeeded"), done("succeeded")]);
    assert_eq!(by_endpoint[&failing], [("pending".to_string(), 1, None, true, false, 1)], "retried per the schedule");
    assert_eq!(by_endpoint[&gone], [done("failed")]);
    let mut mixed_rows = by_endpoint[&mixed].clone();
    mixed_rows.sort();
    assert_eq!(mixed_rows, [("pending".to_string(), 1, None, true, false, 1), done("succeeded")]);
    assert_eq!(by_endpoint[&dead], [done("failed")]);
    // Still replica b's, its attempt 2 under way, and no attempt row from a.
    assert_eq!(by_endpoint[&fenced], [("pending".to_string(), 2, Some("replica-b".to_string()), false, false, 0)]);

    let health: HashMap<Uuid, (bool, Option<String>, bool)> = sqlx::query_as::<_, (Uuid, bool, Option<String>, bool)>(
        "select endpoint_id, enabled, disabled_reason, failing_since is not null from webhook_endpoints",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, enabled, reason, failing)| (id, (enabled, reason, failing)))
    .collect();
    assert_eq!(health[&ok], (true, None, false));
    assert_eq!(health[&failing], (true, None, true));
    assert_eq!(health[&gone], (false, Some("gone".to_string()), true));
    assert_eq!(health[&mixed], (true, None, false), "its last attempt succeeded");
    assert_eq!(health[&dead], (false, Some("failing".to_string()), true));
    assert_eq!(health[&fenced], (true, None, false));

    // One statement, one commit: every attempt row of the batch has the same transaction.
    let (rows, transactions): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct xmin::text) from webhook_attempts")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((rows, transactions), (7, 1));

    // Replica b's own record of its attempt counts; a second record of the same attempt does not.
    let again = [attempt(&reclaimed[0], Some(200), retry)];
    assert_eq!(storage::finish_attempts(&pool, "replica-b", &again, disable_after).await.unwrap().len(), 1);
    assert!(storage::finish_attempts(&pool, "replica-b", &again, disable_after).await.unwrap().is_empty());
    let (status, attempt_number): (String, i32) = sqlx::query_as(
        "select d.status, a.attempt from webhook_deliveries d join webhook_attempts a using (delivery_id)
         where d.endpoint_id = $1",
    )
    .bind(fenced)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), attempt_number), ("succeeded", 2));
}

#[tokio::test]
async fn deliveries_recorded_together_keep_each_endpoints_outcome_and_the_retry_schedule() {
    let server = builder(Moto::shared()).start().await;
    let live = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.answer_always(Answer::Status(500));
    let live_id = register(&server, &live.url, None).await["id"].as_str().unwrap().to_string();
    let failing_id = register(&server, &failing.url, None).await["id"].as_str().unwrap().to_string();
    const EVENTS: usize = 30;
    for _ in 0..EVENTS {
        for id in [&live_id, &failing_id] {
            let (status, _) = server.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
            assert_eq!(status, 202);
        }
    }
    // The first attempt and three retries (300ms each) of every delivery to the failing one.
    failing.wait_for(4 * EVENTS, Duration::from_secs(60)).await;
    live.wait_for(EVENTS, Duration::from_secs(30)).await;
    let pool = server.db().await;
    let rows = eventually(Duration::from_secs(20), "every delivery finished", || async {
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "select e.url, d.status, count(*), sum(d.attempts),
                    (select count(*) from webhook_attempts a join webhook_deliveries x using (delivery_id)
                     where x.endpoint_id = e.endpoint_id and a.http_status = case when e.url = $1 then 200 else 500 end)
             from webhook_deliveries d join webhook_endpoints e using (endpoint_id)
             group by e.url, e.endpoint_id, d.status order by e.url = $1 desc",
        )
        .bind(&live.url)
        .fetch_all(&pool)
        .await
        .unwrap();
        (rows.len() == 2 && rows.iter().all(|r| r.1 != "pending")).then_some(rows)
    })
    .await;
    let n = EVENTS as i64;
    assert_eq!(rows[0], (live.url.clone(), "succeeded".to_string(), n, n, n));
    assert_eq!(rows[1], (failing.url.clone(), "failed".to_string(), n, 4 * n, 4 * n));
    // Each receiver got each event (its own webhook-id) as many times as recorded, no more.
    let count = |receiver: &Receiver| {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for request in receiver.received() {
            *counts.entry(request.webhook_id()).or_default() += 1;
        }
        counts
    };
    let (live_counts, failing_counts) = (count(&live), count(&failing));
    assert!(live_counts.len() == EVENTS && live_counts.values().all(|n| *n == 1), "{live_counts:?}");
    assert!(failing_counts.len() == EVENTS && failing_counts.values().all(|n| *n == 4), "{failing_counts:?}");
    let (_, endpoint) = server.get(&format!("/v1/webhooks/{failing_id}")).await;
    assert_eq!(endpoint["enabled"], true, "failing for less than JIT_IAM_WEBHOOK_DISABLE_AFTER");
    assert!(server.metric("jit_iam_webhook_deliveries_total{outcome=\"failed\"}").await >= EVENTS as f64);
}

#[tokio::test]
async fn a_dead_endpoint_does_not_delay_a_live_one() {
    let server = builder(Moto::shared()).env("JIT_IAM_WEBHOOK_CONCURRENCY", "8").start().await;
    let (_, integration, bucket) = connected(&server).await;
    let granted = grant(&server, &integration, &bucket, "alice", 600).await;
    let grant_id = granted["id"].as_str().unwrap();
    status_of(&server, grant_id, "active").await;
    let dead = Receiver::start().await;
    dead.answer_always(Answer::Hang);
    let live = Receiver::start().await;
    register(&server, &dead.url, Some(&["grant.extended"])).await;
    register(&server, &live.url, Some(&["grant.extended"])).await;

    let started = std::time::Instant::now();
    for n in 0..20 {
        let (status, _) =
            server.post(&format!("/v1/grants/{grant_id}/extend"), json!({"duration_seconds": 700 + n})).await;
        assert_eq!(status, 200);
    }
    live.wait_for(20, Duration::from_secs(10)).await;
    // The dead endpoint holds at most a quarter of the slots; none of its attempts has timed out yet.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(dead.received().len() <= 2, "{} attempts in flight to the dead endpoint", dead.received().len());
}

#[tokio::test]
async fn urls_are_refused_by_the_address_rules_at_registration_and_at_delivery() {
    let moto = Moto::shared();
    let db = TestDb::new();
    let strict = TestServer::builder(moto).database(db.clone()).start().await;
    for url in [
        "http://portal.example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://localhost:8443/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hooks",
        "https://10.0.0.8/hooks",
        "https://[fd00:ec2::254]/",
        "https://user:password@portal.example.com/hooks",
        "file:///etc/passwd",
    ] {
        let (status, error) = strict.post("/v1/webhooks", json!({"url": url})).await;
        assert_eq!(status, 422, "{url}: {error}");
        assert_eq!(error["error"]["field"], "url", "{url}: {error}");
    }
    let (status, error) =
        strict.post("/v1/webhooks", json!({"url": "https://x.example", "event_types": ["grant.gone"]})).await;
    assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (422, Some("event_types[0]")));
    let (status, error) = strict.post("/v1/webhooks", json!({"url": "https://x.example", "event_types": []})).await;
    assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (422, Some("event_types")));
    let (_, page) = strict.get("/v1/webhooks").await;
    assert_eq!(page["items"], json!([]), "nothing registered");

    // Registered where it was allowed; a process without the settings refuses to send there.
    let receiver = Receiver::start().await;
    let open = builder(moto).database(db).start().await;
    let endpoint = register(&open, &receiver.url, None).await;
    drop(open);
    let id = endpoint["id"].as_str().unwrap();
    strict.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    let attempt = eventually(Duration::from_secs(20), "a refused attempt", || async {
        let (_, page) = strict.get(&format!("/v1/webhooks/{id}/deliveries")).await;
        page["items"][0]["attempts"].as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert!(attempt["error"].as_str().unwrap().contains("over https"), "{attempt}");
    assert!(receiver.received().is_empty());
}

/// Every event type is emitted by some path, and every path emits an event
/// type: the triggers of the migrations call `webhook_enqueue` with a literal
/// type, or with `replace(new.kind, ...)` of the kinds their trigger's `when`
/// admits; the Rust code inserts into `webhook_messages` with a literal type
/// (`webhook.test`). A new `EventType` without an emitting path fails here.
#[test]
fn every_event_type_is_emitted_by_some_path() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Event type -> the file that emits it.
    let mut emitted: BTreeMap<String, String> = BTreeMap::new();
    for path in files_ending(&root.join("migrations"), ".sql") {
        let sql = without_comments(&std::fs::read_to_string(&path).unwrap(), "--");
        let file = path.strip_prefix(root).unwrap().display().to_string();
        for (at, _) in sql.match_indices("webhook_enqueue(") {
            if sql[..at].trim_end().ends_with("function") {
                continue; // The definition, not a call.
            }
            let first = first_argument(&sql[at + "webhook_enqueue(".len()..]);
            for event_type in types_of(&sql, at, first) {
                emitted.insert(event_type, file.clone());
            }
        }
    }
    for path in files_ending(&root.join("src"), ".rs") {
        let code = without_comments(&std::fs::read_to_string(&path).unwrap(), "//");
        let file = path.strip_prefix(root).unwrap().display().to_string();
        for (at, _) in code.match_indices("insert into webhook_messages") {
            let values = code[at..].find("values (").map(|i| at + i + "values (".len()).expect("insert ... values (");
            let first = first_argument(&code[values..]);
            let event_type =
                literal(first).unwrap_or_else(|| panic!("{file}: a message of a type not written out: {first}"));
            emitted.insert(event_type, file.clone());
        }
    }
    for event_type in emitted.keys() {
        assert!(
            EventType::parse(event_type).is_some(),
            "{} emits `{event_type}`, not an EventType",
            emitted[event_type]
        );
    }
    let never: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).filter(|t| !emitted.contains_key(*t)).collect();
    assert!(never.is_empty(), "no path emits {never:?} (emitted: {emitted:?})");
}

/// The event types a `webhook_enqueue` call at `at` emits, its first argument being `first`.
fn types_of(sql: &str, at: usize, first: &str) -> Vec<String> {
    if let Some(event_type) = literal(first) {
        return vec![event_type];
    }
    // `replace(new.kind, 'drift_', 'grant.drift_')`: of each kind the function's triggers admit.
    let replace = first.strip_prefix("replace(new.kind,").and_then(|rest| rest.strip_suffix(')'));
    let Some((from, to)) = replace.and_then(|r| r.split_once(',')).and_then(|(f, t)| Some((literal(f)?, literal(t)?)))
    else {
        panic!("an event type the test cannot read: {first}");
    };
    let function = sql[..at].rsplit_once("create function ").expect("called in a function").1;
    let function = &function[..function.find('(').unwrap()];
    let mut kinds = Vec::new();
    for (call, _) in sql.match_indices(&format!("execute function {function}()")) {
        let trigger = &sql[sql[..call].rfind("create trigger").expect("a trigger")..call];
        let admitted = trigger.split_once("new.kind in (").map(|(_, rest)| rest.split_once(')').unwrap().0);
        let admitted = admitted.unwrap_or_else(|| panic!("the trigger does not say which kinds run {function}"));
        kinds.extend(admitted.split(',').map(|kind| literal(kind).expect("a kind")));
    }
    assert!(!kinds.is_empty(), "no trigger runs {function}");
    kinds.into_iter().map(|kind| kind.replace(&from, &to)).collect()
}

/// The text up to the first comma outside parentheses, trimmed.
fn first_argument(args: &str) -> &str {
    let mut depth = 0;
    for (i, c) in args.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return args[..i].trim(),
            ')' => depth -= 1,
            ',' if depth == 0 => return args[..i].trim(),
            _ => {}
        }
    }
    args.trim()
}

/// `'text'` -> `text`; anything else is not a literal.
fn literal(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    (!inner.contains('\'')).then(|| inner.to_string())
}

fn without_comments(text: &str, marker: &str) -> String {
    text.lines().filter(|line| !line.trim_start().starts_with(marker)).collect::<Vec<_>>().join("\n")
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
