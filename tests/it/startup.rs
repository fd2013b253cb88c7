//! Start-up: configuration errors are one line and a non-zero exit; the
//! database is created and migrated; an unreachable Postgres is reported plainly.

use std::process::Command;

use crate::support::{TestDb, TestServer};

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
