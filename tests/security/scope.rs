//! A grant can only give what the inventory offers, to a user of the same
//! account, inside the integration it names.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{random_account_id, unique, Moto, TestServer};
use crate::{error_code, error_field};

fn body(integration: &str, resource: (&str, &str), level: &str, user: &str) -> Value {
    let mut body = json!({
        "integration_id": integration,
        "access_level": level,
        "principal": {"type": "iam_user", "name": user},
        "duration_seconds": 3600,
        "request_id": unique("req"),
        "approved_by": "approver@example.com",
        "reason": "scope test"
    });
    body[resource.0] = json!(resource.1);
    body
}

fn find<'a>(items: &'a [Value], name: &str) -> &'a Value {
    items.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no `{name}` in {items:?}"))
}

#[tokio::test]
async fn grants_only_target_what_the_integration_offers_in_the_users_account() {
    let moto = Moto::shared();
    let root = moto.account(&random_account_id()).await;
    root.organizations.create_organization().send().await.unwrap();
    let created = root
        .organizations
        .create_account()
        .email(format!("{}@example.com", unique("member")))
        .account_name("member")
        .send()
        .await
        .unwrap();
    let member = moto.account(&created.create_account_status.unwrap().account_id.unwrap()).await;
    root.create_user("alice", &[]).await;
    root.create_role("root-prod", &[("env", "prod")]).await;
    root.create_role("root-dev", &[("env", "dev")]).await;
    member.create_role("member-prod", &[("env", "prod")]).await;
    member.create_user("bob", &[]).await;
    let other = moto.account(&random_account_id()).await;
    other.create_role("other-prod", &[("env", "prod")]).await;
    other.create_user("alice", &[]).await;

    let server = TestServer::start().await;
    let org = server
        .create_integration(json!({
            "name": unique("scope-org"),
            "connection": "organization",
            "root_account": {
                "account_id": root.id, "access_role_arn": root.role_arn("jit-iam-access"),
                "external_id": "external-id-123", "region": "us-east-1"
            },
            "options": {"regions": ["us-east-1"], "member_role_name": "jit-iam-member",
                        "tags": [{"key": "env", "value": "prod"}]}
        }))
        .await;
    let org = org["id"].as_str().unwrap().to_string();
    let single = server
        .create_integration(json!({
            "name": unique("scope-other"),
            "connection": "single_account",
            "root_account": {
                "account_id": other.id, "access_role_arn": other.role_arn("jit-iam-access"),
                "external_id": "external-id-123", "region": "us-east-1"
            },
            "options": {"regions": ["us-east-1"]}
        }))
        .await;
    let single = single["id"].as_str().unwrap().to_string();
    for id in [&org, &single] {
        let run = server.wait_for_sync(id).await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }

    let org_roles = server.browse_all(&format!("integration_id={org}&type=iam_role")).await;
    let member_prod = find(&org_roles, "member-prod");
    assert_eq!(member_prod["account_id"], member.id.as_str());
    let root_prod = find(&org_roles, "root-prod");
    assert!(
        !org_roles.iter().any(|r| r["name"] == "root-dev"),
        "root-dev is excluded by the tag filter: {org_roles:?}"
    );
    let db = server.db().await;
    let (root_dev_id, root_dev_arn): (uuid::Uuid, String) = sqlx::query_as(
        "select resource_id, arn from resources where integration_id = $1::uuid and name = 'root-dev' and not offered",
    )
    .bind(&org)
    .fetch_one(&db)
    .await
    .expect("root-dev is synced and stored, but not offered");
    let (root_dev_id, root_dev_arn) = (root_dev_id.to_string(), root_dev_arn);
    let other_roles = server.browse_all(&format!("integration_id={single}&type=iam_role")).await;
    let other_prod = find(&other_roles, "other-prod");
    let id_of = |r: &Value| r["id"].as_str().unwrap().to_string();
    let arn_of = |r: &Value| r["arn"].as_str().unwrap().to_string();

    // Controls: the same shapes of request, within scope, are accepted (preview changes nothing).
    for (integration, resource, user) in
        [(&org, id_of(member_prod), "bob"), (&org, id_of(root_prod), "alice"), (&single, id_of(other_prod), "alice")]
    {
        let (status, preview) =
            server.post("/v1/grants/preview", body(integration, ("resource_id", &resource), "assume", user)).await;
        assert_eq!(status, StatusCode::OK, "{user} on {resource}: {preview}");
    }

    // Each refused naming the field: what the integration does not offer the
    // user is not found (404); a user as the resource is a wrong request (422).
    let refused: Vec<(&str, Value, &str)> = vec![
        // The user exists, in another account of the organization than the resource.
        (
            "a member's role to a root user",
            body(&org, ("resource_id", &id_of(member_prod)), "assume", "alice"),
            "principal.name",
        ),
        (
            "a root role to a member's user",
            body(&org, ("resource_id", &id_of(root_prod)), "assume", "bob"),
            "principal.name",
        ),
        (
            "a role to a user of another integration",
            body(&single, ("resource_id", &id_of(other_prod)), "assume", "bob"),
            "principal.name",
        ),
        // Excluded by the tag filter, by id and by ARN.
        ("a role the tag filter excludes", body(&org, ("resource_id", &root_dev_id), "assume", "alice"), "resource_id"),
        (
            "a role the tag filter excludes, by ARN",
            body(&org, ("resource_arn", &root_dev_arn), "assume", "alice"),
            "resource_arn",
        ),
        // Another integration's resource, by id and by ARN, both ways round.
        (
            "another integration's role",
            body(&org, ("resource_id", &id_of(other_prod)), "assume", "alice"),
            "resource_id",
        ),
        (
            "another integration's role, by ARN",
            body(&org, ("resource_arn", &arn_of(other_prod)), "assume", "alice"),
            "resource_arn",
        ),
        (
            "the organization's role through the other integration",
            body(&single, ("resource_id", &id_of(root_prod)), "assume", "alice"),
            "resource_id",
        ),
        (
            "the organization's role through the other integration, by ARN",
            body(&single, ("resource_arn", &arn_of(root_prod)), "assume", "alice"),
            "resource_arn",
        ),
        // A user is a grantee, never a resource.
        (
            "a user as the resource",
            body(
                &org,
                ("resource_id", &id_of(&server.browse_all(&format!("integration_id={org}&type=iam_user")).await[0])),
                "assume",
                "alice",
            ),
            "resource_id",
        ),
        // No such resource at all.
        (
            "a resource id nobody has",
            body(&org, ("resource_id", &uuid::Uuid::new_v4().to_string()), "assume", "alice"),
            "resource_id",
        ),
    ];
    let mut failures = Vec::new();
    for (what, request, field) in &refused {
        for path in ["/v1/grants", "/v1/grants/preview"] {
            let (status, answer) = server.post(path, request.clone()).await;
            let expected =
                if *what == "a user as the resource" { (422, "validation_failed") } else { (404, "not_found") };
            if (status.as_u16(), error_code(&answer), error_field(&answer))
                != (expected.0, Some(expected.1), Some(*field))
            {
                failures.push(format!("{path} with {what}: expected {expected:?} on `{field}`, got {status} {answer}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Nothing was recorded, nothing changed in IAM.
    let grants: i64 = sqlx::query_scalar("select count(*) from grants").fetch_one(&db).await.unwrap();
    assert_eq!(grants, 0);
    for account in [&root, &member, &other] {
        assert!(account.jit_policies().await.is_empty(), "policies created in {}", account.id);
    }
    assert!(root.user_policies("alice").await.is_empty());
    assert!(other.user_policies("alice").await.is_empty());
    assert!(member.user_policies("bob").await.is_empty());
}
