//! The policies jit-iam writes into IAM never allow a write on `Resource: "*"`:
//! a statement on every resource may only describe, get or list, and a
//! `NotAction` (the admin levels: all but what outlives the grant) only ever
//! names the one resource.

use serde_json::{json, Value};

use crate::support::{random_account_id, unique, Moto, TestServer};

/// A string or an array of strings, as IAM allows for Action and Resource.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().map(|v| v.as_str().unwrap_or("<not a string>").to_string()).collect(),
        Value::Null => vec![],
        other => vec![other.to_string()],
    }
}

/// Every way `document` allows more than reading on every resource.
fn broad_writes(document: &Value) -> Vec<String> {
    let statements = match &document["Statement"] {
        Value::Array(items) => items.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        other => return vec![format!("no statements: {other}")],
    };
    let mut problems = Vec::new();
    for statement in &statements {
        if statement["Effect"] != "Allow" {
            continue;
        }
        // NotResource allows everything but what it lists: never on a generated policy.
        if !statement["NotResource"].is_null() {
            problems.push(format!("NotResource in {statement}"));
        }
        let resources = strings(&statement["Resource"]);
        let on_every_resource = resources.iter().any(|r| r == "*");
        // NotAction allows every action it does not list: only on the named resource (the admin levels).
        if !statement["NotAction"].is_null() && (on_every_resource || resources.is_empty()) {
            problems.push(format!("NotAction on every resource in {statement}"));
        }
        if !on_every_resource {
            continue;
        }
        for action in strings(&statement["Action"]) {
            let name = action.split_once(':').map_or(action.as_str(), |(_, name)| name);
            let read_only = ["Describe", "Get", "List"].iter().any(|prefix| name.starts_with(prefix));
            if !read_only || action == "*" {
                problems.push(format!("`{action}` on Resource \"*\" in {statement}"));
            }
        }
    }
    problems
}

#[test]
fn the_check_catches_writes_on_every_resource() {
    let allow = |action: Value, resource: Value| json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]});
    assert!(broad_writes(&allow(json!("ec2:StartInstances"), json!("*"))).len() == 1);
    assert!(
        broad_writes(&allow(json!(["ec2:DescribeInstances", "ec2:*"]), json!(["arn:aws:ec2:::x", "*"]))).len() == 1
    );
    assert!(broad_writes(&allow(json!("*"), json!("*"))).len() == 1);
    assert!(broad_writes(&allow(json!("s3:PutObject"), json!(["*"]))).len() == 1);
    assert!(!broad_writes(&json!({"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}})).is_empty());
    assert!(!broad_writes(
        &json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::x"}})
    )
    .is_empty());
    assert!(broad_writes(
        &json!({"Statement": {"Effect": "Allow", "NotAction": "s3:PutBucketPolicy", "Resource": "arn:aws:s3:::x"}})
    )
    .is_empty());
    assert!(broad_writes(&allow(
        json!(["ec2:DescribeInstances", "ssm:GetConnectionStatus", "s3:ListAllMyBuckets"]),
        json!("*")
    ))
    .is_empty());
    assert!(broad_writes(&allow(json!("ec2:StopInstances"), json!("arn:aws:ec2:us-east-1:123456789012:instance/i-1")))
        .is_empty());
    assert!(broad_writes(&json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})).is_empty());
}

#[tokio::test]
async fn generated_policies_never_allow_a_write_on_every_resource() {
    let moto = Moto::shared();
    let account = moto.account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    account.create_role("deployer", &[]).await;
    let bucket = unique("policies");
    account.create_bucket(&bucket, &[]).await;
    account.run_instances("us-east-1", 1, &[("Name", "web")]).await;
    let server = TestServer::start().await;
    let integration = &server.connect(&account, &unique("policies")).await;

    let cases = [
        ("ec2_instance", "connect"),
        ("ec2_instance", "operate"),
        ("ec2_instance", "admin"),
        ("s3_bucket", "read"),
        ("s3_bucket", "write"),
        ("s3_bucket", "admin"),
        ("iam_role", "assume"),
    ];
    let mut problems = Vec::new();
    let mut on_every_resource = 0;
    for (resource_type, level) in cases {
        let resource = server.browse_all(&format!("integration_id={integration}&type={resource_type}")).await.remove(0);
        let (status, grant) = server
            .post(
                "/v1/grants?wait=20",
                json!({
                    "integration_id": integration, "resource_id": resource["id"], "access_level": level,
                    "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": 3600,
                    "request_id": unique("req"), "approved_by": "approver@example.com"
                }),
            )
            .await;
        assert_eq!(
            (status.as_u16(), grant["status"].as_str()),
            (202, Some("active")),
            "{resource_type} {level}: {grant}"
        );
        let arn =
            grant["policy"]["arn"].as_str().unwrap_or_else(|| panic!("{resource_type} {level} has no policy: {grant}"));
        assert!(account.user_policies("alice").await.contains(&arn.to_string()), "{arn} is attached to alice");
        let document = account.policy_document(arn).await;
        let statements = document["Statement"].as_array().map_or(0, Vec::len);
        assert!(statements > 0, "{resource_type} {level}: {document}");
        on_every_resource += document["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| strings(&s["Resource"]).iter().any(|r| r == "*"))
            .count();
        // Every statement names resources; none is left open-ended.
        for statement in document["Statement"].as_array().unwrap() {
            if strings(&statement["Resource"]).is_empty() {
                problems.push(format!("{resource_type} {level}: a statement without Resource: {statement}"));
            }
        }
        problems.extend(broad_writes(&document).into_iter().map(|p| format!("{resource_type} {level}: {p}")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The EC2 levels do describe on "*" (EC2's Describe calls take no resource): the check saw them.
    assert!(on_every_resource >= 3, "statements on \"*\": {on_every_resource}");
    assert_eq!(account.jit_policies().await.len(), cases.len());
}
