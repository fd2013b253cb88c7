//! The grant policy of an integration (`options.access_levels`,
//! `options.max_duration`) and the rules an extension is held to: the
//! integration still offers what the grant holds, and the grant's whole
//! lifetime stays within the maximum.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{eventually, random_account_id, unique, Account, Moto, ServerBuilder, TestServer};

/// One account with a user and a tagged bucket, connected with `options`.
struct Fixture {
    server: TestServer,
    account: Account,
    integration: String,
    bucket: Value,
}

impl Fixture {
    async fn new(options: Value) -> Fixture {
        Self::with(TestServer::builder(Moto::shared()).env("JIT_IAM_MIN_GRANT", "1s"), options).await
    }

    async fn with(builder: ServerBuilder, mut options: Value) -> Fixture {
        let account = Moto::shared().account(&random_account_id()).await;
        account.create_user("alice", &[]).await;
        account.create_role("jit-iam-access", &[]).await;
        account.create_bucket(&unique("policy"), &[("team", "data")]).await;
        let server = builder.start().await;
        options["regions"] = json!(["us-east-1"]);
        let integration = server
            .create_integration(json!({
                "name": unique("policy"),
                "connection": "single_account",
                "root_account": {
                    "account_id": account.id, "access_role_arn": account.role_arn("jit-iam-access"),
                    "external_id": "external-id-123", "region": "us-east-1"
                },
                "options": options
            }))
            .await;
        let integration = integration["id"].as_str().unwrap().to_string();
        assert_eq!(server.wait_for_sync(&integration).await["status"], "succeeded");
        let buckets = server.browse_all(&format!("integration_id={integration}&type=s3_bucket")).await;
        let bucket = buckets.into_iter().next().expect("the bucket is offered");
        Fixture { server, account, integration, bucket }
    }

    fn body(&self, level: &str, seconds: i64) -> Value {
        json!({
            "integration_id": self.integration,
            "resource_id": self.bucket["id"],
            "access_level": level,
            "principal": {"type": "iam_user", "name": "alice"},
            "duration_seconds": seconds,
            "request_id": unique("req"),
            "approved_by": "approver@example.com"
        })
    }

    /// Submits and waits until the grant is active.
    async fn grant(&self, level: &str, seconds: i64) -> Value {
        let (status, grant) = self.server.post("/v1/grants?wait=20", self.body(level, seconds)).await;
        assert_eq!((status.as_u16(), grant["status"].as_str()), (202, Some("active")), "{grant}");
        grant
    }

    async fn extend(&self, grant: &Value, body: Value) -> (u16, Value) {
        let path = format!("/v1/grants/{}/extend", grant["id"].as_str().unwrap());
        let (status, answer) = self.server.post(&path, body).await;
        (status.as_u16(), answer)
    }

    fn path(&self) -> String {
        format!("/v1/integrations/{}", self.integration)
    }
}

/// Status, error code and field of a refusal.
fn refusal(status: u16, error: &Value) -> (u16, Option<&str>, Option<&str>) {
    (status, error["error"]["code"].as_str(), error["error"]["field"].as_str())
}

#[tokio::test]
async fn the_integrations_levels_and_longest_grant_are_enforced_at_submission_and_preview() {
    let f = Fixture::new(json!({"access_levels": {"s3_bucket": ["read"]}, "max_duration": 3600})).await;
    for path in ["/v1/grants", "/v1/grants/preview"] {
        let (status, error) = f.server.post(path, f.body("write", 600)).await;
        assert_eq!(refusal(status.as_u16(), &error), (422, Some("validation_failed"), Some("access_level")), "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("integration's options.access_levels") && message.contains("read"), "{message}");

        let (status, error) = f.server.post(path, f.body("read", 7200)).await;
        assert_eq!(refusal(status.as_u16(), &error), (422, Some("validation_failed"), Some("duration_seconds")));
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("1h") && message.contains("integration's options.max_duration"), "{message}");

        let mut body = f.body("read", 0);
        body["duration_seconds"] = Value::Null;
        body["expires_at"] = json!((chrono::Utc::now() + chrono::Duration::seconds(7200)).to_rfc3339());
        let (status, error) = f.server.post(path, body).await;
        assert_eq!(refusal(status.as_u16(), &error), (422, Some("validation_failed"), Some("expires_at")));
    }
    let (status, preview) = f.server.post("/v1/grants/preview", f.body("read", 3600)).await;
    assert_eq!(status, 200, "{preview}");
    let grant = f.grant("read", 3600).await;
    assert_eq!(grant["access_level"], "read");

    // The options themselves are checked, at creation and at change.
    let (status, integration) = f.server.get(&f.path()).await;
    assert_eq!(status, 200);
    assert_eq!(integration["options"]["access_levels"], json!({"s3_bucket": ["read"]}));
    assert_eq!(integration["options"]["max_duration"], 3600);
    for (options, field) in [
        (json!({"access_levels": {"s3_bucket": ["read", "connect"]}}), "options.access_levels.s3_bucket[1]"),
        (json!({"access_levels": {"s3_bucket": ["read", "fly"]}}), "options.access_levels.s3_bucket[1]"),
        (json!({"access_levels": {"s3_bucket": ["read", "read"]}}), "options.access_levels.s3_bucket[1]"),
        (json!({"access_levels": {"dynamodb_table": []}}), "options.access_levels.dynamodb_table"),
        (json!({"max_duration": 8 * 86_400}), "options.max_duration"),
        (json!({"max_duration": 0}), "options.max_duration"),
        (json!({"max_duration": "1h"}), "options.max_duration"),
    ] {
        let (status, error) = f.server.patch(&f.path(), json!({"options": options.clone()})).await;
        assert_eq!(refusal(status.as_u16(), &error), (422, Some("validation_failed"), Some(field)), "{options}");
        let (status, error) = f
            .server
            .post(
                "/v1/integrations",
                json!({
                    "name": unique("bad"), "connection": "single_account",
                    "root_account": {"account_id": f.account.id, "access_role_arn": f.account.role_arn("jit-iam-access"),
                                     "region": "us-east-1"},
                    "options": options.clone()
                }),
            )
            .await;
        assert_eq!(refusal(status.as_u16(), &error), (422, Some("validation_failed"), Some(field)), "{options}");
    }
    // An empty list: nothing of that type may be granted.
    let (status, updated) = f.server.patch(&f.path(), json!({"options": {"access_levels": {"s3_bucket": []}}})).await;
    assert_eq!(status, 200, "{updated}");
    let (status, error) = f.server.post("/v1/grants/preview", f.body("read", 600)).await;
    assert_eq!(refusal(status.as_u16(), &error), (422, Some("validation_failed"), Some("access_level")), "{error}");
    // `null` goes back to every level and the service's maximum.
    let patch = json!({"options": {"access_levels": null, "max_duration": null}});
    let (status, updated) = f.server.patch(&f.path(), patch).await;
    assert_eq!(status, 200, "{updated}");
    assert!(updated["options"].get("access_levels").is_none() && updated["options"].get("max_duration").is_none());
    let (status, preview) = f.server.post("/v1/grants/preview", f.body("write", 7200)).await;
    assert_eq!(status, 200, "{preview}");
}

#[tokio::test]
async fn narrowing_the_levels_leaves_live_grants_but_refuses_their_extension() {
    let f = Fixture::new(json!({})).await;
    let grant = f.grant("write", 600).await;
    let policy = grant["policy"]["arn"].as_str().unwrap().to_string();
    let patch = json!({"options": {"access_levels": {"s3_bucket": ["read"]}}});
    let (status, updated) = f.server.patch(&f.path(), patch).await;
    assert_eq!(status, 200, "{updated}");

    let (status, error) = f.extend(&grant, json!({"duration_seconds": 60})).await;
    assert_eq!(refusal(status, &error), (422, Some("validation_failed"), Some("access_level")), "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("integration's options.access_levels"));
    let (_, after) = f.server.get(&format!("/v1/grants/{}", grant["id"].as_str().unwrap())).await;
    assert_eq!((after["status"].as_str(), &after["expires_at"]), (Some("active"), &grant["expires_at"]));
    assert!(f.account.user_policies("alice").await.contains(&policy), "the live grant keeps its access");
}

#[tokio::test]
async fn a_resource_no_longer_offered_cannot_be_extended() {
    let f = Fixture::new(json!({})).await;
    let grant = f.grant("read", 600).await;
    let (status, extended) = f.extend(&grant, json!({"duration_seconds": 60})).await;
    assert_eq!(status, 200, "offered: extensible ({extended})");

    let patch = json!({"options": {"tags": [{"key": "team", "value": "someone-else"}]}});
    let (status, updated) = f.server.patch(&f.path(), patch).await;
    assert_eq!(status, 200, "{updated}");
    let (status, sync) = f.server.post(&format!("{}/sync", f.path()), json!({})).await;
    assert_eq!(status, 202, "{sync}");
    assert_eq!(f.server.wait_for_sync(&f.integration).await["status"], "succeeded");
    assert!(f.server.browse_all(&format!("integration_id={}&type=s3_bucket", f.integration)).await.is_empty());

    for _ in 0..2 {
        let (status, error) = f.extend(&grant, json!({"duration_seconds": 60})).await;
        assert_eq!(refusal(status, &error), (409, Some("invalid_state"), None), "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains("no longer offered"), "{error}");
    }
}

#[tokio::test]
async fn extensions_never_take_a_grant_past_its_longest_lifetime_from_activation() {
    let builder = TestServer::builder(Moto::shared()).env("JIT_IAM_MIN_GRANT", "1s").env("JIT_IAM_MAX_GRANT", "60s");
    let f = Fixture::with(builder, json!({})).await;
    let grant = f.grant("read", 30).await;
    let activated: chrono::DateTime<chrono::Utc> = grant["activated_at"].as_str().unwrap().parse().unwrap();
    // Time passes: counted from now, each extension below would fit.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (status, extended) = f.extend(&grant, json!({"duration_seconds": 20})).await;
    assert_eq!(status, 200, "{extended}");
    for body in [
        json!({"duration_seconds": 20}),
        json!({"expires_at": (activated + chrono::Duration::seconds(70)).to_rfc3339()}),
    ] {
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        let (status, error) = f.extend(&grant, body).await;
        assert_eq!(refusal(status, &error), (422, Some("validation_failed"), Some(field.as_str())), "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("1m") && message.contains("activation"), "{message}");
    }
    let (status, extended) =
        f.extend(&grant, json!({"expires_at": (activated + chrono::Duration::seconds(59)).to_rfc3339()})).await;
    assert_eq!(status, 200, "within the lifetime: {extended}");
}

#[tokio::test]
async fn nothing_is_granted_or_extended_once_deletion_started() {
    let f = Fixture::new(json!({})).await;
    let grant = f.grant("read", 600).await;
    let db = f.server.db().await;

    // Deletion midway: the row locked and marked `deleting`, the sweep not
    // committed yet. A submission in that moment waits, then is refused.
    let mut deletion = db.begin().await.unwrap();
    sqlx::query("select 1 from integrations where integration_id = $1::uuid for update")
        .bind(&f.integration)
        .execute(&mut *deletion)
        .await
        .unwrap();
    sqlx::query("update integrations set status = 'deleting' where integration_id = $1::uuid")
        .bind(&f.integration)
        .execute(&mut *deletion)
        .await
        .unwrap();
    let body = f.body("read", 600);
    let request_id = body["request_id"].as_str().unwrap().to_string();
    let submission = {
        let (url, token, client) = (f.server.url.clone(), f.server.token.clone(), f.server.client.clone());
        tokio::spawn(async move {
            let response = client.post(format!("{url}/v1/grants")).bearer_auth(token).json(&body).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        })
    };
    eventually(Duration::from_secs(10), "the submission to wait for the lock", || async {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        (waiting > 0).then_some(())
    })
    .await;
    deletion.commit().await.unwrap();
    let (status, error) = submission.await.unwrap();
    assert_eq!(refusal(status, &error), (409, Some("invalid_state"), Some("integration_id")), "{error}");
    let stored: i64 = sqlx::query_scalar("select count(*) from grants where request_id = $1")
        .bind(&request_id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored, 0, "no grant was let in after deletion started");

    // The live grant (left active above, as the sweep had not run) cannot be extended.
    let (status, error) = f.extend(&grant, json!({"duration_seconds": 60})).await;
    assert_eq!(refusal(status, &error), (409, Some("invalid_state"), None), "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("being deleted"), "{error}");

    // Nor after a real deletion.
    sqlx::query("update integrations set status = 'active' where integration_id = $1::uuid")
        .bind(&f.integration)
        .execute(&db)
        .await
        .unwrap();
    let (status, deleting) = f.server.delete(&format!("{}?revoke_grants=true", f.path())).await;
    assert_eq!((status.as_u16(), deleting["status"].as_str()), (202, Some("deleting")), "{deleting}");
    let (status, error) = f.extend(&grant, json!({"duration_seconds": 60})).await;
    assert_eq!(refusal(status, &error).0, 409, "{error}");
    let (status, error) = f.server.post("/v1/grants", f.body("read", 600)).await;
    assert_eq!(refusal(status.as_u16(), &error), (409, Some("invalid_state"), Some("integration_id")), "{error}");
}
