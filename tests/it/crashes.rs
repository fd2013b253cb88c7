//! Grants survive a killed replica, and two replicas share the work without
//! ever making an IAM change twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{random_account_id, unique, Account, Moto, TestServer};

pub const USERS: usize = 50;
/// Roles named like the first users: grants to a user and to a role of the same name never meet.
pub const ROLES: usize = 10;

/// An account with `USERS` users, `ROLES` roles and one resource of each
/// type, and an integration synced over it.
pub async fn seeded(server: &TestServer) -> (Account, String, BTreeMap<String, String>) {
    let account = Moto::shared().account(&random_account_id()).await;
    for i in 0..USERS {
        account.create_user(&format!("user-{i:02}"), &[]).await;
    }
    for i in 0..ROLES {
        account.create_role(&format!("user-{i:02}"), &[]).await;
    }
    account.create_group("ops").await;
    account.create_policy("readonly", "/", &[]).await;
    account.create_bucket(&unique("crash"), &[]).await;
    account.run_instances("us-east-1", 1, &[]).await;
    let integration = server
        .create_integration(json!({
            "name": unique("crash"), "connection": "single_account",
            "root_account": {"account_id": account.id, "access_role_arn": account.role_arn("jit-iam-access"),
                             "external_id": "external-id-123", "region": "us-east-1"},
            "options": {"regions": ["us-east-1"]}
        }))
        .await;
    let integration = integration["id"].as_str().unwrap().to_string();
    server.wait_for_sync(&integration).await;
    let resources: BTreeMap<String, String> = server
        .browse_all(&format!("integration_id={integration}"))
        .await
        .into_iter()
        .filter(|r| r["type"] != "iam_user")
        .map(|r| (r["type"].as_str().unwrap().to_string(), r["id"].as_str().unwrap().to_string()))
        .collect();
    (account, integration, resources)
}

const KINDS: [(&str, &str); 5] = [
    ("s3_bucket", "read"),
    ("ec2_instance", "operate"),
    ("iam_role", "assume"),
    ("iam_policy", "attach"),
    ("iam_group", "member"),
];

/// Grant `i`: every kind in turn; every other round of kinds to roles (but groups, which take users only).
pub fn grant_body(integration: &str, resources: &BTreeMap<String, String>, i: usize, seconds: i64) -> Value {
    let (resource_type, level) = KINDS[i % KINDS.len()];
    let round = i / KINDS.len();
    let principal = if round % 2 == 1 && resource_type != "iam_group" {
        json!({"type": "iam_role", "name": format!("user-{:02}", (round / 2) % ROLES)})
    } else {
        json!({"type": "iam_user", "name": format!("user-{:02}", round % USERS)})
    };
    json!({
        "integration_id": integration,
        "resource_id": resources[resource_type],
        "access_level": level,
        "principal": principal,
        "duration_seconds": seconds,
        "request_id": unique("crash"),
        "approved_by": "approver"
    })
}

/// Waits until every grant is revoked or failed, and returns them.
pub async fn all_finished(server: &TestServer, ids: &[String]) -> Vec<Value> {
    wait_until(server, ids, "revoked|failed").await
}

/// Waits until every grant is in one of `statuses` (`a|b`), and returns them.
pub async fn wait_until(server: &TestServer, ids: &[String], statuses: &str) -> Vec<Value> {
    let wanted: Vec<&str> = statuses.split('|').collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut grants = Vec::new();
        for id in ids {
            grants.push(server.get(&format!("/v1/grants/{id}")).await.1);
        }
        let unfinished: Vec<&Value> =
            grants.iter().filter(|g| !wanted.contains(&g["status"].as_str().unwrap_or_default())).collect();
        if unfinished.is_empty() {
            return grants;
        }
        if std::time::Instant::now() > deadline {
            let id = unfinished[0]["id"].as_str().unwrap_or_default();
            let (_, events) = server.get(&format!("/v1/grants/{id}/events")).await;
            panic!(
                "{} grants not {statuses}, e.g. {}\nits events: {events}\nserver problems:\n{}",
                unfinished.len(),
                unfinished[0],
                server.problems()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Nothing jit-iam gave is left in IAM.
pub async fn assert_clean(account: &Account) {
    assert!(account.jit_policies().await.is_empty(), "orphaned policies: {:?}", account.jit_policies().await);
    for i in 0..USERS {
        let user = format!("user-{i:02}");
        assert!(account.user_policies(&user).await.is_empty(), "{user} keeps policies");
        assert!(account.user_groups(&user).await.is_empty(), "{user} stays in a group");
        if i < ROLES {
            assert!(account.role_policies(&user).await.is_empty(), "role {user} keeps policies");
        }
    }
}

#[tokio::test]
async fn a_killed_replica_is_taken_over_and_every_grant_ends_correctly() {
    let db = crate::support::TestDb::new();
    let builder = || {
        TestServer::builder(Moto::shared())
            .database(db.clone())
            .env("JIT_IAM_MIN_GRANT", "1s")
            .env("JIT_IAM_WORKER_LEASE", "2s")
    };
    let mut first = builder().start().await;
    let (account, integration, resources) = seeded(&first).await;

    let mut ids = Vec::new();
    for i in 0..60 {
        let seconds = 4 + (i % 3) as i64;
        let (status, grant) = first.post("/v1/grants", grant_body(&integration, &resources, i, seconds)).await;
        assert_eq!(status, 202, "{grant}");
        ids.push(grant["id"].as_str().unwrap().to_string());
    }
    // Mid-way: some grants applied, some being applied, the first ones about to be revoked.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    first.kill();

    let second = builder().start().await;
    let grants = all_finished(&second, &ids).await;
    for grant in &grants {
        match grant["status"].as_str() {
            Some("revoked") => assert_eq!(grant["revoke_reason"], "expired", "{grant}"),
            // Taken over too late to be applied before its expiry: nothing was granted for long.
            _ => assert_eq!(grant["last_error"]["code"], "expired", "{grant}"),
        }
    }
    assert!(grants.iter().filter(|g| g["status"] == "revoked").count() >= 30, "most grants were applied");
    assert_clean(&account).await;
    let tracked: i64 =
        sqlx::query_scalar("select count(*) from shared_attachments").fetch_one(&second.db().await).await.unwrap();
    assert_eq!(tracked, 0);
}

#[tokio::test]
async fn two_replicas_apply_and_revoke_200_grants_each_change_once() {
    // Revoked on request rather than at expiry, so that a slow machine cannot make a grant expire before it is applied.
    let db = crate::support::TestDb::new();
    let builder = || TestServer::builder(Moto::shared()).database(db.clone()).env("JIT_IAM_MIN_GRANT", "1s");
    let first = builder().start().await;
    let second = builder().start().await;
    let (account, integration, resources) = seeded(&first).await;

    let submissions = (0..200).map(|i| {
        let server = if i % 2 == 0 { &first } else { &second };
        let body = grant_body(&integration, &resources, i, 600);
        async move {
            let (status, grant) = server.post("/v1/grants", body).await;
            assert_eq!(status, 202, "{grant}");
            grant["id"].as_str().unwrap().to_string()
        }
    });
    let ids: Vec<String> = futures::future::join_all(submissions).await;
    wait_until(&first, &ids, "active").await;
    let revocations = ids.iter().enumerate().map(|(i, id)| {
        let server = if i % 2 == 0 { &second } else { &first };
        async move { assert_eq!(server.post(&format!("/v1/grants/{id}/revoke"), json!({})).await.0, 202) }
    });
    futures::future::join_all(revocations).await;
    let grants = all_finished(&first, &ids).await;
    assert!(
        grants.iter().all(|g| g["status"] == "revoked"),
        "every grant was applied and revoked; second replica:\n{}",
        second.problems()
    );

    let mut actors = BTreeSet::new();
    for grant in &grants {
        let id = grant["id"].as_str().unwrap();
        let (_, events) = first.get(&format!("/v1/grants/{id}/events")).await;
        let events = events["items"].as_array().unwrap();
        let mut successes: BTreeMap<&str, usize> = BTreeMap::new();
        for event in events.iter().filter(|e| e["kind"] == "aws_call") {
            assert_eq!(event["outcome"], "success", "no call failed nor found its work done: {event}");
            *successes.entry(event["operation"].as_str().unwrap()).or_default() += 1;
            actors.insert(event["actor"].as_str().unwrap().to_string());
        }
        let read = |op: &str| op.starts_with("iam:Get") || op.starts_with("iam:List");
        assert!(successes.iter().all(|(op, n)| read(op) || *n == 1), "a change made twice: {successes:?}");
        if grant["policy"].is_object() {
            let mut operations: Vec<&str> = successes.keys().copied().collect();
            // An assume grant's end also denies the sessions it gave, after reading the role's longest session.
            if grant["resource"]["type"] == "iam_role" {
                let to_role = grant["principal"]["type"] == "iam_role";
                operations.retain(|op| *op != "iam:PutRolePolicy" && (to_role || *op != "iam:GetRole"));
            }
            // The changes, and the one read of the principal's identity beside CreatePolicy.
            let expected = match grant["principal"]["type"].as_str() {
                Some("iam_role") => [
                    "iam:AttachRolePolicy",
                    "iam:CreatePolicy",
                    "iam:DeletePolicy",
                    "iam:DetachRolePolicy",
                    "iam:GetRole",
                ],
                _ => [
                    "iam:AttachUserPolicy",
                    "iam:CreatePolicy",
                    "iam:DeletePolicy",
                    "iam:DetachUserPolicy",
                    "iam:GetUser",
                ],
            };
            assert_eq!(operations, expected);
        }
    }
    assert_eq!(actors.len(), 2, "both replicas worked: {actors:?}");
    assert_clean(&account).await;
    // Each replica assumed the account's role once for all its grants: one credentials cache per account.
    for server in [&first, &second] {
        assert_eq!(server.metric("jit_iam_assume_role_total").await, 1.0, "sts:AssumeRole calls of one replica");
    }
}
