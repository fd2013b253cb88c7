//! The end of an `assume` grant ends the sessions it gave: its policy allows
//! only the grant's session name, and its revocation puts a deny of that
//! name's sessions on the target role, removed once they have all run out.
//! moto ignores these conditions (a Deny with a condition denies always), so
//! what is checked is the documents and the calls, read back from moto.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{eventually, random_account_id, unique, Account, Moto, TestServer};

const ROLE: &str = "deploy";

struct Fixture {
    server: TestServer,
    account: Account,
    integration: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let account = Moto::shared().account(&random_account_id()).await;
        account.create_user("alice", &[]).await;
        account.create_role(ROLE, &[]).await;
        account.create_role("other", &[]).await;
        let server = TestServer::builder(Moto::shared()).env("JIT_IAM_MIN_GRANT", "1s").start().await;
        let integration = server.connect(&account, &unique("sessions")).await;
        Fixture { server, account, integration }
    }

    async fn assume_grant(&self) -> Value {
        let (status, grant) = self
            .server
            .post(
                "/v1/grants?wait=20",
                json!({
                    "integration_id": self.integration, "resource_arn": self.account.role_arn(ROLE),
                    "access_level": "assume", "principal": {"type": "iam_user", "name": "alice"},
                    "duration_seconds": 600, "request_id": unique("sessions"), "approved_by": "approver@example.com"
                }),
            )
            .await;
        assert_eq!((status.as_u16(), grant["status"].as_str()), (202, Some("active")), "{grant}");
        grant
    }

    async fn wait(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(Duration::from_secs(30), what, || async {
            let (_, grant) = self.server.get(&format!("/v1/grants/{id}")).await;
            check(&grant).then_some(grant)
        })
        .await
    }

    /// The inline policy `name` of the role, as IAM has it; None when there is none.
    async fn inline(&self, name: &str) -> Option<Value> {
        let found = self.account.iam.get_role_policy().role_name(ROLE).policy_name(name).send().await.ok()?;
        let raw = found.policy_document;
        let decoded = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy().to_string();
        Some(serde_json::from_str(&decoded).unwrap())
    }

    async fn audit_actions(&self, grant_id: &str) -> Vec<(String, String)> {
        let (_, page) = self.server.get(&format!("/v1/audit-events?target_id={grant_id}")).await;
        let items = page["items"].as_array().unwrap().iter();
        items.map(|e| (e["action"].as_str().unwrap().to_string(), e["actor"].as_str().unwrap().to_string())).collect()
    }

    /// As if the role's longest session had run out.
    async fn sessions_run_out(&self, grant_id: &str) {
        let db = self.server.db().await;
        sqlx::query("update grants set sessions_denied_until = now(), next_run_at = now() where grant_id = $1")
            .bind(uuid::Uuid::parse_str(grant_id).unwrap())
            .execute(&db)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_assume_grants_sessions_are_denied_from_its_end_until_they_run_out() {
    let f = Fixture::new().await;
    let grant = f.assume_grant().await;
    let id = grant["id"].as_str().unwrap();
    let session_name = format!("jit-iam-{id}");
    assert_eq!(grant["session_name"], json!(session_name), "{grant}");
    assert!(grant["sessions_denied_until"].is_null());
    let policy = f.account.policy_document(grant["policy"]["arn"].as_str().unwrap()).await;
    let assume = &policy["Statement"][0];
    assert_eq!(assume["Action"], json!(["sts:AssumeRole"]), "{policy}");
    assert_eq!(assume["Condition"], json!({"StringEquals": {"sts:RoleSessionName": session_name}}), "{policy}");

    let (status, _) = f.server.post(&format!("/v1/grants/{id}/revoke"), json!({})).await;
    assert_eq!(status, 202);
    let revoked = f.wait(id, "revoked", |g| g["status"] == "revoked").await;
    let until: chrono::DateTime<chrono::Utc> = revoked["sessions_denied_until"].as_str().unwrap().parse().unwrap();
    let finished: chrono::DateTime<chrono::Utc> = revoked["finished_at"].as_str().unwrap().parse().unwrap();
    assert!(until >= finished + chrono::Duration::hours(1), "past the role's MaxSessionDuration (1 h): {revoked}");
    let deny = f.inline(&format!("jit-iam-revoked-{id}")).await.expect("the deny is on the target role");
    assert_eq!(
        deny["Statement"],
        json!([{
            "Sid": "RevokedSessionsOfGrant", "Effect": "Deny", "Action": ["*"], "Resource": ["*"],
            "Condition": {"StringLike": {"aws:userid": format!("*:{session_name}")}}
        }])
    );
    assert!(f.account.user_policies("alice").await.is_empty(), "the allow went first");
    assert!(f.account.jit_policies().await.is_empty());
    let sessions_denied = ("grant.sessions_denied".to_string(), "jit-iam".to_string());
    assert!(f.audit_actions(id).await.contains(&sessions_denied));

    // Reconciliation knows the deny: no finding, nothing removed while it is due.
    let run = reconcile(&f).await;
    assert_eq!(run["findings"], json!([]), "{run}");
    assert!(f.inline(&format!("jit-iam-revoked-{id}")).await.is_some());

    f.sessions_run_out(id).await;
    let lifted = f.wait(id, "the deny removed", |g| g["sessions_denied_until"].is_null()).await;
    assert_eq!(lifted["status"], "revoked");
    assert!(f.inline(&format!("jit-iam-revoked-{id}")).await.is_none(), "removed from the role");
    let removed = ("grant.sessions_deny_removed".to_string(), "jit-iam".to_string());
    assert!(f.audit_actions(id).await.contains(&removed));

    // Put back by hand (a restore, say): reconciliation removes it, and reports no drift.
    let document = deny.to_string();
    let iam = &f.account.iam;
    let name = format!("jit-iam-revoked-{id}");
    iam.put_role_policy().role_name(ROLE).policy_name(&name).policy_document(&document).send().await.unwrap();
    // The same name on another role is someone else's: never removed.
    iam.put_role_policy().role_name("other").policy_name(&name).policy_document(&document).send().await.unwrap();
    let run = reconcile(&f).await;
    assert_eq!(run["findings"], json!([]), "{run}");
    assert!(f.inline(&name).await.is_none(), "a deny left behind is removed");
    let elsewhere = iam.get_role_policy().role_name("other").policy_name(&name).send().await;
    assert!(elsewhere.is_ok(), "only on the grant's role: {elsewhere:?}");
}

async fn reconcile(f: &Fixture) -> Value {
    let (status, run) = f.server.post(&format!("/v1/integrations/{}/reconcile", f.integration), json!({})).await;
    assert_eq!(status, 202, "{run}");
    let path = format!("/v1/integrations/{}/reconciliations/{}", f.integration, run["id"].as_str().unwrap());
    eventually(Duration::from_secs(60), "the reconciliation", || async {
        let (_, run) = f.server.get(&path).await;
        (run["status"] != "queued" && run["status"] != "running").then_some(run)
    })
    .await
}
