//! Secrets never reach the logs, even at `RUST_LOG=trace`: not the API token,
//! not a wrong token a client sent, not the service's AWS secret key nor its
//! database password, and not the credentials sts:AssumeRole hands out.

use std::time::Duration;

use aws_credential_types::Credentials;
use serde_json::{json, Value};

use crate::support::{eventually, random_account_id, unique, Moto, TestDb, TestServer};

/// Credentials as sts:AssumeRole returns them from this moto.
async fn assume(moto: &Moto, role_arn: &str) -> aws_sdk_sts::types::Credentials {
    let config =
        moto.config(Credentials::new("AKIAIOSFODNN7EXAMPLE", "probe-secret", None, None, "tests"), "us-east-1").await;
    aws_sdk_sts::Client::new(&config)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("secret-probe")
        .external_id("external-id-123")
        .send()
        .await
        .expect("sts:AssumeRole")
        .credentials
        .unwrap()
}

fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    &a[..n]
}

/// The line's `target` (the crate and module that logged it), for the report.
fn target_of(line: &str) -> String {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["target"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

#[tokio::test]
async fn secrets_stay_out_of_trace_logs() {
    let moto = Moto::shared();
    // The service's own identity: an IAM user with a key moto issued, so that
    // sts:GetCallerIdentity (setup documents) names a real user.
    let home = moto.account(&random_account_id()).await;
    home.create_user("jit-iam-service", &[]).await;
    let key = home.iam.create_access_key().user_name("jit-iam-service").send().await.unwrap().access_key.unwrap();
    let (access_key_id, secret_access_key) = (key.access_key_id.clone(), key.secret_access_key.clone());

    let account = moto.account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    let bucket = unique("secrets");
    account.create_bucket(&bucket, &[]).await;
    let role_arn = format!("arn:aws:iam::{}:role/jit-iam-access", account.id);

    // A database password too (Postgres trusts the loopback here, so any password connects).
    let db = TestDb::new();
    let db_password = format!("pg-password-{}", uuid::Uuid::new_v4().simple());
    let db_url = db.url.replacen("postgres@", &format!("postgres:{db_password}@"), 1);
    assert_ne!(db_url, db.url);

    let server = TestServer::builder(moto)
        .database(db)
        .env("DATABASE_URL", &db_url)
        .env("AWS_ACCESS_KEY_ID", &access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &secret_access_key)
        .env("RUST_LOG", "trace")
        .env("JIT_IAM_MIN_GRANT", "1s")
        .start()
        .await;

    // The full flow.
    let id = &server.connect(&account, &unique("secrets")).await;
    let (status, check) = server.post(&format!("/v1/integrations/{id}/check"), json!({})).await;
    assert_eq!(status, 200, "{check}");
    let (status, setup) = server.get(&format!("/v1/integrations/{id}/setup")).await;
    assert_eq!(status, 200, "{setup}");
    assert_eq!(setup["service_principal_arn"], format!("arn:aws:iam::{}:user/jit-iam-service", home.id));
    let resource = server.browse_all(&format!("integration_id={id}&type=s3_bucket")).await.remove(0);
    let (status, grant) = server
        .post(
            "/v1/grants?wait=20",
            json!({
                "integration_id": id, "resource_id": resource["id"], "access_level": "read",
                "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": 600,
                "request_id": unique("req"), "approved_by": "approver@example.com", "reason": "secrets test"
            }),
        )
        .await;
    assert_eq!((status.as_u16(), grant["status"].as_str()), (202, Some("active")), "{grant}");
    let grant_id = grant["id"].as_str().unwrap();
    let (status, _) = server.post(&format!("/v1/grants/{grant_id}/revoke"), json!({})).await;
    assert_eq!(status, 202);
    eventually(Duration::from_secs(30), "the grant to be revoked", || async {
        let (_, grant) = server.get(&format!("/v1/grants/{grant_id}")).await;
        (grant["status"] == "revoked").then_some(())
    })
    .await;
    assert!(account.user_policies("alice").await.is_empty());

    // Failed authentication attempts.
    let wrong = format!("wrong-token-{}", uuid::Uuid::new_v4().simple());
    for authorization in [format!("Bearer {wrong}"), format!("Basic {wrong}"), wrong.clone()] {
        let response = server
            .client
            .get(format!("{}/v1/integrations", server.url))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let response = server
        .client
        .post(format!("{}/v1/grants", server.url))
        .bearer_auth(&wrong)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // What moto's sts:AssumeRole returns for this very role: session tokens
    // share a fixed prefix, whatever the session.
    let first = assume(moto, &role_arn).await;
    let second = assume(moto, &role_arn).await;
    let session_prefix = common_prefix(&first.session_token, &second.session_token).to_string();
    assert!(
        session_prefix.len() >= 12,
        "moto's session tokens share no prefix: {} / {}",
        first.session_token,
        second.session_token
    );

    tokio::time::sleep(Duration::from_millis(500)).await; // the last lines reach the harness
    let logs = server.logs();
    assert!(logs.iter().any(|l| l.contains(r#""level":"TRACE""#)), "RUST_LOG=trace did not take effect");
    assert!(logs.iter().any(|l| l.contains("AssumeRole")), "the AWS SDK's trace of sts:AssumeRole is not in the logs");
    // The SDK's runtime, which would write requests and answers at trace, stops at debug.
    let sdk_traces = logs
        .iter()
        .filter(|l| l.contains(r#""level":"TRACE""#) && l.contains(r#""target":"aws_smithy_runtime"#))
        .count();
    assert_eq!(sdk_traces, 0, "the AWS SDK's runtime logged at trace level");
    // The SDK's traces of the service's own credentials are in the logs (the key
    // id is no secret): the search below looks where a secret would be.
    assert!(logs.iter().any(|l| l.contains(&access_key_id)), "no trace of the service's own credentials in the logs");
    println!("{} log lines at trace level", logs.len());

    let needles: Vec<(&str, String)> = vec![
        ("the API token", server.token.clone()),
        ("the wrong token a client sent", wrong.clone()),
        ("the AWS secret access key", secret_access_key.clone()),
        ("the database password", db_password.clone()),
        ("a session token of sts:AssumeRole (moto's fixed prefix)", session_prefix.clone()),
        ("an assumed secret access key", first.secret_access_key.clone()),
        ("an STS credentials element", "<SecretAccessKey>".into()),
        ("an STS credentials element", "<SessionToken>".into()),
    ];
    let mut leaks = Vec::new();
    for line in &logs {
        for (what, needle) in &needles {
            if line.contains(needle.as_str()) {
                leaks.push(format!("{what} logged by {}: {:.600}", target_of(line), line));
            }
        }
        // The SDK prints credentials with their secret redacted; anything else is a leak.
        for marker in ["secret_access_key: \\\"", "session_token: \\\""] {
            for (at, _) in line.match_indices(marker) {
                let value = &line[at + marker.len()..];
                if !value.starts_with("** redacted") && !value.starts_with("*** Sensitive") {
                    leaks.push(format!("an unredacted `{marker}` logged by {}: {:.600}", target_of(line), line));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "{} secrets in the logs:\n{}", leaks.len(), leaks.join("\n"));
}
