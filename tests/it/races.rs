//! Races closed: a tag filter changed during a sync, an extension during the
//! apply, clocks that disagree, and a replica cut off from Postgres while an
//! AWS call is slow. Each test fails without its fix.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{
    eventually, random_account_id, unique, Account, DatabaseProxy, FaultProxy, Moto, TestDb, TestServer,
};

/// An account with alice and a bucket, connected to `server`.
async fn connected(server: &TestServer) -> (Account, String, String) {
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    let bucket = unique("races");
    account.create_bucket(&bucket, &[]).await;
    let integration = server.connect(&account, &unique("races")).await;
    (account, integration, bucket)
}

fn grant_body(integration: &str, bucket: &str, seconds: i64) -> Value {
    json!({
        "integration_id": integration, "resource_arn": format!("arn:aws:s3:::{bucket}"), "access_level": "read",
        "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": seconds,
        "request_id": unique("race"), "approved_by": "approver@example.com"
    })
}

async fn role_names(server: &TestServer, integration: &str) -> Vec<String> {
    let roles = server.browse_all(&format!("integration_id={integration}&type=iam_role")).await;
    roles.iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
}

async fn status_of(server: &TestServer, id: &str, wanted: &str) -> Value {
    eventually(Duration::from_secs(60), &format!("grant {id} {wanted}"), || async {
        let (_, grant) = server.get(&format!("/v1/grants/{id}")).await;
        (grant["status"] == wanted).then_some(grant)
    })
    .await
}

/// A sync lists the account with the filter of its start; an admin hides a
/// role meanwhile. What the sync stores follows the filter of the moment it
/// stores, so the role stays hidden.
#[tokio::test]
async fn a_tag_filter_changed_during_a_sync_wins_over_the_one_it_started_with() {
    let moto = Moto::shared();
    let proxy = FaultProxy::start(&moto.endpoint, Duration::from_secs(1)).await;
    let server = TestServer::builder(moto).env("AWS_ENDPOINT_URL", &proxy.endpoint).start().await;
    let account = moto.account(&random_account_id()).await;
    account.create_role("shown", &[("env", "prod")]).await;
    account.create_role("hidden", &[("env", "dev")]).await;
    let integration = server.connect(&account, &unique("filter-race")).await;
    assert_eq!(role_names(&server, &integration).await.len(), 2);

    proxy.hold_answers("GetAccountAuthorizationDetails");
    let (status, _) = server.post(&format!("/v1/integrations/{integration}/sync"), json!({})).await;
    assert_eq!(status, 202);
    proxy.holding().await;
    let filter = json!({"options": {"tags": [{"key": "env", "value": "prod"}]}});
    let (status, _) = server.patch(&format!("/v1/integrations/{integration}"), filter).await;
    assert_eq!(status, 200);
    assert_eq!(role_names(&server, &integration).await, ["shown"], "the filter applies at once");
    proxy.release();
    let run = server.wait_for_sync(&integration).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        role_names(&server, &integration).await,
        ["shown"],
        "the sync stored the verdicts of the filter it started with"
    );
}

/// A grant extended while its apply is under way (a slow AttachUserPolicy)
/// is due at its new expiry once active: the worker does not claim and
/// release it over and over until then (counted by a trigger on its row).
#[tokio::test]
async fn a_grant_extended_while_it_is_applied_waits_for_its_new_expiry() {
    let moto = Moto::shared();
    let proxy = FaultProxy::start(&moto.endpoint, Duration::from_secs(1)).await;
    let server =
        TestServer::builder(moto).env("AWS_ENDPOINT_URL", &proxy.endpoint).env("JIT_IAM_MIN_GRANT", "1s").start().await;
    let (_, integration, bucket) = connected(&server).await;
    let db = server.db().await;
    sqlx::raw_sql(
        "create table test_grant_updates (grant_id uuid, at timestamptz default clock_timestamp());
         create function test_count_grant_update() returns trigger language plpgsql as $$
         begin insert into test_grant_updates (grant_id) values (new.grant_id); return new; end $$;
         create trigger test_count_grant_updates after update on grants
             for each row execute function test_count_grant_update();",
    )
    .execute(&db)
    .await
    .unwrap();

    proxy.hold_answers("AttachUserPolicy");
    let (status, grant) = server.post("/v1/grants", grant_body(&integration, &bucket, 3)).await;
    assert_eq!(status, 202, "{grant}");
    let id = grant["id"].as_str().unwrap();
    proxy.holding().await;
    let (status, extended) = server.post(&format!("/v1/grants/{id}/extend"), json!({"duration_seconds": 30})).await;
    assert_eq!(status, 200, "{extended}");
    // The old expiry passes while the apply is still waiting for AWS.
    tokio::time::sleep(Duration::from_secs(4)).await;
    proxy.release();
    status_of(&server, id, "active").await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let updates: i64 = sqlx::query_scalar("select count(*) from test_grant_updates where grant_id = $1::uuid")
        .bind(id)
        .fetch_one(&db)
        .await
        .unwrap();
    let (next_run_at, expires_at): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("select next_run_at, expires_at from grants where grant_id = $1::uuid")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(next_run_at, expires_at, "due at the new expiry");
    assert!(updates <= 6, "the grant's row was updated {updates} times");
}

/// The path of the libfaketime the test command installs into .venv.
fn libfaketime() -> String {
    let lib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    let python = std::fs::read_dir(&lib).expect(".venv/lib: run scripts/test").flatten().next().unwrap().path();
    let path = python.join("site-packages/libfaketime/vendor/libfaketime/src/libfaketime.so.1");
    assert!(path.exists(), "{} missing: run scripts/test, which installs libfaketime", path.display());
    path.display().to_string()
}

/// jit-iam's clock 30 s behind Postgres's (libfaketime): expiry is computed
/// and decided on Postgres's clock alone, so a grant expires when it says, not
/// 30 s early or late.
#[tokio::test]
async fn expiry_is_decided_by_postgres_clock_whatever_the_replicas_say() {
    let server = TestServer::builder(Moto::shared())
        .env("LD_PRELOAD", &libfaketime())
        .env("FAKETIME", "-30s")
        .env("DONT_FAKE_MONOTONIC", "1")
        .env("JIT_IAM_MIN_GRANT", "1s")
        .start()
        .await;
    let (_, integration, bucket) = connected(&server).await;
    let db = server.db().await;

    let (status, long) = server.post("/v1/grants", grant_body(&integration, &bucket, 600)).await;
    assert_eq!(status, 202, "{long}");
    let expires_in: f64 = sqlx::query_scalar(
        "select extract(epoch from expires_at - now())::float8 from grants where grant_id = $1::uuid",
    )
    .bind(long["id"].as_str().unwrap())
    .fetch_one(&db)
    .await
    .unwrap();
    assert!((597.0..=600.5).contains(&expires_in), "expires in {expires_in} s by Postgres's clock, not 600");

    let (status, short) = server.post("/v1/grants?wait=20", grant_body(&integration, &bucket, 3)).await;
    assert_eq!((status.as_u16(), short["status"].as_str()), (202, Some("active")), "{short}");
    let id = short["id"].as_str().unwrap();
    status_of(&server, id, "revoked").await;
    let late: f64 = sqlx::query_scalar(
        "select extract(epoch from finished_at - expires_at)::float8 from grants where grant_id = $1::uuid",
    )
    .bind(id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert!((0.0..5.0).contains(&late), "revoked {late} s after its expiry");
}

/// Fencing: replica A is cut off from Postgres while its CreatePolicy is slow
/// to answer. A stops working on the grant before its lease can run out;
/// replica B takes the grant over, applies and revokes it; when A's answer
/// finally comes, A makes no further IAM call for it.
#[tokio::test]
async fn a_replica_cut_off_from_postgres_never_acts_after_its_lease() {
    let moto = Moto::shared();
    let db = TestDb::new();
    let postgres_of_a = DatabaseProxy::start("127.0.0.1:5432").await;
    let aws_of_a = FaultProxy::start(&moto.endpoint, Duration::from_secs(1)).await;
    let replica = |through_proxies: bool| {
        let mut builder = TestServer::builder(moto)
            .database(db.clone())
            .env("JIT_IAM_WORKER_LEASE", "6s")
            .env("JIT_IAM_MIN_GRANT", "1s");
        if through_proxies {
            builder = builder
                .env("DATABASE_URL", &format!("postgres://postgres@127.0.0.1:{}/{}", postgres_of_a.port, db.name))
                .env("AWS_ENDPOINT_URL", &aws_of_a.endpoint);
        }
        builder.start()
    };
    let a = replica(true).await;
    let b = replica(false).await;
    let (account, integration, bucket) = connected(&a).await;

    aws_of_a.hold_answers("CreatePolicy");
    let (status, grant) = a.post("/v1/grants", grant_body(&integration, &bucket, 600)).await;
    assert_eq!(status, 202, "{grant}");
    let id = grant["id"].as_str().unwrap();
    aws_of_a.holding().await;
    postgres_of_a.down();

    // B takes over once A's lease has run out, applies (adopting A's policy) and revokes.
    status_of(&b, id, "active").await;
    let (status, _) = b.post(&format!("/v1/grants/{id}/revoke"), json!({})).await;
    assert_eq!(status, 202);
    status_of(&b, id, "revoked").await;
    assert!(account.user_policies("alice").await.is_empty());

    let released = Instant::now();
    aws_of_a.release();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let late: Vec<String> = aws_of_a
        .exchanges()
        .iter()
        .filter(|e| e.service == "iam" && e.at >= released)
        .map(|e| e.action.clone())
        .collect();
    assert!(late.is_empty(), "A made IAM calls after B had taken the grant over: {late:?}");
    assert!(account.user_policies("alice").await.is_empty(), "nothing of A's is left on alice");
    assert!(a.logs().iter().any(|l| l.contains("stopped before it could run out")), "{}", a.problems());
}
