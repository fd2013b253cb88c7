//! Retention: with short settings, what is older than them is pruned and what
//! is newer, or still live, is kept; the audit trail is never pruned, and the
//! API still answers for a grant whose events are gone. Rows are made old by
//! moving their timestamps back in Postgres.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::support::{eventually, random_account_id, unique, Moto, Receiver, TestServer};

async fn grant(server: &TestServer, integration: &str, bucket: &str, user: &str) -> String {
    let body = json!({
        "integration_id": integration, "resource_arn": format!("arn:aws:s3:::{bucket}"), "access_level": "read",
        "principal": {"type": "iam_user", "name": user}, "duration_seconds": 600,
        "request_id": unique("retention"), "approved_by": "approver@example.com"
    });
    let (status, grant) = server.call(Method::POST, "/v1/grants?wait=20", Some(body)).await;
    assert_eq!((status.as_u16(), grant["status"].as_str()), (202, Some("active")), "{grant}");
    grant["id"].as_str().unwrap().to_string()
}

async fn count(db: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

async fn items(server: &TestServer, path: &str) -> Vec<Value> {
    let (status, page) = server.get(path).await;
    assert_eq!(status, 200, "{path}: {page}");
    page["items"].as_array().unwrap().clone()
}

/// Moves timestamps two hours back, past the one-hour retention, triggers
/// (append-only, webhooks) off for the moment.
async fn age(db: &PgPool, statements: &[String]) {
    let mut tx = db.begin().await.unwrap();
    sqlx::query("set local session_replication_role = replica").execute(&mut *tx).await.unwrap();
    for statement in statements {
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn what_is_older_than_the_retention_is_pruned_and_the_rest_kept() {
    let server = TestServer::builder(Moto::shared())
        .env("JIT_IAM_WEBHOOK_ALLOW_HTTP", "true")
        .env("JIT_IAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
        .env("JIT_IAM_RETAIN_GRANT_EVENTS", "1h")
        .env("JIT_IAM_ORPHAN_GRACE", "1h")
        .env("JIT_IAM_RETAIN_WEBHOOK_DELIVERIES", "1h")
        .env("JIT_IAM_RETAIN_RUNS", "1h")
        .env("JIT_IAM_PRUNE_INTERVAL", "1s")
        .env("JIT_IAM_RECONCILE_INTERVAL", "0")
        .env("JIT_IAM_EXPIRY_NOTICE", "1m")
        .start()
        .await;
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    account.create_user("dave", &[]).await;
    let bucket = unique("retention");
    account.create_bucket(&bucket, &[]).await;
    let integration = server.connect(&account, &unique("retention")).await;
    let receiver = Receiver::start().await;
    let (status, endpoint) = server.post("/v1/webhooks", json!({"url": receiver.url})).await;
    assert_eq!(status, 201, "{endpoint}");

    // `ended`: activated and revoked; `live`: active.
    let ended = grant(&server, &integration, &bucket, "alice").await;
    let live = grant(&server, &integration, &bucket, "dave").await;
    let (status, _) = server.post(&format!("/v1/grants/{ended}/revoke"), json!({})).await;
    assert_eq!(status, 202);
    eventually(Duration::from_secs(60), "the grant revoked", || async {
        let (_, grant) = server.get(&format!("/v1/grants/{ended}")).await;
        (grant["status"] == "revoked").then_some(())
    })
    .await;
    receiver.wait_for(3, Duration::from_secs(30)).await;
    // A second sync and two reconciliations: the first of each becomes old history.
    let (status, _) = server.post(&format!("/v1/integrations/{integration}/sync"), json!({})).await;
    assert_eq!(status, 202);
    server.wait_for_sync(&integration).await;
    for _ in 0..2 {
        let (status, run) = server.post(&format!("/v1/integrations/{integration}/reconcile"), json!({})).await;
        assert_eq!(status, 202, "{run}");
        let id = run["id"].as_str().unwrap().to_string();
        eventually(Duration::from_secs(60), "the reconciliation to finish", || async {
            let (_, run) = server.get(&format!("/v1/integrations/{integration}/reconciliations/{id}")).await;
            (run["status"] != "queued" && run["status"] != "running").then_some(())
        })
        .await;
    }

    let db = server.db().await;
    let events_path = |id: &str| format!("/v1/grants/{id}/events");
    let live_events = items(&server, &events_path(&live)).await.len();
    assert!(!items(&server, &events_path(&ended)).await.is_empty());
    let audit = count(&db, "select count(*) from audit_events").await;
    let live_messages = format!("select count(*) from webhook_messages where grant_id = '{live}'");
    assert_eq!(count(&db, &live_messages).await, 1);
    let ended_messages = format!("select count(*) from webhook_messages where grant_id = '{ended}'");
    assert_eq!(count(&db, &ended_messages).await, 2);

    // Everything two hours old but the live grant's delivery, and the audit trail.
    age(
        &db,
        &[
            format!("update grants set finished_at = finished_at - interval '2h' where grant_id = '{ended}'"),
            "update grant_events set created_at = created_at - interval '2h'".into(),
            "update audit_events set occurred_at = occurred_at - interval '2h'".into(),
            "update webhook_messages set occurred_at = occurred_at - interval '2h'".into(),
            format!(
                "update webhook_deliveries d set finished_at = finished_at - interval '2h' from webhook_messages m
                 where m.message_id = d.message_id and m.grant_id = '{ended}'"
            ),
            "update sync_runs set finished_at = finished_at - interval '2h'".into(),
            "update reconcile_runs set finished_at = finished_at - interval '2h'".into(),
        ],
    )
    .await;

    eventually(Duration::from_secs(30), "the ended grant's events pruned", || async {
        items(&server, &events_path(&ended)).await.is_empty().then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "old deliveries, messages and runs pruned", || async {
        let left = count(
            &db,
            &format!(
                "select (select count(*) from webhook_messages where grant_id = '{ended}')
                      + (select count(*) from sync_runs) - 1 + (select count(*) from reconcile_runs) - 1"
            ),
        )
        .await;
        (left == 0).then_some(())
    })
    .await;

    // The grant stays, and the API answers for it.
    let (status, grant) = server.get(&format!("/v1/grants/{ended}")).await;
    assert_eq!((status.as_u16(), grant["status"].as_str()), (200, Some("revoked")), "{grant}");
    // Live: its events, and its message, whose delivery finished within the retention.
    assert_eq!(items(&server, &events_path(&live)).await.len(), live_events);
    assert_eq!(count(&db, &live_messages).await, 1);
    let deliveries = count(&db, "select count(*) from webhook_deliveries").await;
    assert_eq!(deliveries, 1);
    assert_eq!(count(&db, "select count(*) from webhook_attempts").await, 1);
    // The latest run of each kind, the one the API shows as the last sync.
    let syncs = items(&server, &format!("/v1/integrations/{integration}/syncs")).await;
    assert_eq!(syncs.len(), 1);
    let last_sync = count(&db, "select count(*) from accounts a join sync_runs r on r.sync_id = a.last_sync_id").await;
    assert_eq!(last_sync, 1);
    assert_eq!(items(&server, &format!("/v1/integrations/{integration}/reconciliations")).await.len(), 1);
    assert_eq!(count(&db, "select count(*) from audit_events").await, audit);
    for table in ["grant_events", "webhook_deliveries", "webhook_attempts", "webhook_messages", "sync_runs"] {
        let pruned = server.metric(&format!("jit_iam_pruned_rows_total{{table=\"{table}\"}}")).await;
        assert!(pruned >= 1.0, "{table}: {pruned}");
    }

    // A live grant's history stays append-only, even for the database's owner.
    let refused = sqlx::query(&format!("delete from grant_events where grant_id = '{live}'"))
        .execute(&db)
        .await
        .expect_err("a live grant's events are kept");
    assert!(refused.to_string().contains("append-only"), "{refused}");
}
