//! Start-up: configuration errors are one line and a non-zero exit; the
//! database is created and migrated; an unreachable Postgres is reported plainly.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{eventually, random_account_id, unique, Moto, TestDb, TestServer};

fn run(env: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_jit-iam"))
        .env_clear()
        .env("JIT_IAM_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).trim().to_string())
}

#[test]
fn bad_configuration_exits_2_with_one_line() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "JIT_IAM_API_TOKENS"),
        (&[("JIT_IAM_API_TOKENS", "portal:short")], "at least 16 characters"),
        (&[("JIT_IAM_API_TOKENS", "portal:0123456789abcdef"), ("JIT_IAM_LISTEN", "nowhere")], "--listen"),
        (&[("JIT_IAM_API_TOKENS", "portal:0123456789abcdef"), ("JIT_IAM_LOG_FORMAT", "xml")], "xml"),
        (&[("JIT_IAM_API_TOKENS", "portal:0123456789abcdef"), ("JIT_IAM_MAX_GRANT", "800days")], "730 days"),
        (&[("JIT_IAM_API_TOKENS", "portal:0123456789abcdef"), ("JIT_IAM_SESSION_DURATION", "5m")], "15m"),
        (&[("JIT_IAM_API_TOKENS", "portal:0123456789abcdef"), ("JIT_IAM_SYNC_INTERVAL", "soon")], "soon"),
        (&[("JIT_IAM_API_TOKENS", "portal:0123456789abcdef"), ("JIT_IAM_RETAIN_GRANT_EVENTS", "1h")], "ORPHAN_GRACE"),
    ];
    for (env, expected) in cases {
        let (code, stderr) = run(env);
        assert_eq!(code, 2, "{env:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{env:?}: {stderr}");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
    }
}

#[test]
fn unreachable_postgres_is_reported_plainly() {
    let (code, stderr) = run(&[
        ("JIT_IAM_API_TOKENS", "portal:0123456789abcdef"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/jit_iam"),
    ]);
    assert_eq!(code, 1, "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(last.contains("cannot connect to Postgres at 127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn serve_creates_and_migrates_the_database_and_migrate_is_idempotent() {
    let server = TestServer::start().await;
    let db = server.db().await;
    let tables: Vec<String> =
        sqlx::query_scalar("select tablename::text from pg_tables where schemaname = 'public' order by 1")
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(tables.contains(&"integrations".to_string()), "{tables:?}");

    let fresh = TestDb::new();
    for _ in 0..2 {
        let status = Command::new(env!("CARGO_BIN_EXE_jit-iam"))
            .args(["migrate"])
            .env_clear()
            .env("DATABASE_URL", &fresh.url)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&fresh.pool().await)
        .await
        .unwrap();
    assert!(applied >= 1);
}

/// Postgres over TLS: with `sslmode=require` the whole flow runs and every
/// connection of the service is encrypted (`pg_stat_ssl`); with
/// `sslmode=disable` none is (so the check can tell).
#[tokio::test]
async fn with_sslmode_require_the_service_runs_and_every_connection_is_encrypted() {
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    let bucket = unique("tls");
    account.create_bucket(&bucket, &[]).await;
    for (sslmode, encrypted) in [("require", true), ("disable", false)] {
        let db = TestDb::new();
        let server = TestServer::builder(Moto::shared())
            .database(db.clone())
            .env("DATABASE_URL", &format!("{}?sslmode={sslmode}", db.url))
            .start()
            .await;
        let integration = server.connect(&account, &unique("tls")).await;
        let (status, grant) = server
            .post(
                "/v1/grants?wait=20",
                json!({
                    "integration_id": integration, "resource_arn": format!("arn:aws:s3:::{bucket}"),
                    "access_level": "read", "principal": {"type": "iam_user", "name": "alice"},
                    "duration_seconds": 600, "request_id": unique("tls"), "approved_by": "approver"
                }),
            )
            .await;
        assert_eq!((status.as_u16(), grant["status"].as_str()), (202, Some("active")), "{grant}");
        let id = grant["id"].as_str().unwrap();
        let (status, _) = server.post(&format!("/v1/grants/{id}/revoke"), json!({"reason": "tls test"})).await;
        assert_eq!(status, 202);
        eventually(Duration::from_secs(30), "the grant revoked", || async {
            (server.get(&format!("/v1/grants/{id}")).await.1["status"] == "revoked").then_some(())
        })
        .await;

        let connections: Vec<bool> = sqlx::query_scalar(
            "select s.ssl from pg_stat_ssl s join pg_stat_activity a using (pid)
             where a.application_name = 'jit-iam' and a.datname = $1",
        )
        .bind(&db.name)
        .fetch_all(&db.pool().await)
        .await
        .unwrap();
        assert!(!connections.is_empty(), "no connection of jit-iam found");
        assert!(connections.iter().all(|ssl| *ssl == encrypted), "sslmode={sslmode}: ssl {connections:?}");
    }
}

/// `verify-full` checks the server's certificate against `sslrootcert` and its
/// name: this machine's Postgres has Debian's snakeoil certificate (self-signed,
/// for `localhost`). Signed by another root, the service refuses to start with
/// one clear line and exit code 2; with the right root and name, it starts.
#[tokio::test]
async fn verify_full_refuses_a_certificate_another_root_signed() {
    let db = TestDb::new();
    let snakeoil = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    let other_root = "/etc/ssl/certs/ISRG_Root_X1.pem";
    let url =
        |root: &str| format!("{}?sslmode=verify-full&sslrootcert={root}", db.url.replace("127.0.0.1", "localhost"));
    let (code, stderr) =
        run(&[("JIT_IAM_API_TOKENS", "portal:0123456789abcdef:portal"), ("DATABASE_URL", &url(other_root))]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("over TLS") && stderr.contains("UnknownIssuer"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let server =
        TestServer::builder(Moto::shared()).database(db.clone()).env("DATABASE_URL", &url(snakeoil)).start().await;
    assert_eq!(server.get("/v1/integrations").await.0, 200);
}
