//! Reconciliation against moto: drift made out of band (detached, removed from
//! a group, a policy version set as default, a leftover policy of an ended
//! grant, an orphan, a renamed user) is found, recorded, and put back — or
//! only reported when repair is off; orphans are kept until asked or past the
//! grace period.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{eventually, random_account_id, unique, Account, Moto, TestServer};

struct Fixture {
    server: TestServer,
    account: Account,
    integration: String,
    shared_policy: String,
}

impl Fixture {
    async fn new(env: &[(&str, &str)]) -> Fixture {
        let account = Moto::shared().account(&random_account_id()).await;
        for user in ["alice", "bob", "carol", "dave", "erin", "frank"] {
            account.create_user(user, &[]).await;
        }
        account.create_group("ops").await;
        let shared_policy = account.create_policy("readonly", "/", &[]).await;
        account.create_bucket(&unique("reconcile"), &[]).await;
        let mut builder = TestServer::builder(Moto::shared()).env("JIT_IAM_MIN_GRANT", "1s");
        for (key, value) in env {
            builder = builder.env(key, value);
        }
        let server = builder.start().await;
        let integration = server.connect(&account, &unique("reconcile")).await;
        Fixture { server, account, integration, shared_policy }
    }

    async fn grant(&self, resource_type: &str, level: &str, user: &str) -> Value {
        let items = self.server.browse_all(&format!("integration_id={}&type={resource_type}", self.integration)).await;
        let (status, grant) = self
            .server
            .post(
                "/v1/grants?wait=20",
                json!({
                    "integration_id": self.integration, "resource_id": items[0]["id"], "access_level": level,
                    "principal": {"type": "iam_user", "name": user}, "duration_seconds": 3600,
                    "request_id": unique("reconcile"), "approved_by": "approver@example.com"
                }),
            )
            .await;
        assert_eq!((status.as_u16(), grant["status"].as_str()), (202, Some("active")), "{grant}");
        grant
    }

    /// Asks for a run with `body` and waits for it to finish.
    async fn reconcile(&self, body: Value) -> Value {
        let path = format!("/v1/integrations/{}/reconcile", self.integration);
        let (status, run) = self.server.post(&path, body).await;
        assert_eq!(status, 202, "{run}");
        let id = run["id"].as_str().unwrap().to_string();
        eventually(Duration::from_secs(60), "the reconciliation to finish", || async {
            let (_, run) =
                self.server.get(&format!("/v1/integrations/{}/reconciliations/{id}", self.integration)).await;
            (run["status"] != "queued" && run["status"] != "running").then_some(run)
        })
        .await
    }

    /// Another installation (its own database) connected to the same account.
    async fn second_installation(&self) -> Fixture {
        let account = Moto::shared().account(&self.account.id).await;
        let server = TestServer::builder(Moto::shared()).env("JIT_IAM_MIN_GRANT", "1s").start().await;
        let integration = server.connect(&account, &unique("second")).await;
        Fixture { server, account, integration, shared_policy: self.shared_policy.clone() }
    }

    /// The installation id `/readyz` shows.
    async fn installation_id(&self) -> String {
        let (status, ready) = self.server.get("/readyz").await;
        assert_eq!(status, 200, "{ready}");
        ready["installation_id"].as_str().unwrap().to_string()
    }

    /// A policy with this installation's tags for a grant nobody knows.
    async fn orphan(&self) -> String {
        let installation = self.installation_id().await;
        let name = format!("jit-iam-{}", uuid::Uuid::now_v7());
        let tags = [
            ("managed-by", "jit-iam"),
            ("jit-iam:grant-id", &uuid::Uuid::now_v7().to_string()),
            ("jit-iam:installation-id", &installation),
        ];
        self.account.create_policy(&name, "/jit-iam/", &tags).await
    }

    async fn revoke(&self, grant: &Value) {
        let id = grant["id"].as_str().unwrap();
        let (status, _) = self.server.post(&format!("/v1/grants/{id}/revoke"), json!({})).await;
        assert_eq!(status, 202);
        eventually(Duration::from_secs(30), "revoked", || async {
            (self.server.get(&format!("/v1/grants/{id}")).await.1["status"] == "revoked").then_some(())
        })
        .await;
    }
}

/// (kind, action) of each finding, sorted.
fn findings(run: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = run["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap().to_string(), f["action"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    found
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = expected.iter().map(|(k, a)| (k.to_string(), a.to_string())).collect();
    pairs.sort();
    pairs
}

const WIDER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

#[tokio::test]
async fn drift_of_active_grants_is_reported_then_repaired() {
    let f = Fixture::new(&[]).await;
    let detached = f.grant("s3_bucket", "read", "alice").await;
    let shared = f.grant("iam_policy", "attach", "bob").await;
    let member = f.grant("iam_group", "member", "carol").await;
    let edited = f.grant("s3_bucket", "read", "dave").await;
    let clean = f.reconcile(json!({})).await;
    assert_eq!((clean["status"].as_str(), findings(&clean)), (Some("succeeded"), vec![]), "{clean}");

    // Out of band: an admin takes access away, and someone widens a grant's policy.
    let iam = &f.account.iam;
    let alice_policy = detached["policy"]["arn"].as_str().unwrap();
    iam.detach_user_policy().user_name("alice").policy_arn(alice_policy).send().await.unwrap();
    iam.detach_user_policy().user_name("bob").policy_arn(&f.shared_policy).send().await.unwrap();
    iam.remove_user_from_group().user_name("carol").group_name("ops").send().await.unwrap();
    let dave_policy = edited["policy"]["arn"].as_str().unwrap();
    iam.create_policy_version()
        .policy_arn(dave_policy)
        .policy_document(WIDER)
        .set_as_default(true)
        .send()
        .await
        .unwrap();

    let reported = f.reconcile(json!({"repair": false})).await;
    let expected_kinds = [
        ("access_missing", "reported"),
        ("access_missing", "reported"),
        ("access_missing", "reported"),
        ("policy_modified", "reported"),
    ];
    assert_eq!(findings(&reported), pairs(&expected_kinds), "{reported}");
    assert!(f.account.user_policies("alice").await.is_empty(), "reporting changes nothing");
    assert!(reported["aws_calls"].as_i64().unwrap() >= 1, "{reported}");

    let repaired = f.reconcile(json!({})).await;
    let expected_kinds = [
        ("access_missing", "repaired"),
        ("access_missing", "repaired"),
        ("access_missing", "repaired"),
        ("policy_modified", "repaired"),
    ];
    assert_eq!(findings(&repaired), pairs(&expected_kinds), "{repaired}");
    assert_eq!(repaired["status"], "succeeded");
    assert_eq!(f.account.user_policies("alice").await, [alice_policy.to_string()]);
    assert_eq!(f.account.user_policies("bob").await, [f.shared_policy.clone()]);
    assert_eq!(f.account.user_groups("carol").await, ["ops"]);
    assert_eq!(f.account.policy_document(dave_policy).await, edited["policy"]["document"], "the original document");
    let versions = iam.list_policy_versions().policy_arn(dave_policy).send().await.unwrap();
    assert_eq!(versions.versions().len(), 1, "the edited versions are gone");
    let (_, events) = f.server.get(&format!("/v1/grants/{}/events", detached["id"].as_str().unwrap())).await;
    let kinds: Vec<&str> = events["items"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"drift_detected") && kinds.contains(&"drift_repaired"), "{kinds:?}");
    assert_eq!(findings(&f.reconcile(json!({})).await), vec![], "nothing left to find");
    assert!(f.server.metric("jit_iam_drift_findings_total").await >= 8.0);

    for grant in [&detached, &shared, &member, &edited] {
        f.revoke(grant).await;
    }
    assert!(f.account.jit_policies().await.is_empty());
}

#[tokio::test]
async fn leftovers_of_ended_grants_are_removed_and_orphans_wait_for_their_grace() {
    let f = Fixture::new(&[]).await;
    let ended = f.grant("s3_bucket", "read", "erin").await;
    f.revoke(&ended).await;
    let iam = &f.account.iam;
    // The policy of the ended grant is back (a restore from a backup, say), and attached.
    let name = ended["policy"]["name"].as_str().unwrap();
    let leftover = f.account.create_policy(name, "/jit-iam/", &[("managed-by", "jit-iam")]).await;
    iam.attach_user_policy().user_name("erin").policy_arn(&leftover).send().await.unwrap();
    // An orphan: jit-iam's tags, a grant nobody knows, attached to a group.
    let orphan = f.orphan().await;
    iam.attach_group_policy().group_name("ops").policy_arn(&orphan).send().await.unwrap();
    // Someone else's policy under the same path: not jit-iam's, never touched;
    // nor one from before installation ids, which no grant here knows.
    let foreign = f.account.create_policy("not-ours", "/jit-iam/", &[]).await;
    let legacy = f.account.create_policy("jit-iam-legacy", "/jit-iam/", &[("managed-by", "jit-iam")]).await;
    // A shared policy jit-iam detached at the end of a grant, attached again by an admin: not jit-iam's.
    let regiven = f.grant("iam_policy", "attach", "dave").await;
    f.revoke(&regiven).await;
    iam.attach_user_policy().user_name("dave").policy_arn(&f.shared_policy).send().await.unwrap();
    // A user renamed while granted: reported, and the access went with it.
    let renamed = f.grant("iam_policy", "attach", "frank").await;
    iam.update_user().user_name("frank").new_user_name("francis").send().await.unwrap();

    let first = f.reconcile(json!({})).await;
    let expected = [
        ("access_left_after_end", "repaired"),
        ("access_left_after_end", "reported"),
        ("orphaned_policy", "kept"),
        ("principal_changed", "reported"),
    ];
    assert_eq!(findings(&first), pairs(&expected), "{first}");
    assert_eq!(f.account.user_policies("dave").await, [f.shared_policy.clone()], "given again: left alone");
    assert!(f.account.user_policies("erin").await.is_empty(), "the leftover is detached");
    let jit = f.account.jit_policies().await;
    assert!(!jit.contains(&leftover) && jit.contains(&orphan) && jit.contains(&foreign), "{jit:?}");
    assert!(jit.contains(&legacy), "{jit:?}");

    let second = f.reconcile(json!({"delete_orphans": true})).await;
    let expected =
        [("access_left_after_end", "reported"), ("orphaned_policy", "repaired"), ("principal_changed", "reported")];
    assert_eq!(findings(&second), pairs(&expected), "{second}");
    let mut left = f.account.jit_policies().await;
    left.sort();
    let mut expected = vec![foreign.clone(), legacy.clone()];
    expected.sort();
    assert_eq!(left, expected);
    let group_policies = iam.list_attached_group_policies().group_name("ops").send().await.unwrap();
    assert!(group_policies.attached_policies().is_empty(), "detached from the group first");
    assert_eq!(f.account.user_policies("francis").await, [f.shared_policy.clone()], "renamed: access intact");
    f.revoke(&renamed).await;
    assert!(f.account.user_policies("francis").await.is_empty());
}

/// Scheduled runs (every 2 s here), and an orphan deleted by one once its grace (1 s) has passed.
#[tokio::test]
async fn runs_are_scheduled_and_orphans_go_after_the_grace_period() {
    let f = Fixture::new(&[("JIT_IAM_RECONCILE_INTERVAL", "2s"), ("JIT_IAM_ORPHAN_GRACE", "1s")]).await;
    let orphan = f.orphan().await;
    let path = format!("/v1/integrations/{}/reconciliations", f.integration);
    let actions_of = |page: &Value| -> Vec<String> {
        let runs = page["items"].as_array().unwrap();
        let findings = runs.iter().flat_map(|r| r["findings"].as_array().unwrap());
        findings.filter_map(|f| f["action"].as_str().map(str::to_string)).collect()
    };
    let page = eventually(Duration::from_secs(60), "a scheduled run deleting the orphan", || async {
        let (_, page) = f.server.get(&path).await;
        actions_of(&page).contains(&"repaired".to_string()).then_some(page)
    })
    .await;
    assert!(!f.account.jit_policies().await.contains(&orphan));
    let runs = page["items"].as_array().unwrap();
    assert!(runs.len() >= 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["trigger"] == "scheduled"), "{runs:?}");
    let actions = actions_of(&page);
    assert!(actions.contains(&"kept".to_string()), "first seen and kept: {actions:?}");
}

/// Access the grantee had before a grant, removed by an admin while the grant
/// shares it: the repair puts it back as the grant's own, so the grant's end
/// removes it (else the repair would make it permanent). With two grants
/// sharing it, it goes with the last one.
#[tokio::test]
async fn repaired_preexisting_access_is_the_grants_own_and_ends_with_it() {
    let f = Fixture::new(&[]).await;
    f.account.attach("alice", &f.shared_policy).await;
    f.account.add_to_group("carol", "ops").await;
    f.account.attach("bob", &f.shared_policy).await;
    let policy = f.grant("iam_policy", "attach", "alice").await;
    let member = f.grant("iam_group", "member", "carol").await;
    let first = f.grant("iam_policy", "attach", "bob").await;
    let second = f.grant("iam_policy", "attach", "bob").await;

    // The team moves to just-in-time access: the standing access goes.
    let iam = &f.account.iam;
    for user in ["alice", "bob"] {
        iam.detach_user_policy().user_name(user).policy_arn(&f.shared_policy).send().await.unwrap();
    }
    iam.remove_user_from_group().user_name("carol").group_name("ops").send().await.unwrap();

    let repaired = f.reconcile(json!({})).await;
    // bob's second grant finds the policy that the repair for his first made the grants' own.
    let mut expected = vec![("preexisting_access_removed", "repaired"); 3];
    expected.push(("access_missing", "repaired"));
    assert_eq!(findings(&repaired), pairs(&expected), "{repaired}");
    assert_eq!(f.account.user_policies("alice").await, [f.shared_policy.clone()]);
    assert_eq!(f.account.user_groups("carol").await, ["ops"]);
    let (_, events) = f.server.get(&format!("/v1/grants/{}/events", policy["id"].as_str().unwrap())).await;
    let said = events["items"].as_array().unwrap().iter().filter_map(|e| e["message"].as_str()).collect::<Vec<_>>();
    assert!(said.iter().any(|m| m.contains("no longer pre-existing")), "{said:?}");
    let (_, audit) = f.server.get("/v1/audit-events?action=grant.drift_repaired").await;
    let actors: Vec<&Value> = audit["items"].as_array().unwrap().iter().map(|r| &r["actor"]).collect();
    assert_eq!(actors, vec![&json!("jit-iam"); 4], "{audit}");

    f.revoke(&policy).await;
    f.revoke(&member).await;
    assert!(f.account.user_policies("alice").await.is_empty(), "the grant's end removes what its repair put back");
    assert!(f.account.user_groups("carol").await.is_empty(), "the membership too");
    f.revoke(&first).await;
    assert_eq!(f.account.user_policies("bob").await, [f.shared_policy.clone()], "the second grant still holds it");
    f.revoke(&second).await;
    assert!(f.account.user_policies("bob").await.is_empty(), "gone with the last grant");
}

/// Two installations (two databases) on one account: each one's
/// reconciliation with `delete_orphans` keeps the other's live grant and
/// deletes only its own orphan; its policies carry its installation id.
#[tokio::test]
async fn a_second_installation_never_deletes_the_first_ones_grants() {
    let first = Fixture::new(&[]).await;
    let second = first.second_installation().await;
    let (first_id, second_id) = (first.installation_id().await, second.installation_id().await);
    assert_ne!(first_id, second_id);
    let first_grant = first.grant("s3_bucket", "read", "alice").await;
    let second_grant = second.grant("s3_bucket", "read", "bob").await;
    let first_policy = first_grant["policy"]["arn"].as_str().unwrap().to_string();
    let second_policy = second_grant["policy"]["arn"].as_str().unwrap().to_string();
    let tags = first.account.iam.list_policy_tags().policy_arn(&first_policy).send().await.unwrap();
    let tagged: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert!(tagged.contains(&("jit-iam:installation-id", first_id.as_str())), "{tagged:?}");
    let (first_orphan, second_orphan) = (first.orphan().await, second.orphan().await);

    for (f, orphan) in [(&first, &first_orphan), (&second, &second_orphan)] {
        let run = f.reconcile(json!({"delete_orphans": true})).await;
        assert_eq!(findings(&run), pairs(&[("orphaned_policy", "repaired")]), "{run}");
        assert_eq!(run["findings"][0]["target"], json!(orphan), "{run}");
    }
    let left = first.account.jit_policies().await;
    assert!(!left.contains(&first_orphan) && !left.contains(&second_orphan), "{left:?}");
    assert_eq!(first.account.user_policies("alice").await, [first_policy]);
    assert_eq!(first.account.user_policies("bob").await, [second_policy]);
    for f in [&first, &second] {
        let (_, audit) = f.server.get("/v1/audit-events?action=reconciliation.orphan_deleted").await;
        let record = &audit["items"][0];
        assert_eq!((&record["actor"], &record["role"]), (&json!("jit-iam"), &json!("service")), "{audit}");
    }
}

/// An organization's accounts are reconciled side by side
/// (`JIT_IAM_RECONCILE_ACCOUNT_CONCURRENCY`): drift in every member is found
/// and put back, each finding naming its own grant.
#[tokio::test]
async fn an_organizations_accounts_are_reconciled_side_by_side() {
    let moto = Moto::shared();
    let root = moto.account(&random_account_id()).await;
    root.organizations.create_organization().send().await.unwrap();
    let mut members = Vec::new();
    for i in 0..5 {
        let created = root
            .organizations
            .create_account()
            .email(format!("reconciled{i}@example.com"))
            .account_name(format!("reconciled-{i}"))
            .send()
            .await
            .unwrap();
        let member = moto.account(&created.create_account_status.unwrap().account_id.unwrap()).await;
        member.create_user("alice", &[]).await;
        member.create_bucket(&unique("reconciled"), &[]).await;
        members.push(member);
    }
    let server = TestServer::builder(moto)
        .env("JIT_IAM_RECONCILE_ACCOUNT_CONCURRENCY", "3")
        .env("JIT_IAM_RECONCILE_INTERVAL", "0")
        .start()
        .await;
    let integration = server
        .create_integration(json!({
            "name": unique("reconciled"), "connection": "organization",
            "root_account": {"account_id": root.id, "access_role_arn": root.role_arn("jit-iam-access"),
                             "external_id": "external-id-123", "region": "us-east-1"},
            "options": {"regions": ["us-east-1"], "member_role_name": "jit-iam-member"}
        }))
        .await;
    let integration = integration["id"].as_str().unwrap().to_string();
    server.wait_for_sync(&integration).await;

    let mut granted = Vec::new();
    for member in &members {
        let buckets =
            server.browse_all(&format!("integration_id={integration}&type=s3_bucket&account_id={}", member.id)).await;
        let (status, grant) = server
            .post(
                "/v1/grants?wait=20",
                json!({
                    "integration_id": integration, "resource_id": buckets[0]["id"], "access_level": "read",
                    "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": 3600,
                    "request_id": unique("reconciled"), "approved_by": "approver@example.com"
                }),
            )
            .await;
        assert_eq!((status.as_u16(), grant["status"].as_str()), (202, Some("active")), "{grant}");
        let policy = grant["policy"]["arn"].as_str().unwrap().to_string();
        member.iam.detach_user_policy().user_name("alice").policy_arn(&policy).send().await.unwrap();
        granted.push((grant["id"].as_str().unwrap().to_string(), policy));
    }

    let f = Fixture { server, account: root, integration, shared_policy: String::new() };
    let run = f.reconcile(json!({})).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(findings(&run), pairs(&[("access_missing", "repaired"); 5]), "{run}");
    let found: std::collections::BTreeSet<&str> =
        run["findings"].as_array().unwrap().iter().filter_map(|f| f["grant_id"].as_str()).collect();
    assert_eq!(found, granted.iter().map(|(id, _)| id.as_str()).collect(), "one finding per member's grant");
    for (member, (_, policy)) in members.iter().zip(&granted) {
        assert_eq!(member.user_policies("alice").await, [policy.clone()], "attached again in {}", member.id);
    }
}
