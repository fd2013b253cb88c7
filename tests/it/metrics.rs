//! `/metrics`: the gauges read from Postgres are refreshed by a background
//! task, so a scrape never queries the database; the optional token.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{random_account_id, unique, DatabaseProxy, Moto, TestDb, TestServer};

const ACTIVE: &str = r#"jit_iam_grants{status="active"}"#;

#[tokio::test]
async fn a_scrape_shows_a_grant_within_the_refresh_interval_and_answers_without_the_database() {
    let moto = Moto::shared();
    let account = moto.account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    account.create_role("deployer", &[]).await;
    let db = TestDb::new();
    let postgres = DatabaseProxy::start("127.0.0.1:5432").await;
    let server = TestServer::builder(moto)
        .database(db.clone())
        .env("DATABASE_URL", &format!("postgres://postgres@127.0.0.1:{}/{}", postgres.port, db.name))
        .env("JIT_IAM_METRICS_REFRESH", "200ms")
        .start()
        .await;
    let integration = server.connect(&account, &unique("metrics")).await;
    let role = server.browse_all(&format!("integration_id={integration}&type=iam_role&q=deployer")).await.remove(0);
    // No JIT_IAM_METRICS_TOKEN: open.
    assert_eq!(server.metric(ACTIVE).await, 0.0);

    let (status, grant) = server
        .post(
            "/v1/grants?wait=20",
            json!({
                "integration_id": integration, "resource_id": role["id"], "access_level": "assume",
                "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": 3600,
                "request_id": unique("req"), "approved_by": "approver@example.com"
            }),
        )
        .await;
    assert_eq!((status, grant["status"].as_str()), (StatusCode::ACCEPTED, Some("active")), "{grant}");
    let active_at = Instant::now();
    server.wait_for_metric(ACTIVE, 1.0).await;
    // One refresh (200 ms), with room for a loaded machine.
    assert!(active_at.elapsed() < Duration::from_secs(2), "the gauge took {:?}", active_at.elapsed());

    // Postgres gone: /readyz says so, /metrics still answers at once with
    // the last values (a scrape that queried it would wait for a connection).
    postgres.down();
    let readyz = reqwest::get(format!("{}/readyz", server.url)).await.unwrap();
    assert_eq!(readyz.status(), 503);
    let started = Instant::now();
    for _ in 0..10 {
        let scrape = reqwest::get(format!("{}/metrics", server.url)).await.unwrap();
        assert_eq!(scrape.status(), 200);
        assert!(scrape.text().await.unwrap().lines().any(|l| l == format!("{ACTIVE} 1")));
    }
    assert!(started.elapsed() < Duration::from_secs(1), "10 scrapes took {:?}", started.elapsed());
    postgres.up();
}

#[tokio::test]
async fn with_a_metrics_token_only_that_token_may_scrape() {
    let token = format!("metrics-{}", uuid::Uuid::new_v4().simple());
    let server = TestServer::builder(Moto::shared()).env("JIT_IAM_METRICS_TOKEN", &token).start().await;
    let url = format!("{}/metrics", server.url);
    let client = &server.client;
    let api_token = server.token.clone();
    for (presented, what) in
        [(None, "no token"), (Some("wrong-but-long-enough"), "a wrong token"), (Some(&*api_token), "an API token")]
    {
        let mut request = client.get(&url);
        if let Some(presented) = presented {
            request = request.bearer_auth(presented);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{what}: {body}");
    }
    let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("# TYPE jit_iam_grants gauge"));
    // The health routes stay open.
    assert_eq!(client.get(format!("{}/readyz", server.url)).send().await.unwrap().status(), 200);
}
