//! Grants: applied and revoked in IAM (checked in moto with the SDK), exactly
//! once, surviving crashes and replicas.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{eventually, random_account_id, unique, Account, Moto, TestServer};

/// An account with something of every type, synced into a server's inventory.
struct Fixture {
    server: TestServer,
    account: Account,
    integration: String,
    bucket: String,
    group_policy: String,
}

impl Fixture {
    async fn new() -> Fixture {
        Self::with(TestServer::builder(Moto::shared()).env("JIT_IAM_MIN_GRANT", "1s")).await
    }

    async fn with(builder: crate::support::ServerBuilder) -> Fixture {
        let account = Moto::shared().account(&random_account_id()).await;
        let bucket = unique("grants");
        for user in ["alice", "bob", "carol", "dave", "erin", "frank", "gina"] {
            account.create_user(user, &[]).await;
        }
        account.create_group("ops").await;
        // Grantee roles (one named like a user), the role jit-iam assumes, and one AWS owns.
        for role in ["deployer", "worker", "alice", "jit-iam-access"] {
            account.create_role(role, &[]).await;
        }
        account.iam.create_service_linked_role().aws_service_name("autoscaling.amazonaws.com").send().await.unwrap();
        let group_policy = account.create_policy("readonly", "/", &[]).await;
        account.create_bucket(&bucket, &[]).await;
        account.run_instances("us-east-1", 1, &[("Name", "web")]).await;
        let server = builder.start().await;
        let integration = server.connect(&account, &unique("grants")).await;
        Fixture { server, account, integration, bucket, group_policy }
    }

    async fn resource(&self, resource_type: &str) -> Value {
        let items = self.server.browse_all(&format!("integration_id={}&type={resource_type}", self.integration)).await;
        // jit-iam's own role is listed, and refused as a target (a test below).
        let grantable = items.into_iter().find(|r| r["name"] != "jit-iam-access");
        grantable.unwrap_or_else(|| panic!("no {resource_type} in the inventory"))
    }

    async fn body(&self, resource_type: &str, level: &str, user: &str, seconds: i64) -> Value {
        self.body_to(resource_type, level, ("iam_user", user), seconds).await
    }

    /// A grant to `principal` (type, name).
    async fn body_to(&self, resource_type: &str, level: &str, principal: (&str, &str), seconds: i64) -> Value {
        let resource = self.resource(resource_type).await;
        json!({
            "integration_id": self.integration,
            "resource_id": resource["id"],
            "access_level": level,
            "principal": {"type": principal.0, "name": principal.1},
            "duration_seconds": seconds,
            "request_id": unique("req"),
            "approved_by": "approver@example.com",
            "reason": "tests"
        })
    }

    /// Submits and waits until the grant is active or failed.
    async fn grant(&self, body: Value) -> Value {
        let (status, grant) = self.server.post("/v1/grants?wait=20", body).await;
        assert_eq!(status, 202, "{grant}");
        grant
    }

    async fn wait_status(&self, id: &str, wanted: &str) -> Value {
        eventually(Duration::from_secs(30), &format!("grant {id} to be {wanted}"), || async {
            let (_, grant) = self.server.get(&format!("/v1/grants/{id}")).await;
            (grant["status"] == wanted).then_some(grant)
        })
        .await
    }

    async fn revoke(&self, id: &str) -> Value {
        let (status, grant) = self.server.post(&format!("/v1/grants/{id}/revoke"), json!({})).await;
        assert_eq!(status, 202, "{grant}");
        self.wait_status(id, "revoked").await
    }

    async fn events(&self, id: &str) -> Vec<Value> {
        let (_, page) = self.server.get(&format!("/v1/grants/{id}/events")).await;
        page["items"].as_array().unwrap().clone()
    }
}

/// The successful AWS calls of a grant, in order.
fn calls(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["kind"] == "aws_call" && e["outcome"] == "success")
        .map(|e| e["operation"].as_str().unwrap().to_string())
        .collect()
}

/// The successful IAM changes of a grant, in order (reads left out: some
/// run side by side with a change, so their order varies).
fn changes(events: &[Value]) -> Vec<String> {
    let reads = |op: &str| op.starts_with("iam:Get") || op.starts_with("iam:List");
    calls(events).into_iter().filter(|op| !reads(op)).collect()
}

fn transitions(events: &[Value]) -> Vec<String> {
    events.iter().filter(|e| e["kind"] == "transition").map(|e| e["to_status"].as_str().unwrap().to_string()).collect()
}

/// Every level granted through a policy made for the grant.
const GENERATED_POLICY_CASES: [(&str, &str); 7] = [
    ("s3_bucket", "read"),
    ("s3_bucket", "write"),
    ("s3_bucket", "admin"),
    ("ec2_instance", "connect"),
    ("ec2_instance", "operate"),
    ("ec2_instance", "admin"),
    ("iam_role", "assume"),
];

#[tokio::test]
async fn every_type_and_level_is_applied_then_revoked() {
    let f = Fixture::new().await;
    let mut ids = Vec::new();
    for (resource_type, level) in GENERATED_POLICY_CASES {
        let grant = f.grant(f.body(resource_type, level, "alice", 3600).await).await;
        assert_eq!(grant["status"], "active", "{resource_type} {level}: {grant}");
        let policy = &grant["policy"];
        let arn = policy["arn"].as_str().unwrap();
        assert_eq!(policy["name"], format!("jit-iam-{}", grant["id"].as_str().unwrap()));
        assert!(arn.starts_with(&format!("arn:aws:iam::{}:policy/jit-iam/jit-iam-", f.account.id)));
        // What IAM holds is exactly the document the grant shows.
        assert_eq!(f.account.policy_document(arn).await, policy["document"], "{resource_type} {level}");
        assert!(f.account.user_policies("alice").await.contains(&arn.to_string()));
        let tags = f.account.iam.list_policy_tags().policy_arn(arn).send().await.unwrap();
        let tags: BTreeMap<&str, &str> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
        assert_eq!(tags["managed-by"], "jit-iam");
        assert_eq!(tags["jit-iam:grant-id"], grant["id"].as_str().unwrap());
        assert_eq!(tags["jit-iam:resource-arn"], grant["resource"]["arn"].as_str().unwrap());
        ids.push(grant["id"].as_str().unwrap().to_string());
    }
    let policy_grant = f.grant(f.body("iam_policy", "attach", "alice", 3600).await).await;
    assert_eq!(policy_grant["status"], "active", "{policy_grant}");
    assert!(policy_grant["policy"].is_null());
    assert!(f.account.user_policies("alice").await.contains(&f.group_policy));
    let group_grant = f.grant(f.body("iam_group", "member", "alice", 3600).await).await;
    assert_eq!(group_grant["status"], "active", "{group_grant}");
    assert_eq!(f.account.user_groups("alice").await, ["ops"]);
    assert_eq!(f.account.jit_policies().await.len(), 7);

    for (id, (resource_type, _)) in ids.iter().zip(GENERATED_POLICY_CASES) {
        let revoked = f.revoke(id).await;
        assert_eq!(revoked["revoke_reason"], "revoked");
        let events = f.events(id).await;
        let mut expected = vec!["iam:CreatePolicy", "iam:AttachUserPolicy", "iam:DetachUserPolicy", "iam:DeletePolicy"];
        if resource_type == "iam_role" {
            expected.push("iam:PutRolePolicy"); // the deny of the sessions it gave
        }
        assert_eq!(changes(&events), expected);
        assert!(calls(&events).contains(&"iam:GetUser".to_string()), "the principal checked: {events:?}");
        assert_eq!(transitions(&events), ["pending", "active", "revoking", "revoked"]);
        assert!(events.iter().all(|e| e["outcome"] != "failed"), "{events:?}");
    }
    for grant in [&policy_grant, &group_grant] {
        f.revoke(grant["id"].as_str().unwrap()).await;
    }
    assert!(f.account.jit_policies().await.is_empty(), "no policy is left behind");
    assert!(f.account.user_policies("alice").await.is_empty());
    assert!(f.account.user_groups("alice").await.is_empty());
    let events = f.events(policy_grant["id"].as_str().unwrap()).await;
    assert_eq!(changes(&events), ["iam:AttachUserPolicy", "iam:DetachUserPolicy"]);
    let events = f.events(group_grant["id"].as_str().unwrap()).await;
    assert_eq!(changes(&events), ["iam:AddUserToGroup", "iam:RemoveUserFromGroup"]);
    // Read first: what alice holds, and that she is still the user approved (before attaching and before removing).
    assert_eq!(calls(&events).iter().filter(|op| *op == "iam:GetUser").count(), 2, "{events:?}");
    assert!(calls(&events).contains(&"iam:ListGroupsForUser".to_string()), "{events:?}");

    // The rows in Postgres agree.
    let statuses: Vec<String> =
        sqlx::query_scalar("select distinct status from grants").fetch_all(&f.server.db().await).await.unwrap();
    assert_eq!(statuses, ["revoked"]);

    // Dozens of AWS calls, and not one line of the SDK's debug output at the
    // harness's `info,jit_iam=debug`: its level is capped, not raised.
    let sdk_lines = f.server.logs().into_iter().filter(|l| l.contains(r#""target":"aws_smithy_runtime"#)).count();
    assert_eq!(sdk_lines, 0, "the AWS SDK's runtime logged below the configured level");
}

/// An idle replica stores a submitted grant already leased to itself and
/// applies it at once, without a claim.
#[tokio::test]
async fn a_submission_is_handed_to_the_local_worker_without_a_claim() {
    let f = Fixture::new().await;
    let mut body = f.body("s3_bucket", "read", "alice", 600).await;
    for _ in 0..4 {
        body["request_id"] = json!(unique("handoff"));
        assert_eq!(f.grant(body.clone()).await["status"], "active");
    }
    assert_eq!(f.server.metric("jit_iam_grant_handoffs_total").await, 4.0);
}

#[tokio::test]
async fn grants_expire_on_time() {
    let f = Fixture::new().await;
    let grant = f.grant(f.body("s3_bucket", "read", "bob", 2).await).await;
    assert_eq!(grant["status"], "active");
    let arn = grant["policy"]["arn"].as_str().unwrap().to_string();
    assert!(f.account.user_policies("bob").await.contains(&arn));
    let revoked = f.wait_status(grant["id"].as_str().unwrap(), "revoked").await;
    assert_eq!(revoked["revoke_reason"], "expired");
    let expires_at: chrono::DateTime<chrono::Utc> = revoked["expires_at"].as_str().unwrap().parse().unwrap();
    let finished_at: chrono::DateTime<chrono::Utc> = revoked["finished_at"].as_str().unwrap().parse().unwrap();
    let lag = (finished_at - expires_at).num_milliseconds();
    assert!((0..1000).contains(&lag), "revoked {lag} ms after expiry");
    assert!(f.account.user_policies("bob").await.is_empty());
    assert!(f.account.jit_policies().await.is_empty());
}

#[tokio::test]
async fn extend_and_revoke_on_request() {
    let f = Fixture::new().await;
    let grant = f.grant(f.body("iam_role", "assume", "carol", 120).await).await;
    let id = grant["id"].as_str().unwrap();
    let path = format!("/v1/grants/{id}/extend");
    let (status, extended) = f.server.post(&path, json!({"duration_seconds": 600})).await;
    assert_eq!(status, 200, "{extended}");
    let before: chrono::DateTime<chrono::Utc> = grant["expires_at"].as_str().unwrap().parse().unwrap();
    let after: chrono::DateTime<chrono::Utc> = extended["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((after - before).num_seconds(), 600);
    for (body, field) in [
        (json!({"expires_at": before.to_rfc3339()}), "expires_at"),
        (json!({"duration_seconds": 30 * 86_400}), "duration_seconds"),
        (json!({"duration_seconds": -5}), "duration_seconds"),
        (json!({}), "duration_seconds"),
    ] {
        let (status, error) = f.server.post(&path, body.clone()).await;
        assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (422, Some(field)), "{body}: {error}");
    }
    let events = f.events(id).await;
    assert!(events.iter().any(|e| e["kind"] == "extended" && e["actor"] == "tests"), "{events:?}");

    let revoked = f.revoke(id).await;
    assert_eq!(revoked["revoke_reason"], "revoked");
    assert!(f.account.user_policies("carol").await.is_empty());
    let (status, again) = f.server.post(&format!("/v1/grants/{id}/revoke"), json!({})).await;
    assert_eq!((status.as_u16(), again["status"].as_str()), (202, Some("revoked")));
    let (status, error) = f.server.post(&path, json!({"duration_seconds": 60})).await;
    assert_eq!((status.as_u16(), error["error"]["code"].as_str()), (409, Some("invalid_state")));
}

#[tokio::test]
async fn a_request_id_is_granted_once() {
    let f = Fixture::new().await;
    let body = f.body("s3_bucket", "read", "alice", 600).await;
    let (status, first) = f.server.post("/v1/grants", body.clone()).await;
    assert_eq!(status, 202);
    assert_eq!(first["status"], "pending");
    let (status, replay) = f.server.post("/v1/grants", body.clone()).await;
    assert_eq!((status.as_u16(), &replay["id"]), (200, &first["id"]));
    let mut different = body.clone();
    different["access_level"] = json!("write");
    let (status, error) = f.server.post("/v1/grants", different).await;
    assert_eq!(
        (status.as_u16(), error["error"]["code"].as_str(), error["error"]["field"].as_str()),
        (409, Some("request_id_conflict"), Some("request_id"))
    );
    // Racing replays make one grant too.
    let mut racing = body.clone();
    racing["request_id"] = json!(unique("race"));
    let answers = futures::future::join_all((0..8).map(|_| f.server.post("/v1/grants", racing.clone()))).await;
    let ids: BTreeSet<&str> = answers.iter().map(|(_, g)| g["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1);
    let rows: i64 = sqlx::query_scalar("select count(*) from grants").fetch_one(&f.server.db().await).await.unwrap();
    assert_eq!(rows, 2);
    f.wait_status(first["id"].as_str().unwrap(), "active").await;
    let (_, listed) = f.server.get(&format!("/v1/grants?request_id={}", body["request_id"].as_str().unwrap())).await;
    assert_eq!(listed["items"][0]["id"], first["id"]);
}

/// Access the user had before any grant is never removed; a policy or group
/// shared by overlapping grants stays until the last of them ends.
#[tokio::test]
async fn shared_attachments_are_reference_counted() {
    let f = Fixture::new().await;
    // carol had the policy before jit-iam.
    f.account.attach("carol", &f.group_policy).await;
    let held_before = f.grant(f.body("iam_policy", "attach", "carol", 600).await).await;
    assert_eq!(held_before["status"], "active");
    let events = f.events(held_before["id"].as_str().unwrap()).await;
    assert!(changes(&events).is_empty(), "nothing to change");
    assert!(calls(&events).contains(&"iam:ListAttachedUserPolicies".to_string()), "{events:?}");
    f.revoke(held_before["id"].as_str().unwrap()).await;
    assert_eq!(f.account.user_policies("carol").await, [f.group_policy.clone()], "kept: carol had it before");

    // Two overlapping group grants for dave.
    let first = f.grant(f.body("iam_group", "member", "dave", 600).await).await;
    let second = f.grant(f.body("iam_group", "member", "dave", 600).await).await;
    assert_eq!((first["status"].as_str(), second["status"].as_str()), (Some("active"), Some("active")));
    assert!(calls(&f.events(second["id"].as_str().unwrap()).await).is_empty(), "the second grant changes nothing");
    f.revoke(first["id"].as_str().unwrap()).await;
    assert_eq!(f.account.user_groups("dave").await, ["ops"], "the second grant still holds it");
    f.revoke(second["id"].as_str().unwrap()).await;
    assert!(f.account.user_groups("dave").await.is_empty());

    // bob is in the group before jit-iam: a grant and its end leave him there.
    f.account.add_to_group("bob", "ops").await;
    let grant = f.grant(f.body("iam_group", "member", "bob", 600).await).await;
    f.revoke(grant["id"].as_str().unwrap()).await;
    assert_eq!(f.account.user_groups("bob").await, ["ops"]);
    let tracked: i64 =
        sqlx::query_scalar("select count(*) from shared_attachments").fetch_one(&f.server.db().await).await.unwrap();
    assert_eq!(tracked, 0);
}

#[tokio::test]
async fn the_managed_policy_quota_is_checked_before_any_change() {
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_user("full", &[]).await;
    for i in 0..10 {
        let arn = account.create_policy(&format!("p{i}"), "/", &[]).await;
        account.attach("full", &arn).await;
    }
    let bucket = unique("quota");
    account.create_bucket(&bucket, &[]).await;
    let server = TestServer::start().await;
    let integration = server
        .create_integration(json!({
            "name": "quota", "connection": "single_account",
            "root_account": {"account_id": account.id, "access_role_arn": account.role_arn("jit-iam-access"),
                             "external_id": "external-id-123", "region": "us-east-1"},
            "options": {"regions": ["us-east-1"]}
        }))
        .await;
    let id = integration["id"].as_str().unwrap();
    server.wait_for_sync(id).await;
    let bucket_resource = &server.browse_all(&format!("integration_id={id}&type=s3_bucket")).await[0];
    let body = json!({
        "integration_id": id, "resource_id": bucket_resource["id"], "access_level": "read",
        "principal": {"type": "iam_user", "name": "full"}, "duration_seconds": 600,
        "request_id": unique("req"), "approved_by": "approver"
    });
    let (status, error) = server.post("/v1/grants", body.clone()).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(
        (error["error"]["code"].as_str(), error["error"]["field"].as_str()),
        (Some("quota_exceeded"), Some("principal.name"))
    );
    let (status, error) = server.post("/v1/grants/preview", body).await;
    assert_eq!((status.as_u16(), error["error"]["code"].as_str()), (409, Some("quota_exceeded")));
    let rows: i64 = sqlx::query_scalar("select count(*) from grants").fetch_one(&server.db().await).await.unwrap();
    assert_eq!(rows, 0);
    assert!(account.jit_policies().await.is_empty());
    assert_eq!(account.user_policies("full").await.len(), 10);
}

#[tokio::test]
async fn a_user_deleted_before_apply_fails_the_grant_and_nothing_is_left() {
    let f = Fixture::new().await;
    f.account.iam.delete_user().user_name("dave").send().await.unwrap();
    let grant = f.grant(f.body("s3_bucket", "write", "dave", 600).await).await;
    let grant =
        if grant["status"] == "failed" { grant } else { f.wait_status(grant["id"].as_str().unwrap(), "failed").await };
    assert_eq!(grant["last_error"]["aws"]["code"], "NoSuchEntity", "{grant}");
    assert_eq!(grant["last_error"]["aws"]["operation"], "iam:AttachUserPolicy");
    assert!(grant["activated_at"].is_null());
    let events = f.events(grant["id"].as_str().unwrap()).await;
    assert_eq!(changes(&events), ["iam:CreatePolicy", "iam:DeletePolicy"], "created, then undone");
    assert_eq!(transitions(&events), ["pending", "revoking", "failed"]);
    assert!(f.account.jit_policies().await.is_empty(), "nothing left behind");
}

#[tokio::test]
async fn preview_shows_the_policy_and_calls_and_changes_nothing() {
    let f = Fixture::new().await;
    let (status, preview) = f.server.post("/v1/grants/preview", f.body("s3_bucket", "read", "alice", 600).await).await;
    assert_eq!(status, 200, "{preview}");
    let bucket_arn = format!("arn:aws:s3:::{}", f.bucket);
    assert_eq!(preview["policy_document"]["Statement"][0]["Resource"], json!([bucket_arn]));
    assert_eq!(preview["policy_document"]["Statement"][1]["Action"], json!(["s3:GetObject", "s3:GetObjectVersion"]));
    let operations = |calls: &Value| {
        calls.as_array().unwrap().iter().map(|c| c["operation"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(operations(&preview["apply_calls"]), ["iam:CreatePolicy", "iam:GetUser", "iam:AttachUserPolicy"]);
    assert_eq!(
        operations(&preview["revoke_calls"]),
        ["iam:DetachUserPolicy", "iam:ListEntitiesForPolicy", "iam:DeletePolicy"]
    );
    assert_eq!(preview["managed_policies"], json!({"attached": 0, "after_grant": 1, "limit": 10}));
    let (_, group) = f.server.post("/v1/grants/preview", f.body("iam_group", "member", "alice", 600).await).await;
    assert_eq!(operations(&group["apply_calls"]), ["iam:ListGroupsForUser", "iam:GetUser", "iam:AddUserToGroup"]);
    assert!(group["policy_document"].is_null());
    let rows: i64 = sqlx::query_scalar("select count(*) from grants").fetch_one(&f.server.db().await).await.unwrap();
    assert_eq!(rows, 0);
    assert!(f.account.jit_policies().await.is_empty());
}

#[tokio::test]
async fn bad_grants_are_refused_naming_the_field() {
    let f = Fixture::new().await;
    let base = f.body("s3_bucket", "read", "alice", 600).await;
    let user = f.resource("iam_user").await;
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Mutation, u16, &str)> = vec![
        (Box::new(|b| b["integration_id"] = json!(uuid::Uuid::new_v4())), 404, "integration_id"),
        (Box::new(|b| b["resource_id"] = json!(uuid::Uuid::new_v4())), 404, "resource_id"),
        (Box::new(|b| b["resource_arn"] = json!("arn:aws:s3:::elsewhere")), 422, "resource_id"),
        (
            Box::new(|b| {
                b["resource_id"] = Value::Null;
                b["resource_arn"] = json!("arn:aws:s3:::not-synced");
            }),
            404,
            "resource_arn",
        ),
        (Box::new(move |b| b["resource_id"] = user["id"].clone()), 422, "resource_id"),
        (Box::new(|b| b["access_level"] = json!("assume")), 422, "access_level"),
        (Box::new(|b| b["access_level"] = json!("everything")), 422, "access_level"),
        (Box::new(|b| b["principal"]["name"] = json!("mallory")), 404, "principal.name"),
        (Box::new(|b| b["principal"]["type"] = json!("iam_group")), 422, "principal.type"),
        (Box::new(|b| b["duration_seconds"] = json!(0)), 422, "duration_seconds"),
        (Box::new(|b| b["duration_seconds"] = json!(8 * 86_400)), 422, "duration_seconds"),
        (Box::new(|b| b["duration_seconds"] = json!("an hour")), 422, "duration_seconds"),
        (Box::new(|b| b["expires_at"] = json!("2030-01-01T00:00:00Z")), 422, "duration_seconds"),
        (
            Box::new(|b| {
                b["duration_seconds"] = Value::Null;
                b["expires_at"] = json!("2001-01-01T00:00:00Z");
            }),
            422,
            "expires_at",
        ),
        (Box::new(|b| b["request_id"] = json!("")), 422, "request_id"),
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("approved_by");
            }),
            422,
            "approved_by",
        ),
        (Box::new(|b| b["reason"] = json!("x".repeat(2001))), 422, "reason"),
        (Box::new(|b| b["sneaky"] = json!(1)), 422, "sneaky"),
    ];
    for (mutate, status, field) in cases {
        let mut body = base.clone();
        body["request_id"] = json!(unique("bad"));
        mutate(&mut body);
        let (got, error) = f.server.post("/v1/grants", body.clone()).await;
        assert_eq!((got.as_u16(), error["error"]["field"].as_str()), (status, Some(field)), "{body} -> {error}");
    }
    let (status, error) = f.server.post("/v1/grants?wait=31", base.clone()).await;
    assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (400, Some("wait")));
    let rows: i64 = sqlx::query_scalar("select count(*) from grants").fetch_one(&f.server.db().await).await.unwrap();
    assert_eq!(rows, 0);

    // By ARN works as well as by id.
    let mut by_arn = base.clone();
    by_arn["resource_id"] = Value::Null;
    by_arn["resource_arn"] = json!(format!("arn:aws:s3:::{}", f.bucket));
    let (status, grant) = f.server.post("/v1/grants", by_arn).await;
    assert_eq!(status, 202, "{grant}");
    // JSON Schema's integers include 600.0, and so does the API.
    let mut float_seconds = base.clone();
    float_seconds["request_id"] = json!(unique("float"));
    float_seconds["duration_seconds"] = json!(600.0);
    let (status, grant) = f.server.post("/v1/grants", float_seconds).await;
    assert_eq!(status, 202, "{grant}");
    for (path, field) in
        [("/v1/grants?status=done", "status"), ("/v1/grants?resource_id=x", "resource_id"), ("/v1/grants/x", "id")]
    {
        let (status, error) = f.server.get(path).await;
        assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (400, Some(field)), "{path}");
    }
    let unknown = uuid::Uuid::new_v4();
    for path in [format!("/v1/grants/{unknown}"), format!("/v1/grants/{unknown}/events")] {
        assert_eq!(f.server.get(&path).await.0, 404);
    }
    assert_eq!(f.server.post(&format!("/v1/grants/{unknown}/revoke"), json!({})).await.0, 404);
}

#[tokio::test]
async fn grants_are_listed_with_filters_and_pages() {
    let f = Fixture::new().await;
    let mut ids = Vec::new();
    for user in ["alice", "bob", "alice"] {
        let (_, grant) = f.server.post("/v1/grants", f.body("iam_role", "assume", user, 600).await).await;
        ids.push(grant["id"].as_str().unwrap().to_string());
    }
    let (_, page) = f.server.get("/v1/grants?principal=alice").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let (_, page) = f.server.get("/v1/grants?limit=2").await;
    assert_eq!(page["items"][0]["id"].as_str(), Some(ids[2].as_str()), "newest first");
    let (_, next) = f.server.get(&format!("/v1/grants?limit=2&cursor={}", page["next_cursor"].as_str().unwrap())).await;
    assert_eq!(next["items"][0]["id"].as_str(), Some(ids[0].as_str()));
    assert!(next["next_cursor"].is_null());
    for id in &ids {
        f.wait_status(id, "active").await;
    }
    let (_, active) = f
        .server
        .get(&format!("/v1/grants?status=active&integration_id={}&account_id={}", f.integration, f.account.id))
        .await;
    assert_eq!(active["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn deleting_an_integration_revokes_its_grants_first() {
    let f = Fixture::new().await;
    let grant = f.grant(f.body("s3_bucket", "admin", "bob", 600).await).await;
    let path = format!("/v1/integrations/{}", f.integration);
    let (status, error) = f.server.delete(&path).await;
    assert_eq!((status.as_u16(), error["error"]["code"].as_str()), (409, Some("integration_has_live_grants")));
    let (status, deleting) = f.server.delete(&format!("{path}?revoke_grants=true")).await;
    assert_eq!((status.as_u16(), deleting["status"].as_str()), (202, Some("deleting")));
    let (status, error) = f.server.post("/v1/grants", f.body("s3_bucket", "read", "bob", 600).await).await;
    assert!(status == 409 || status == 422, "{error}");
    eventually(Duration::from_secs(30), "the integration to be deleted", || async {
        (f.server.get(&path).await.0 == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    let (_, revoked) = f.server.get(&format!("/v1/grants/{}", grant["id"].as_str().unwrap())).await;
    assert_eq!(
        (revoked["status"].as_str(), revoked["revoke_reason"].as_str()),
        (Some("revoked"), Some("integration_deleted"))
    );
    assert!(revoked["integration_id"].is_null(), "kept for the audit trail");
    assert!(f.account.jit_policies().await.is_empty());
}

/// What a role can be granted: every generated-policy level, and an IAM policy (not a group).
const ROLE_CASES: [(&str, &str); 8] = {
    let [a, b, c, d, e, f, g] = GENERATED_POLICY_CASES;
    [a, b, c, d, e, f, g, ("iam_policy", "attach")]
};

#[tokio::test]
async fn every_type_and_level_is_granted_to_a_role_and_revoked() {
    let f = Fixture::new().await;
    let mut grants = Vec::new();
    for (resource_type, level) in ROLE_CASES {
        let grant = f.grant(f.body_to(resource_type, level, ("iam_role", "worker"), 3600).await).await;
        assert_eq!(grant["status"], "active", "{resource_type} {level}: {grant}");
        assert_eq!(grant["principal"]["arn"], f.account.role_arn("worker"));
        let attached = f.account.role_policies("worker").await;
        match grant["policy"]["arn"].as_str() {
            Some(arn) => {
                assert!(attached.contains(&arn.to_string()), "{resource_type} {level}");
                assert_eq!(f.account.policy_document(arn).await, grant["policy"]["document"]);
                let events = f.events(grant["id"].as_str().unwrap()).await;
                assert_eq!(changes(&events), ["iam:CreatePolicy", "iam:AttachRolePolicy"]);
                assert!(calls(&events).contains(&"iam:GetRole".to_string()), "the principal checked: {events:?}");
            }
            None => {
                assert!(attached.contains(&f.group_policy));
                let events = f.events(grant["id"].as_str().unwrap()).await;
                assert_eq!(changes(&events), ["iam:AttachRolePolicy"]);
                assert!(calls(&events).contains(&"iam:ListAttachedRolePolicies".to_string()), "{events:?}");
            }
        }
        grants.push(grant);
    }
    assert!(f.account.user_policies("alice").await.is_empty(), "nothing reached a user");
    // A role cannot be a group member.
    let (status, error) =
        f.server.post("/v1/grants", f.body_to("iam_group", "member", ("iam_role", "worker"), 600).await).await;
    assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (422, Some("principal.type")), "{error}");

    let (_, roles) = f.server.get("/v1/grants?principal_type=iam_role&principal=worker").await;
    assert_eq!(roles["items"].as_array().unwrap().len(), ROLE_CASES.len());
    let (_, users) = f.server.get("/v1/grants?principal_type=iam_user").await;
    assert!(users["items"].as_array().unwrap().is_empty());
    let (status, error) = f.server.get("/v1/grants?principal_type=group").await;
    assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (400, Some("principal_type")));

    for grant in &grants {
        let id = grant["id"].as_str().unwrap();
        f.revoke(id).await;
        let changed = changes(&f.events(id).await);
        let expected: &[&str] = match (grant["policy"].is_object(), grant["resource"]["type"].as_str()) {
            // An assume grant's end denies the sessions it gave.
            (true, Some("iam_role")) => &["iam:DetachRolePolicy", "iam:DeletePolicy", "iam:PutRolePolicy"],
            (true, _) => &["iam:DetachRolePolicy", "iam:DeletePolicy"],
            (false, _) => &["iam:DetachRolePolicy"],
        };
        assert_eq!(&changed[changed.len() - expected.len()..], expected, "{changed:?}");
    }
    assert!(f.account.role_policies("worker").await.is_empty());
    assert!(f.account.jit_policies().await.is_empty());
}

/// A user and a role named alike hold the same policy through overlapping
/// grants: each keeps its own count, and neither's revocation touches the other.
#[tokio::test]
async fn a_user_and_a_role_with_the_same_name_never_disturb_each_other() {
    let f = Fixture::new().await;
    let (user, role) = (("iam_user", "alice"), ("iam_role", "alice"));
    let mut ids = BTreeMap::new();
    for (key, principal) in [("user-1", user), ("role-1", role), ("role-2", role), ("user-2", user)] {
        let grant = f.grant(f.body_to("iam_policy", "attach", principal, 600).await).await;
        assert_eq!(grant["status"], "active", "{grant}");
        ids.insert(key, grant["id"].as_str().unwrap().to_string());
    }
    let bucket = f.grant(f.body_to("s3_bucket", "read", role, 600).await).await;
    let bucket_policy = bucket["policy"]["arn"].as_str().unwrap().to_string();
    assert_eq!(f.account.user_policies("alice").await, [f.group_policy.clone()]);
    assert_eq!(f.account.role_policies("alice").await.len(), 2);

    f.revoke(&ids["user-1"]).await;
    f.revoke(&ids["role-1"]).await;
    assert_eq!(f.account.user_policies("alice").await, [f.group_policy.clone()], "user-2 still holds it");
    assert!(f.account.role_policies("alice").await.contains(&f.group_policy), "role-2 still holds it");
    f.revoke(&ids["role-2"]).await;
    assert_eq!(f.account.role_policies("alice").await, [bucket_policy], "only the role's own grant is left");
    assert_eq!(f.account.user_policies("alice").await, [f.group_policy.clone()], "the user's untouched");
    f.revoke(&ids["user-2"]).await;
    f.revoke(bucket["id"].as_str().unwrap()).await;
    assert!(f.account.user_policies("alice").await.is_empty());
    assert!(f.account.role_policies("alice").await.is_empty());
    let tracked: i64 =
        sqlx::query_scalar("select count(*) from shared_attachments").fetch_one(&f.server.db().await).await.unwrap();
    assert_eq!(tracked, 0);
}

#[tokio::test]
async fn a_roles_own_attachment_survives_a_grant_of_it() {
    let f = Fixture::new().await;
    f.account.iam.attach_role_policy().role_name("deployer").policy_arn(&f.group_policy).send().await.unwrap();
    let grant = f.grant(f.body_to("iam_policy", "attach", ("iam_role", "deployer"), 600).await).await;
    assert_eq!(grant["status"], "active", "{grant}");
    let id = grant["id"].as_str().unwrap();
    assert!(changes(&f.events(id).await).is_empty(), "nothing to change");
    f.revoke(id).await;
    assert_eq!(f.account.role_policies("deployer").await, [f.group_policy.clone()], "kept: the role had it before");
}

#[tokio::test]
async fn roles_have_their_own_managed_policy_quota() {
    let builder =
        TestServer::builder(Moto::shared()).env("JIT_IAM_MIN_GRANT", "1s").env("JIT_IAM_MAX_POLICIES_PER_ROLE", "2");
    let f = Fixture::with(builder).await;
    for _ in 0..2 {
        let grant = f.grant(f.body_to("s3_bucket", "read", ("iam_role", "worker"), 600).await).await;
        assert_eq!(grant["status"], "active", "{grant}");
    }
    let body = f.body_to("s3_bucket", "read", ("iam_role", "worker"), 600).await;
    let (status, error) = f.server.post("/v1/grants", body).await;
    assert_eq!(
        (status.as_u16(), error["error"]["code"].as_str(), error["error"]["field"].as_str()),
        (409, Some("quota_exceeded"), Some("principal.name"))
    );
    assert!(error["error"]["message"].as_str().unwrap().contains("JIT_IAM_MAX_POLICIES_PER_ROLE"), "{error}");
    // The user quota is apart: alice still gets three.
    for _ in 0..3 {
        let grant = f.grant(f.body("s3_bucket", "read", "alice", 600).await).await;
        assert_eq!(grant["status"], "active", "{grant}");
    }
    assert_eq!(f.account.role_policies("worker").await.len(), 2);
}

#[tokio::test]
async fn service_linked_roles_and_jit_iams_own_role_receive_no_grants_and_its_role_is_no_target() {
    let f = Fixture::new().await;
    let roles = f.server.browse_all(&format!("integration_id={}&type=iam_role", f.integration)).await;
    let linked = roles.iter().find(|r| r["arn"].as_str().unwrap().contains(":role/aws-service-role/")).unwrap();
    for name in [linked["name"].as_str().unwrap(), "jit-iam-access"] {
        let (status, error) =
            f.server.post("/v1/grants", f.body_to("s3_bucket", "read", ("iam_role", name), 600).await).await;
        assert_eq!(
            (status.as_u16(), error["error"]["field"].as_str()),
            (422, Some("principal.name")),
            "{name}: {error}"
        );
    }
    let (status, error) =
        f.server.post("/v1/grants", f.body_to("s3_bucket", "read", ("iam_role", "nobody"), 600).await).await;
    assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (404, Some("principal.name")), "{error}");
    // Nor is jit-iam's own role ever granted to anyone to assume.
    let own = roles.iter().find(|r| r["name"] == "jit-iam-access").unwrap();
    let mut body = f.body("iam_role", "assume", "alice", 600).await;
    body["resource_id"] = own["id"].clone();
    let (status, error) = f.server.post("/v1/grants", body).await;
    assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (422, Some("resource_id")), "{error}");
    let rows: i64 = sqlx::query_scalar("select count(*) from grants").fetch_one(&f.server.db().await).await.unwrap();
    assert_eq!(rows, 0);
    assert!(f.account.jit_policies().await.is_empty());
}

/// A user deleted and recreated under the same name after the sync is not
/// the grantee: the grant fails with `principal_changed` and the new user
/// receives nothing.
#[tokio::test]
async fn a_user_recreated_under_the_name_before_the_grant_is_not_the_grantee() {
    let f = Fixture::new().await;
    f.account.iam.delete_user().user_name("erin").send().await.unwrap();
    f.account.create_user("erin", &[]).await;
    for (t, level) in [("s3_bucket", "read"), ("iam_policy", "attach"), ("iam_group", "member")] {
        let grant = f.grant(f.body(t, level, "erin", 600).await).await;
        let grant = f.wait_status(grant["id"].as_str().unwrap(), "failed").await;
        assert_eq!(grant["last_error"]["code"], "principal_changed", "{t}: {grant}");
    }
    assert!(f.account.user_policies("erin").await.is_empty());
    assert!(f.account.user_groups("erin").await.is_empty());
    assert!(f.account.jit_policies().await.is_empty());
}

/// Renamed while its grants are active: each revocation finds the user by
/// its unique id and takes the access away under the new name.
#[tokio::test]
async fn a_user_renamed_while_granted_loses_the_access_under_its_new_name() {
    let f = Fixture::new().await;
    let mut ids = Vec::new();
    for (t, level) in [("s3_bucket", "read"), ("iam_policy", "attach"), ("iam_group", "member")] {
        let grant = f.grant(f.body(t, level, "frank", 600).await).await;
        assert_eq!(grant["status"], "active", "{grant}");
        ids.push(grant["id"].as_str().unwrap().to_string());
    }
    f.account.iam.update_user().user_name("frank").new_user_name("francis").send().await.unwrap();
    assert_eq!(f.account.user_policies("francis").await.len(), 2);
    for id in &ids {
        f.revoke(id).await;
    }
    assert!(f.account.user_policies("francis").await.is_empty());
    assert!(f.account.user_groups("francis").await.is_empty());
    assert!(f.account.jit_policies().await.is_empty());
}

/// Deleted (after its access was taken off by hand) and recreated, and the
/// new user given the same policy and group by an admin: revoking the old
/// user's grants leaves the new user's access alone.
#[tokio::test]
async fn revoking_never_takes_access_from_a_user_recreated_under_the_name() {
    let f = Fixture::new().await;
    let policy = f.grant(f.body("iam_policy", "attach", "gina", 600).await).await;
    let group = f.grant(f.body("iam_group", "member", "gina", 600).await).await;
    let iam = &f.account.iam;
    iam.detach_user_policy().user_name("gina").policy_arn(&f.group_policy).send().await.ok();
    for arn in f.account.user_policies("gina").await {
        iam.detach_user_policy().user_name("gina").policy_arn(arn).send().await.unwrap();
    }
    iam.remove_user_from_group().user_name("gina").group_name("ops").send().await.unwrap();
    iam.delete_user().user_name("gina").send().await.unwrap();
    f.account.create_user("gina", &[]).await;
    let shared = f.resource("iam_policy").await["arn"].as_str().unwrap().to_string();
    iam.attach_user_policy().user_name("gina").policy_arn(&shared).send().await.unwrap();
    iam.add_user_to_group().user_name("gina").group_name("ops").send().await.unwrap();
    for grant in [&policy, &group] {
        f.revoke(grant["id"].as_str().unwrap()).await;
    }
    assert_eq!(f.account.user_policies("gina").await, [shared]);
    assert_eq!(f.account.user_groups("gina").await, ["ops"]);
}
