//! Webhooks to the approval portal: every event once per transition, signed
//! as Standard Webhooks says (checked by the reference library), retried with
//! the same id, durable across a SIGKILL, once across replicas, and sent only
//! where the address rules allow.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

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
