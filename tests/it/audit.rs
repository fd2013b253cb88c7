//! The audit trail: every change through the API recorded with its actor,
//! role, request id and changed fields, in the change's own transaction;
//! append-only in Postgres.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{random_account_id, unique, Moto, TestDb, TestServer};

/// Sends `body` as `role` with `x-request-id: request_id`.
async fn call(server: &TestServer, role: &str, method: Method, path: &str, body: Value, request_id: &str) -> Value {
    let response = server
        .client
        .request(method.clone(), format!("{}{path}", server.url))
        .bearer_auth(server.token_of(role))
        .header("x-request-id", request_id)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    answer
}

async fn audit(server: &TestServer, query: &str) -> Vec<Value> {
    let (status, page) = server.call_as("auditor", Method::GET, &format!("/v1/audit-events?{query}"), None).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// The one record of `action` on `target`.
async fn record_of(server: &TestServer, action: &str, target: &str) -> Value {
    let records = audit(server, &format!("action={action}&target_id={target}")).await;
    assert_eq!(records.len(), 1, "{action} on {target}: {records:?}");
    records[0].clone()
}

#[tokio::test]
async fn every_change_through_the_api_is_recorded_with_who_which_request_and_what() {
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    account.create_bucket(&unique("audit"), &[]).await;
    let server = TestServer::start().await;

    let created = call(
        &server,
        "admin",
        Method::POST,
        "/v1/integrations",
        json!({
            "name": unique("audit"), "connection": "single_account",
            "root_account": {
                "account_id": account.id, "access_role_arn": account.role_arn("jit-iam-access"),
                "external_id": "first-secret-external-id", "region": "us-east-1"
            },
            "options": {"regions": ["us-east-1"]}
        }),
        "req-create",
    )
    .await;
    let integration = created["id"].as_str().unwrap().to_string();
    let record = record_of(&server, "integration.created", &integration).await;
    assert_eq!(
        (&record["actor"], &record["role"], &record["request_id"], &record["target_type"]),
        (&json!("tests"), &json!("admin"), &json!("req-create"), &json!("integration"))
    );
    assert_eq!(record["changes"]["root_account.region"], json!({"before": null, "after": "us-east-1"}));
    assert_eq!(record["changes"]["root_account.external_id"], json!({"before": null, "after": "(secret)"}));
    assert_eq!(server.wait_for_sync(&integration).await["status"], "succeeded");

    let path = format!("/v1/integrations/{integration}");
    let patch = json!({"root_account": {"region": "eu-west-1", "external_id": "second-secret-external-id"}});
    call(&server, "admin", Method::PATCH, &path, patch, "req-patch").await;
    let record = record_of(&server, "integration.updated", &integration).await;
    assert_eq!(record["request_id"], "req-patch");
    assert_eq!(record["changes"]["root_account.region"], json!({"before": "us-east-1", "after": "eu-west-1"}));
    assert_eq!(record["changes"]["root_account.external_id"], json!({"before": "(secret)", "after": "(secret)"}));
    assert_eq!(record["changes"].as_object().unwrap().len(), 2, "{record}");
    let back = json!({"root_account": {"region": "us-east-1", "external_id": "external-id-123"}});
    call(&server, "admin", Method::PATCH, &path, back, "req-patch-back").await;

    // A change refused is recorded nowhere: the record is in the change's transaction.
    let other = server.connect(&account, &unique("audit-other")).await;
    let (_, taken) = server.get(&path).await;
    let (status, _) = server.patch(&format!("/v1/integrations/{other}"), json!({"name": taken["name"]})).await;
    assert_eq!(status, 409);
    assert!(audit(&server, &format!("action=integration.updated&target_id={other}")).await.is_empty());

    call(&server, "admin", Method::POST, &format!("{path}/sync"), json!({}), "req-sync").await;
    call(&server, "admin", Method::POST, &format!("{path}/check"), json!({}), "req-check").await;
    assert_eq!(record_of(&server, "integration.sync_requested", &integration).await["request_id"], "req-sync");
    assert_eq!(record_of(&server, "integration.checked", &integration).await["changes"]["ok"]["after"], true);

    // Grants, by the portal.
    let bucket = server.browse_all(&format!("integration_id={integration}&type=s3_bucket")).await.remove(0);
    let grant_body = |request_id: String| {
        json!({
            "integration_id": integration, "resource_id": bucket["id"], "access_level": "read",
            "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": 3600,
            "request_id": request_id, "approved_by": "approver@example.com", "reason": "audit test"
        })
    };
    let grant =
        call(&server, "portal", Method::POST, "/v1/grants?wait=20", grant_body(unique("r")), "req-submit").await;
    let grant_id = grant["id"].as_str().unwrap().to_string();
    let record = record_of(&server, "grant.submitted", &grant_id).await;
    assert_eq!((&record["actor"], &record["role"]), (&json!("portal"), &json!("portal")));
    assert_eq!(record["changes"]["principal.name"]["after"], "alice");
    assert_eq!(record["changes"]["approved_by"]["after"], "approver@example.com");

    let extend = json!({"duration_seconds": 600, "approved_by": "carol@example.com", "reason": "still on it"});
    let extended =
        call(&server, "portal", Method::POST, &format!("/v1/grants/{grant_id}/extend"), extend, "req-extend").await;
    let record = record_of(&server, "grant.extended", &grant_id).await;
    assert_eq!(
        record["changes"]["expires_at"]["before"].as_str().map(str::len),
        grant["expires_at"].as_str().map(str::len)
    );
    assert_eq!(record["changes"]["approved_by"]["after"], "carol@example.com");
    assert_eq!(record["changes"]["reason"]["after"], "still on it");
    assert_ne!(extended["expires_at"], grant["expires_at"]);

    let revoke = json!({"reason": "the deploy finished"});
    call(&server, "portal", Method::POST, &format!("/v1/grants/{grant_id}/revoke"), revoke, "req-revoke").await;
    let record = record_of(&server, "grant.revoked", &grant_id).await;
    assert_eq!(record["changes"]["status"], json!({"before": "active", "after": "revoking"}));
    assert_eq!(record["changes"]["reason"]["after"], "the deploy finished");
    let (_, events) = server.get(&format!("/v1/grants/{grant_id}/events?limit=1000")).await;
    let messages: Vec<&str> =
        events["items"].as_array().unwrap().iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("approved by carol@example.com: still on it")), "{messages:?}");
    assert!(messages.contains(&"revocation requested: the deploy finished"), "{messages:?}");

    // Deleting the integration revokes a live grant with the same events as a revoke on request.
    let live = call(&server, "portal", Method::POST, "/v1/grants?wait=20", grant_body(unique("r")), "req-live").await;
    let live_id = live["id"].as_str().unwrap();
    call(&server, "admin", Method::DELETE, &format!("{path}?revoke_grants=true"), Value::Null, "req-delete").await;
    let record = record_of(&server, "integration.deleted", &integration).await;
    assert_eq!(record["changes"]["revoked_grants"], json!({"before": 0, "after": 1}));
    let (_, events) = server.get(&format!("/v1/grants/{live_id}/events")).await;
    let by_deletion = events["items"].as_array().unwrap().iter().find(|e| e["to_status"] == "revoking").cloned();
    let by_deletion = by_deletion.expect("a revoking transition");
    assert_eq!((&by_deletion["from_status"], &by_deletion["actor"]), (&json!("active"), &json!("tests")));

    // Filters and pages.
    let all = audit(&server, "limit=1000").await;
    assert!(all.windows(2).all(|w| w[0]["id"].as_str() > w[1]["id"].as_str()), "newest first");
    assert!(all
        .iter()
        .all(|r| !r.to_string().contains("secret-external-id") && !r.to_string().contains("external-id-123")));
    let by_portal = audit(&server, "actor=portal").await;
    assert_eq!(by_portal.len(), 4, "{by_portal:?}");
    let mut paged = Vec::new();
    let mut query = "limit=2".to_string();
    loop {
        let (_, page) = server.get(&format!("/v1/audit-events?{query}")).await;
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(audit(&server, &format!("since={future}")).await.is_empty());
    let (status, error) = server.get("/v1/audit-events?action=grant.deleted").await;
    assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (400, Some("action")), "{error}");
}

#[tokio::test]
async fn the_audit_table_refuses_update_delete_and_truncate() {
    let server = TestServer::start().await;
    let account = Moto::shared().account(&random_account_id()).await;
    server.connect(&account, &unique("append-only")).await;
    let db = server.db().await;
    let before: i64 = sqlx::query_scalar("select count(*) from audit_events").fetch_one(&db).await.unwrap();
    assert!(before >= 1);
    for statement in
        ["update audit_events set actor = 'someone-else'", "delete from audit_events", "truncate audit_events"]
    {
        let error = sqlx::query(statement).execute(&db).await.expect_err(statement);
        assert!(error.to_string().contains("append-only"), "{statement}: {error}");
    }
    let after: i64 = sqlx::query_scalar("select count(*) from audit_events").fetch_one(&db).await.unwrap();
    let actors: Vec<String> =
        sqlx::query_scalar("select distinct actor from audit_events").fetch_all(&db).await.unwrap();
    assert_eq!((after, actors), (before, vec!["tests".to_string()]));
}

/// `serve` as a database user that owns nothing (scripts/service-user.sql,
/// after `jit-iam migrate` as the owner): it works, and it cannot undo the
/// trail: no trigger disabled, no audit or grant history row changed.
#[tokio::test]
async fn the_service_runs_as_a_user_that_cannot_touch_the_trail() {
    let db = TestDb::new();
    let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_jit-iam"))
        .arg("migrate")
        .env("DATABASE_URL", &db.url)
        .status()
        .unwrap();
    assert!(migrated.success());
    let owner = db.pool().await;
    // The role is the cluster's, shared by every test database; its grants are each database's.
    let _ = sqlx::query("create role jit_iam_service login").execute(&owner).await;
    sqlx::raw_sql(include_str!("../../scripts/service-user.sql")).execute(&owner).await.unwrap();
    let service_url = db.url.replace("postgres://postgres@", "postgres://jit_iam_service@");
    let server = TestServer::builder(Moto::shared())
        .database(db.clone())
        .env("DATABASE_URL", &service_url)
        .env("JIT_IAM_SKIP_MIGRATIONS", "true")
        .start()
        .await;
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    let bucket = unique("owner");
    account.create_bucket(&bucket, &[]).await;
    let integration = server.connect(&account, &unique("owns-nothing")).await;
    let items = server.browse_all(&format!("integration_id={integration}&type=s3_bucket")).await;
    let (status, grant) = server
        .post(
            "/v1/grants?wait=20",
            json!({
                "integration_id": integration, "resource_id": items[0]["id"], "access_level": "read",
                "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": 600,
                "request_id": unique("owns-nothing"), "approved_by": "approver@example.com"
            }),
        )
        .await;
    assert_eq!((status.as_u16(), grant["status"].as_str()), (202, Some("active")), "{grant}");

    let service = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&service_url).await.unwrap();
    for statement in [
        "alter table audit_events disable trigger all",
        "alter table grant_events disable trigger grant_events_no_update_or_delete",
        "drop trigger audit_events_no_update_or_delete on audit_events",
        "delete from audit_events",
        "update grant_events set message = 'nothing happened'",
        "delete from grant_events",
        "truncate grant_events",
        "update installation set installation_id = gen_random_uuid()",
    ] {
        let error = sqlx::query(statement).execute(&service).await.expect_err(statement);
        let refused = error.to_string();
        assert!(
            refused.contains("must be owner")
                || refused.contains("append-only")
                || refused.contains("permission denied"),
            "{statement}: {refused}"
        );
    }
    // Pruning goes through the owner's function, which keeps a live grant's events.
    let pruned: i64 = sqlx::query_scalar("select prune_grant_events(now(), 1000)").fetch_one(&service).await.unwrap();
    assert_eq!(pruned, 0);
    let events: i64 = sqlx::query_scalar("select count(*) from grant_events").fetch_one(&owner).await.unwrap();
    assert!(events >= 2, "the grant's history is intact");
}
