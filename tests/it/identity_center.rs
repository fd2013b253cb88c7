//! IAM Identity Center in the inventory: the instance found or given, its
//! users, groups and permission sets synced and browsable, the tag filter on
//! permission sets, the option's rules, and no Identity Center call at all
//! without the option. Grants of Identity Center group membership to
//! Identity Center users: made and removed by ids, shared, refused elsewhere.
//!
//! moto implements neither sso-admin `TagResource` nor `ListTagsForResource`
//! (HTTP 500): the fault proxy in front of it answers `ListTagsForResource`
//! with the tags each test sets per permission set.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{permission_set_tags, random_account_id, unique, Account, FaultProxy, Moto, TestServer};

/// A server whose AWS endpoint is a fault proxy in front of the shared moto.
async fn server_behind_proxy() -> (TestServer, FaultProxy) {
    server_behind_proxy_with(&[]).await
}

/// The same, with settings `env`; the proxy answers every permission set's
/// tags with none, unless a test sets them.
async fn server_behind_proxy_with(env: &[(&str, &str)]) -> (TestServer, FaultProxy) {
    let moto = Moto::shared();
    let proxy = FaultProxy::start(&moto.endpoint, Duration::from_secs(1)).await;
    proxy.answer("ListTagsForResource", None, permission_set_tags(&[]));
    let mut builder = TestServer::builder(moto)
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("JIT_IAM_SERVICE_PRINCIPAL_ARN", "arn:aws:iam::111122223333:role/jit-iam");
    for (key, value) in env {
        builder = builder.env(key, value);
    }
    (builder.start().await, proxy)
}

fn integration(account: &Account, options: Value) -> Value {
    let mut options = options;
    options["regions"] = json!(["us-east-1"]);
    json!({
        "name": unique("identity-center"),
        "connection": "single_account",
        "root_account": {
            "account_id": account.id, "access_role_arn": account.role_arn("jit-iam-access"),
            "external_id": "external-id-123", "region": "us-east-1"
        },
        "options": options
    })
}

fn names(items: &[Value]) -> BTreeSet<String> {
    items.iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// The stored details of the resource with `arn` (what grants will read).
async fn details(server: &TestServer, arn: &str) -> Value {
    let db = server.db().await;
    sqlx::query_scalar("select details from resources where arn = $1").bind(arn).fetch_one(&db).await.unwrap()
}

fn identity_center_calls(proxy: &FaultProxy) -> Vec<String> {
    proxy
        .exchanges()
        .into_iter()
        .filter(|e| e.service == "sso" || e.service == "identitystore")
        .map(|e| format!("{}:{}", e.service, e.action))
        .collect()
}

/// An account with two users, a group and two permission sets (one
/// provisioned), and the proxy answering each permission set's tags.
struct Seeded {
    account: Account,
    instance: String,
    store: String,
    alice: String,
    admin: String,
    viewer: String,
}

async fn seed(proxy: &FaultProxy) -> Seeded {
    let account = Moto::shared().account(&random_account_id()).await;
    let (instance, store) = account.identity_center().await;
    let alice = account.create_identity_center_user(&store, "alice", "Alice Liddell").await;
    account.create_identity_center_user(&store, "bob", "Bob").await;
    account.create_identity_center_group(&store, "ops").await;
    let admin = account.create_permission_set(&instance, "Admin", true).await;
    let viewer = account.create_permission_set(&instance, "Viewer", false).await;
    proxy.answer("ListTagsForResource", Some(&admin), permission_set_tags(&[("team", "a"), ("env", "prod")]));
    proxy.answer("ListTagsForResource", Some(&viewer), permission_set_tags(&[("team", "b")]));
    Seeded { account, instance, store, alice, admin, viewer }
}

#[tokio::test]
async fn a_discovered_instance_s_users_groups_and_permission_sets_are_inventoried() {
    let (server, proxy) = server_behind_proxy().await;
    let s = seed(&proxy).await;
    s.account.create_user("carol", &[]).await;
    let created = server.create_integration(integration(&s.account, json!({"identity_center": {}}))).await;
    assert_eq!(created["options"]["identity_center"], json!({}));
    let id = created["id"].as_str().unwrap();
    let run = server.wait_for_sync(id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["identity_center_user"], 2, "{run}");
    assert_eq!(run["counts"]["identity_center_group"], 1, "{run}");
    assert_eq!(run["counts"]["permission_set"], 2, "{run}");
    let calls = identity_center_calls(&proxy);
    for call in [
        "sso:ListInstances",
        "sso:ListPermissionSets",
        "sso:DescribePermissionSet",
        "sso:ListTagsForResource",
        "sso:ListAccountsForProvisionedPermissionSet",
        "identitystore:ListUsers",
        "identitystore:ListGroups",
    ] {
        assert!(calls.iter().any(|c| c == call), "{call} not in {calls:?}");
    }

    let browse = |t: &str| {
        let query = format!("integration_id={id}&type={t}");
        let server = &server;
        async move { server.browse_all(&query).await }
    };
    let permission_sets = browse("permission_set").await;
    assert_eq!(names(&permission_sets), set(&["Admin", "Viewer"]));
    let admin = permission_sets.iter().find(|p| p["name"] == "Admin").unwrap();
    assert_eq!(admin["arn"], s.admin.as_str());
    assert_eq!(admin["account_id"], s.account.id.as_str());
    assert_eq!(admin["tags"], json!({"team": "a", "env": "prod"}));
    assert_eq!(admin["access_levels"], json!(["assign"]));
    assert_eq!(admin["region"], Value::Null);
    let admin_details = details(&server, &s.admin).await;
    assert_eq!(admin_details["account_ids"], json!([s.account.id]), "provisioned: {admin_details}");
    assert_eq!(admin_details["session_duration"], "PT2H");
    assert_eq!(admin_details["description"], "Admin access");
    assert_eq!(admin_details["instance_arn"], s.instance.as_str());
    assert_eq!(details(&server, &s.viewer).await["account_ids"], json!([]), "not provisioned");

    let users = browse("identity_center_user").await;
    assert_eq!(names(&users), set(&["alice", "bob"]));
    let alice = users.iter().find(|u| u["name"] == "alice").unwrap();
    assert_eq!(alice["arn"], format!("arn:aws:identitystore:::user/{}", s.alice));
    assert_eq!(alice["access_levels"], json!([]));
    let alice_details = details(&server, alice["arn"].as_str().unwrap()).await;
    assert_eq!(
        alice_details,
        json!({"unique_id": s.alice, "identity_store_id": s.store, "display_name": "Alice Liddell"})
    );
    let groups = browse("identity_center_group").await;
    assert_eq!(names(&groups), set(&["ops"]));
    assert!(groups[0]["arn"].as_str().unwrap().starts_with("arn:aws:identitystore:::group/"), "{groups:?}");
    assert_eq!(groups[0]["access_levels"], json!(["member"]));
    assert!(details(&server, groups[0]["arn"].as_str().unwrap()).await["unique_id"].is_string());

    // The check reports the instance; the setup documents read it.
    let (_, check) = server.post(&format!("/v1/integrations/{id}/check"), json!({})).await;
    let step = check["steps"].as_array().unwrap().iter().find(|s| s["name"] == "identity_center").cloned();
    let step = step.unwrap_or_else(|| panic!("no identity_center step: {check}"));
    assert_eq!(step["status"], "passed", "{check}");
    assert!(step["detail"].as_str().unwrap().contains(&s.instance), "{step}");
    let (status, setup) = server.get(&format!("/v1/integrations/{id}/setup")).await;
    assert_eq!(status, 200, "{setup}");
    let policy = setup["root_account"]["permission_policy"].to_string();
    assert!(policy.contains("sso:ListInstances") && policy.contains("identitystore:ListUsers"), "{policy}");

    // No grant of permission sets yet, users never; groups to Identity Center
    // users only: refused, naming the field, nothing stored.
    for (resource, level, field) in [
        (admin, "assign", "principal.type"),
        (&groups[0], "member", "principal.type"),
        (alice, "assign", "resource_id"),
    ] {
        let body = json!({
            "integration_id": id, "resource_id": resource["id"], "access_level": level,
            "principal": {"type": "iam_user", "name": "carol"}, "duration_seconds": 600,
            "request_id": unique("req"), "approved_by": "approver"
        });
        let (status, error) = server.post("/v1/grants", body).await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    let (_, grants) = server.get(&format!("/v1/grants?integration_id={id}")).await;
    assert_eq!(grants["items"], json!([]), "{grants}");

    // The tag filter: permission sets and groups (which carry no tags) pass it
    // or are not offered; users, the grantees, always are.
    let (status, body) = server
        .patch(&format!("/v1/integrations/{id}"), json!({"options": {"tags": [{"key": "team", "value": "a"}]}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&browse("permission_set").await), set(&["Admin"]));
    assert!(browse("identity_center_group").await.is_empty());
    assert_eq!(names(&browse("identity_center_user").await), set(&["alice", "bob"]));
    // A later sync keeps to it, with tags as ListTagsForResource says now.
    proxy.answer("ListTagsForResource", Some(&s.viewer), permission_set_tags(&[("team", "a")]));
    server.post(&format!("/v1/integrations/{id}/sync"), json!({})).await;
    let run = server.wait_for_sync(id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(names(&browse("permission_set").await), set(&["Admin", "Viewer"]));
    assert!(browse("identity_center_group").await.is_empty());
}

#[tokio::test]
async fn a_given_instance_is_used_as_is_and_checked() {
    let (server, proxy) = server_behind_proxy().await;
    let s = seed(&proxy).await;
    let given = json!({"identity_center": {"instance_arn": s.instance, "identity_store_id": s.store}});
    let created = server.create_integration(integration(&s.account, given.clone())).await;
    assert_eq!(created["options"]["identity_center"], given["identity_center"]);
    let id = created["id"].as_str().unwrap();
    let run = server.wait_for_sync(id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["permission_set"], 2, "{run}");
    let calls = identity_center_calls(&proxy);
    assert!(!calls.iter().any(|c| c == "sso:ListInstances"), "nothing to discover: {calls:?}");
    let sent_store = proxy.exchanges().into_iter().find(|e| e.action == "ListUsers").unwrap();
    assert_eq!(sent_store.params["IdentityStoreId"], s.store);

    // An instance the account does not see fails the check's step.
    let other = "arn:aws:sso:::instance/ssoins-0000000000000000";
    let patch = json!({"options": {"identity_center": {"instance_arn": other, "identity_store_id": "d-0000000000"}}});
    let (status, body) = server.patch(&format!("/v1/integrations/{id}"), patch).await;
    assert_eq!(status, 200, "{body}");
    let (_, check) = server.post(&format!("/v1/integrations/{id}/check"), json!({})).await;
    assert_eq!(check["ok"], false, "{check}");
    let step = check["steps"].as_array().unwrap().iter().find(|s| s["name"] == "identity_center").unwrap().clone();
    assert_eq!(step["status"], "failed", "{check}");
    assert!(step["detail"].as_str().unwrap().contains(other), "{step}");
}

#[tokio::test]
async fn bad_identity_center_options_are_422_naming_the_field() {
    let server = TestServer::start().await;
    let account = Moto::shared().account(&random_account_id()).await;
    const ARN: &str = "arn:aws:sso:::instance/ssoins-1234567890abcdef";
    let cases = [
        (json!({"instance_arn": ARN}), "options.identity_center.identity_store_id"),
        (json!({"identity_store_id": "d-1234567890"}), "options.identity_center.instance_arn"),
        (
            json!({"instance_arn": "ssoins-1", "identity_store_id": "d-1234567890"}),
            "options.identity_center.instance_arn",
        ),
        (json!({"instance_arn": ARN, "identity_store_id": "store"}), "options.identity_center.identity_store_id"),
        (json!({"instance_arn": 7, "identity_store_id": "d-1234567890"}), "options.identity_center.instance_arn"),
        (json!({"instance": ARN}), "options.identity_center.instance"),
        (json!(true), "options.identity_center"),
    ];
    for (identity_center, field) in &cases {
        let (status, body) =
            server.post("/v1/integrations", integration(&account, json!({"identity_center": identity_center}))).await;
        assert_eq!(status, 422, "{identity_center} -> {body}");
        assert_eq!(body["error"]["field"], *field, "{identity_center} -> {body}");
    }
    let created = server.create_integration(integration(&account, json!({}))).await;
    let path = format!("/v1/integrations/{}", created["id"].as_str().unwrap());
    for (identity_center, field) in &cases[..4] {
        let (status, body) = server.patch(&path, json!({"options": {"identity_center": identity_center}})).await;
        assert_eq!(status, 422, "{identity_center} -> {body}");
        assert_eq!(body["error"]["field"], *field, "{identity_center} -> {body}");
    }
    let (_, unchanged) = server.get(&path).await;
    assert_eq!(unchanged, created);
}

#[tokio::test]
async fn without_the_option_no_identity_center_call_is_made_and_turning_it_on_and_off_syncs() {
    let (server, proxy) = server_behind_proxy().await;
    let s = seed(&proxy).await;
    let created = server.create_integration(integration(&s.account, json!({}))).await;
    let id = created["id"].as_str().unwrap();
    let run = server.wait_for_sync(id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let (_, check) = server.post(&format!("/v1/integrations/{id}/check"), json!({})).await;
    assert!(check["steps"].as_array().unwrap().iter().all(|s| s["name"] != "identity_center"), "{check}");
    let (status, setup) = server.get(&format!("/v1/integrations/{id}/setup")).await;
    assert_eq!(status, 200, "{setup}");
    assert!(setup["root_account"]["permission_policy"]["Statement"].is_array(), "{setup}");
    let policy = setup.to_string();
    assert!(!policy.contains("sso:") && !policy.contains("identitystore:"), "{policy}");
    assert!(identity_center_calls(&proxy).is_empty(), "{:?}", identity_center_calls(&proxy));
    assert!(proxy.exchanges().iter().any(|e| e.service == "iam"), "the proxy saw the sync");

    // Turned on: a sync starts and finds them; turned off: the next one removes them.
    let path = format!("/v1/integrations/{id}");
    let (status, body) = server.patch(&path, json!({"options": {"identity_center": {}}})).await;
    assert_eq!(status, 200, "{body}");
    let run = crate::support::eventually(Duration::from_secs(120), "a sync with Identity Center", || async {
        let run = server.wait_for_sync(id).await;
        (run["counts"]["permission_set"] == 2).then_some(run)
    })
    .await;
    assert_eq!(run["trigger"], "updated", "{run}");
    let (status, body) = server.patch(&path, json!({"options": {"identity_center": null}})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["options"].get("identity_center").is_none(), "{body}");
    crate::support::eventually(Duration::from_secs(120), "Identity Center gone from the inventory", || async {
        server.wait_for_sync(id).await;
        server.browse_all(&format!("integration_id={id}&type=identity_center_user")).await.is_empty().then_some(())
    })
    .await;
    assert!(server.browse_all(&format!("integration_id={id}&type=permission_set")).await.is_empty());
}

/// The groups Identity Center user `user_id` is in, as moto has them now.
async fn groups_of(account: &Account, store: &str, user_id: &str) -> BTreeSet<String> {
    let member = aws_sdk_identitystore::types::MemberId::UserId(user_id.to_string());
    let listed = account
        .identity_store()
        .list_group_memberships_for_member()
        .identity_store_id(store)
        .member_id(member)
        .send()
        .await
        .unwrap();
    listed.group_memberships().iter().filter_map(|m| m.group_id().map(str::to_string)).collect()
}

/// An admin's own membership, outside jit-iam.
async fn add_member(account: &Account, store: &str, group_id: &str, user_id: &str) {
    let member = aws_sdk_identitystore::types::MemberId::UserId(user_id.to_string());
    let identity_store = account.identity_store();
    let request = identity_store.create_group_membership().identity_store_id(store).group_id(group_id);
    request.member_id(member).send().await.unwrap();
}

/// Submits a grant of `level` on the resource `resource_id` to `principal`,
/// waiting up to 20 s for it to apply: (status, body).
async fn grant(
    server: &TestServer,
    integration: &str,
    resource_id: &Value,
    level: &str,
    principal: Value,
) -> (u16, Value) {
    let body = json!({
        "integration_id": integration, "resource_id": resource_id, "access_level": level,
        "principal": principal, "duration_seconds": 600, "request_id": unique("req"), "approved_by": "approver"
    });
    let (status, grant) = server.post("/v1/grants?wait=20", body).await;
    (status.as_u16(), grant)
}

async fn revoked(server: &TestServer, id: &str) -> Value {
    let (status, grant) = server.post(&format!("/v1/grants/{id}/revoke"), json!({})).await;
    assert_eq!(status, 202, "{grant}");
    wait_for(server, id, "revoked").await
}

async fn wait_for(server: &TestServer, id: &str, wanted: &str) -> Value {
    crate::support::eventually(Duration::from_secs(30), &format!("grant {id} to be {wanted}"), || async {
        let (_, grant) = server.get(&format!("/v1/grants/{id}")).await;
        (grant["status"] == wanted).then_some(grant)
    })
    .await
}

#[tokio::test]
async fn identity_center_group_membership_is_granted_by_ids_shared_and_never_taken_from_others() {
    let (server, _proxy) = server_behind_proxy().await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (_, store) = account.identity_center().await;
    let carol = account.create_identity_center_user(&store, "carol", "Carol").await;
    let dave = account.create_identity_center_user(&store, "dave", "Dave").await;
    let ops = account.create_identity_center_group(&store, "ops").await;
    let admins = account.create_identity_center_group(&store, "admins").await;
    add_member(&account, &store, &admins, &dave).await;
    account.create_user("erin", &[]).await;
    account.create_group("iam-ops").await;
    let created = server.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(server.wait_for_sync(id).await["status"], "succeeded");
    let resource = |t: &'static str, name: &'static str| {
        let server = &server;
        async move {
            let all = server.browse_all(&format!("integration_id={id}&type={t}")).await;
            all.into_iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no {t} {name}"))["id"].clone()
        }
    };
    let (ops_id, admins_id, iam_group) = (
        resource("identity_center_group", "ops").await,
        resource("identity_center_group", "admins").await,
        resource("iam_group", "iam-ops").await,
    );
    let to = |name: &str| json!({"type": "identity_center_user", "name": name});

    // The preview lists the identity-store calls.
    let body = json!({
        "integration_id": id, "resource_id": ops_id, "access_level": "member", "principal": to("carol"),
        "duration_seconds": 600, "request_id": unique("req"), "approved_by": "approver"
    });
    let (status, preview) = server.post("/v1/grants/preview", body).await;
    assert_eq!(status, 200, "{preview}");
    let operations = |calls: &Value| {
        calls.as_array().unwrap().iter().map(|c| c["operation"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(
        operations(&preview["apply_calls"]),
        ["identitystore:GetGroupMembershipId", "identitystore:GetUserId", "identitystore:CreateGroupMembership"]
    );
    assert_eq!(
        operations(&preview["revoke_calls"]),
        ["identitystore:GetGroupMembershipId", "identitystore:DeleteGroupMembership"]
    );

    // Two overlapping grants: one membership, made by the first, removed by the last.
    let (status, first) = grant(&server, id, &ops_id, "member", to("carol")).await;
    assert_eq!((status, first["status"].as_str()), (202, Some("active")), "{first}");
    assert_eq!(first["principal"]["arn"], format!("arn:aws:identitystore:::user/{carol}"));
    assert_eq!(groups_of(&account, &store, &carol).await, set(&[&ops]));
    let (_, second) = grant(&server, id, &ops_id, "member", to("carol")).await;
    assert_eq!(second["status"], "active", "{second}");
    // The instance cannot be taken away while a grant needs it to be revoked.
    let path = format!("/v1/integrations/{id}");
    let (status, error) = server.patch(&path, json!({"options": {"identity_center": null}})).await;
    assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (409, Some("options.identity_center")), "{error}");
    assert_eq!(error["error"]["code"], "invalid_state", "{error}");
    revoked(&server, first["id"].as_str().unwrap()).await;
    assert_eq!(groups_of(&account, &store, &carol).await, set(&[&ops]), "the second grant still holds it");
    revoked(&server, second["id"].as_str().unwrap()).await;
    assert!(groups_of(&account, &store, &carol).await.is_empty(), "removed with the last grant");

    // A standing membership made by an admin survives the grant's end.
    let (_, standing) = grant(&server, id, &admins_id, "member", to("dave")).await;
    assert_eq!(standing["status"], "active", "{standing}");
    revoked(&server, standing["id"].as_str().unwrap()).await;
    assert_eq!(groups_of(&account, &store, &dave).await, set(&[&admins]));

    // Refused, naming what is not available.
    let (status, error) = grant(&server, id, &ops_id, "member", json!({"type": "iam_user", "name": "erin"})).await;
    assert_eq!((status, error["error"]["field"].as_str()), (422, Some("principal.type")), "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("identity_center_user"), "{error}");
    let (status, error) = grant(&server, id, &iam_group, "member", to("carol")).await;
    assert_eq!((status, error["error"]["field"].as_str()), (422, Some("principal.type")), "{error}");
    let (status, error) = grant(&server, id, &ops_id, "member", to("nobody")).await;
    assert_eq!((status, error["error"]["field"].as_str()), (404, Some("principal.name")), "{error}");

    // carol deleted and recreated (no sync since): the new carol is not the grantee.
    let identity_store = account.identity_store();
    identity_store.delete_user().identity_store_id(&store).user_id(&carol).send().await.unwrap();
    let new_carol = account.create_identity_center_user(&store, "carol", "Carol again").await;
    let (_, refused) = grant(&server, id, &ops_id, "member", to("carol")).await;
    let refused = wait_for(&server, refused["id"].as_str().unwrap(), "failed").await;
    assert_eq!(refused["last_error"]["code"], "principal_changed", "{refused}");
    assert!(groups_of(&account, &store, &new_carol).await.is_empty(), "nothing given to the new carol");
    assert!(groups_of(&account, &store, &carol).await.is_empty());
}

/// The principals (type, id) assigned `permission_set` in `account_id`, as moto has them now.
async fn assigned(
    account: &Account,
    instance: &str,
    permission_set: &str,
    account_id: &str,
) -> BTreeSet<(String, String)> {
    let listed = account
        .sso_admin()
        .list_account_assignments()
        .instance_arn(instance)
        .account_id(account_id)
        .permission_set_arn(permission_set)
        .send()
        .await
        .unwrap();
    let assignments = listed.account_assignments().iter();
    assignments
        .map(|a| (a.principal_type().unwrap().as_str().to_string(), a.principal_id().unwrap().to_string()))
        .collect()
}

/// An admin's own assignment, outside jit-iam.
async fn assign(account: &Account, instance: &str, permission_set: &str, user_id: &str) {
    let sso = account.sso_admin();
    sso.create_account_assignment()
        .instance_arn(instance)
        .target_id(&account.id)
        .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
        .permission_set_arn(permission_set)
        .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
        .principal_id(user_id)
        .send()
        .await
        .unwrap();
}

/// Submits a permission set grant to `principal` in `account_id` (none when None).
async fn assignment_grant(
    server: &TestServer,
    integration: &str,
    permission_set: &Value,
    principal: Value,
    account_id: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({
        "integration_id": integration, "resource_id": permission_set, "access_level": "assign",
        "principal": principal, "duration_seconds": 600, "request_id": unique("req"), "approved_by": "approver"
    });
    if let Some(account_id) = account_id {
        body["account_id"] = json!(account_id);
    }
    let (status, grant) = server.post("/v1/grants?wait=20", body).await;
    (status.as_u16(), grant)
}

/// The inventory id of the resource of type `t` named `name`.
async fn resource_id(server: &TestServer, integration: &str, t: &str, name: &str) -> Value {
    let all = server.browse_all(&format!("integration_id={integration}&type={t}")).await;
    all.into_iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no {t} {name}"))["id"].clone()
}

fn seconds_between(from: &Value, to: &Value) -> i64 {
    let parse = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    (parse(to) - parse(from)).num_seconds()
}

#[tokio::test]
async fn a_permission_set_is_assigned_in_the_target_account_by_ids_shared_and_never_taken_from_others() {
    let (server, _proxy) = server_behind_proxy().await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (instance, store) = account.identity_center().await;
    let carol = account.create_identity_center_user(&store, "carol", "Carol").await;
    let dave = account.create_identity_center_user(&store, "dave", "Dave").await;
    let ops = account.create_identity_center_group(&store, "ops").await;
    let viewer = account.create_permission_set(&instance, "Viewer", true).await;
    let admin = account.create_permission_set(&instance, "Admin", false).await;
    assign(&account, &instance, &admin, &dave).await;
    account.create_user("erin", &[]).await;
    let created = server.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(server.wait_for_sync(id).await["status"], "succeeded");
    let viewer_id = resource_id(&server, id, "permission_set", "Viewer").await;
    let admin_id = resource_id(&server, id, "permission_set", "Admin").await;
    let ops_id = resource_id(&server, id, "identity_center_group", "ops").await;
    let user = |name: &str| json!({"type": "identity_center_user", "name": name});
    let here = Some(account.id.as_str());

    // The preview lists the Identity Center calls.
    let body = json!({
        "integration_id": id, "resource_id": viewer_id, "access_level": "assign", "principal": user("carol"),
        "account_id": account.id, "duration_seconds": 600, "request_id": unique("req"), "approved_by": "approver"
    });
    let (status, preview) = server.post("/v1/grants/preview", body).await;
    assert_eq!(status, 200, "{preview}");
    let operations = |calls: &Value| {
        calls.as_array().unwrap().iter().map(|c| c["operation"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(
        operations(&preview["apply_calls"]),
        [
            "sso:ListAccountAssignments",
            "identitystore:GetUserId",
            "sso:CreateAccountAssignment",
            "sso:DescribeAccountAssignmentCreationStatus",
            "sso:DescribePermissionSet"
        ]
    );
    assert_eq!(
        operations(&preview["revoke_calls"]),
        ["sso:DeleteAccountAssignment", "sso:DescribeAccountAssignmentDeletionStatus", "sso:DescribePermissionSet"]
    );

    // Refused before anything changes, naming the field.
    let refused = [
        (assignment_grant(&server, id, &viewer_id, user("carol"), None).await, 422, "account_id"),
        (assignment_grant(&server, id, &viewer_id, user("carol"), Some("123")).await, 422, "account_id"),
        (assignment_grant(&server, id, &viewer_id, user("carol"), Some("999999999999")).await, 422, "account_id"),
        (
            assignment_grant(&server, id, &viewer_id, json!({"type": "iam_user", "name": "erin"}), here).await,
            422,
            "principal.type",
        ),
        (assignment_grant(&server, id, &viewer_id, user("nobody"), here).await, 404, "principal.name"),
    ];
    for ((status, error), wanted, field) in refused {
        assert_eq!((status, error["error"]["field"].as_str()), (wanted, Some(field)), "{error}");
    }
    let body = json!({
        "integration_id": id, "resource_id": ops_id, "access_level": "member", "principal": user("carol"),
        "account_id": account.id, "duration_seconds": 600, "request_id": unique("req"), "approved_by": "approver"
    });
    let (status, error) = server.post("/v1/grants", body).await;
    assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (422, Some("account_id")), "{error}");

    // Two overlapping grants to carol: one assignment, by her id, made by the first, deleted by the last.
    let (status, first) = assignment_grant(&server, id, &viewer_id, user("carol"), here).await;
    assert_eq!((status, first["status"].as_str()), (202, Some("active")), "{first}");
    assert_eq!(first["target_account_id"], account.id.as_str());
    // Sessions already issued outlive the assignment by the permission set's duration (PT2H).
    assert_eq!(seconds_between(&first["expires_at"], &first["sessions_valid_until"]), 7200, "{first}");
    let carol_assigned = set_of(&[("USER", &carol)]);
    assert_eq!(assigned(&account, &instance, &viewer, &account.id).await, carol_assigned);
    let (_, second) = assignment_grant(&server, id, &viewer_id, user("carol"), here).await;
    assert_eq!(second["status"], "active", "{second}");
    let ended = revoked(&server, first["id"].as_str().unwrap()).await;
    assert_eq!(seconds_between(&ended["finished_at"], &ended["sessions_valid_until"]), 7200, "{ended}");
    assert_eq!(assigned(&account, &instance, &viewer, &account.id).await, carol_assigned, "the second holds it");
    revoked(&server, second["id"].as_str().unwrap()).await;
    assert!(assigned(&account, &instance, &viewer, &account.id).await.is_empty(), "deleted with the last grant");

    // To a group, by its id.
    let (_, to_group) =
        assignment_grant(&server, id, &viewer_id, json!({"type": "identity_center_group", "name": "ops"}), here).await;
    assert_eq!(to_group["status"], "active", "{to_group}");
    assert_eq!(to_group["principal"]["arn"], format!("arn:aws:identitystore:::group/{ops}"));
    assert_eq!(assigned(&account, &instance, &viewer, &account.id).await, set_of(&[("GROUP", &ops)]));
    revoked(&server, to_group["id"].as_str().unwrap()).await;
    assert!(assigned(&account, &instance, &viewer, &account.id).await.is_empty());

    // An assignment an admin made before any grant survives the grant's end.
    let (_, standing) = assignment_grant(&server, id, &admin_id, user("dave"), here).await;
    assert_eq!(standing["status"], "active", "{standing}");
    revoked(&server, standing["id"].as_str().unwrap()).await;
    assert_eq!(assigned(&account, &instance, &admin, &account.id).await, set_of(&[("USER", &dave)]));
}

fn set_of(pairs: &[(&str, &String)]) -> BTreeSet<(String, String)> {
    pairs.iter().map(|(t, id)| (t.to_string(), id.to_string())).collect()
}

#[tokio::test]
async fn an_assignment_is_active_only_once_provisioned_a_failed_one_fails_and_conflicts_are_retried() {
    let (server, proxy) = server_behind_proxy_with(&[("JIT_IAM_IDENTITY_CENTER_PROVISIONING_WAIT", "1s")]).await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (instance, store) = account.identity_center().await;
    account.create_identity_center_user(&store, "carol", "Carol").await;
    let failing = account.create_permission_set(&instance, "Failing", true).await;
    let slow = account.create_permission_set(&instance, "Slow", true).await;
    let created = server.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(server.wait_for_sync(id).await["status"], "succeeded");
    let carol = json!({"type": "identity_center_user", "name": "carol"});
    let here = Some(account.id.as_str());

    // FAILED: the grant fails with Identity Center's reason, and what was made is undone.
    let reason = "Received a 409 status error: the role quota of the account is reached";
    let status = json!({"Status": "FAILED", "FailureReason": reason, "RequestId": "request-failing"});
    proxy.answer("CreateAccountAssignment", Some(&failing), json!({"AccountAssignmentCreationStatus": status}));
    let failing_id = resource_id(&server, id, "permission_set", "Failing").await;
    let (_, grant) = assignment_grant(&server, id, &failing_id, carol.clone(), here).await;
    let grant = wait_for(&server, grant["id"].as_str().unwrap(), "failed").await;
    assert_eq!(grant["last_error"]["code"], "provisioning_failed", "{grant}");
    assert!(grant["last_error"]["message"].as_str().unwrap().contains(reason), "{grant}");
    assert!(assigned(&account, &instance, &failing, &account.id).await.is_empty(), "undone");

    // IN_PROGRESS past the wait: pending, never active, until it succeeded.
    let status = json!({"Status": "IN_PROGRESS", "RequestId": "request-slow"});
    proxy.answer("CreateAccountAssignment", Some(&slow), json!({"AccountAssignmentCreationStatus": status.clone()}));
    proxy.answer("DescribeAccountAssignmentCreationStatus", None, json!({"AccountAssignmentCreationStatus": status}));
    let slow_id = resource_id(&server, id, "permission_set", "Slow").await;
    let body = json!({
        "integration_id": id, "resource_id": slow_id, "access_level": "assign", "principal": carol,
        "account_id": account.id, "duration_seconds": 600, "request_id": unique("req"), "approved_by": "approver"
    });
    let (_, grant) = server.post("/v1/grants?wait=20", body).await;
    let grant_id = grant["id"].as_str().unwrap().to_string();
    // Provisioned meanwhile (moto made it): the retry finds it and makes no second one.
    assert_eq!(grant["status"], "active", "{grant}");
    assert!(grant["last_error"].is_null(), "{grant}");
    let (_, events) = server.get(&format!("/v1/grants/{grant_id}/events?limit=1000")).await;
    let events = events["items"].as_array().unwrap().clone();
    let waited = events.iter().position(|e| {
        e["to_status"] == "pending" && e["message"].as_str().unwrap_or_default().contains("still in progress")
    });
    let activated = events.iter().position(|e| e["to_status"] == "active");
    assert!(waited.is_some() && waited < activated, "in progress, then active: {events:?}");
    let polled = events.iter().filter(|e| e["operation"] == "sso:DescribeAccountAssignmentCreationStatus").count();
    assert!(polled >= 1, "the status is polled: {events:?}");
    let created = events.iter().filter(|e| e["operation"] == "sso:CreateAccountAssignment").count();
    assert_eq!(created, 1, "{events:?}");

    // A ConflictException on the deletion is retried, not a failure.
    proxy.fault_next("DeleteAccountAssignment", crate::support::Fault::Conflict);
    revoked(&server, &grant_id).await;
    let deletions = proxy.exchanges().iter().filter(|e| e.action == "DeleteAccountAssignment").count();
    assert!(deletions >= 3, "the failed grant's undo, the conflict, the retry: {deletions}");
    assert!(assigned(&account, &instance, &slow, &account.id).await.is_empty());
}

#[tokio::test]
async fn an_assignment_removed_by_someone_is_reported_then_put_back_by_reconciliation() {
    let (server, _proxy) = server_behind_proxy().await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (instance, store) = account.identity_center().await;
    let carol = account.create_identity_center_user(&store, "carol", "Carol").await;
    let viewer = account.create_permission_set(&instance, "Viewer", true).await;
    let created = server.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(server.wait_for_sync(id).await["status"], "succeeded");
    let viewer_id = resource_id(&server, id, "permission_set", "Viewer").await;
    let carol_principal = json!({"type": "identity_center_user", "name": "carol"});
    let (_, granted) = assignment_grant(&server, id, &viewer_id, carol_principal, Some(&account.id)).await;
    assert_eq!(granted["status"], "active", "{granted}");
    assert!(reconcile(&server, id, json!({})).await.is_empty(), "nothing to find");

    account
        .sso_admin()
        .delete_account_assignment()
        .instance_arn(&instance)
        .target_id(&account.id)
        .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
        .permission_set_arn(&viewer)
        .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
        .principal_id(&carol)
        .send()
        .await
        .unwrap();
    let missing = [("access_missing".to_string(), "reported".to_string())];
    assert_eq!(reconcile(&server, id, json!({"repair": false})).await, missing);
    assert!(assigned(&account, &instance, &viewer, &account.id).await.is_empty(), "reporting changes nothing");
    let repaired = [("access_missing".to_string(), "repaired".to_string())];
    assert_eq!(reconcile(&server, id, json!({})).await, repaired);
    assert_eq!(assigned(&account, &instance, &viewer, &account.id).await, set_of(&[("USER", &carol)]));
    assert!(reconcile(&server, id, json!({})).await.is_empty());
    revoked(&server, granted["id"].as_str().unwrap()).await;
    assert!(assigned(&account, &instance, &viewer, &account.id).await.is_empty(), "the grant's end removes it");

    // Assigned again by someone after the end: reported, never removed (not jit-iam's).
    assign(&account, &instance, &viewer, &carol).await;
    let left = [("access_left_after_end".to_string(), "reported".to_string())];
    assert_eq!(reconcile(&server, id, json!({})).await, left);
    assert_eq!(assigned(&account, &instance, &viewer, &account.id).await, set_of(&[("USER", &carol)]));
}

/// The permission sets of the instance: name -> (ARN, inline policy), as moto has them now.
async fn permission_sets(account: &Account, instance: &str) -> std::collections::BTreeMap<String, (String, String)> {
    let sso = account.sso_admin();
    let listed = sso.list_permission_sets().instance_arn(instance).send().await.unwrap();
    let mut sets = std::collections::BTreeMap::new();
    for arn in listed.permission_sets() {
        let described =
            sso.describe_permission_set().instance_arn(instance).permission_set_arn(arn).send().await.unwrap();
        let name = described.permission_set().unwrap().name().unwrap().to_string();
        let inline = sso.get_inline_policy_for_permission_set().instance_arn(instance).permission_set_arn(arn).send();
        let inline = inline.await.unwrap().inline_policy().unwrap_or_default().to_string();
        sets.insert(name, (arn.clone(), inline));
    }
    sets
}

#[tokio::test]
async fn a_bucket_granted_to_identity_center_principals_is_a_temporary_permission_set_made_and_deleted() {
    let (server, _proxy) = server_behind_proxy().await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (instance, store) = account.identity_center().await;
    let carol = account.create_identity_center_user(&store, "carol", "Carol").await;
    let ops = account.create_identity_center_group(&store, "ops").await;
    let bucket = unique("ic-data");
    account.create_bucket(&bucket, &[]).await;
    let created = server.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(server.wait_for_sync(id).await["status"], "succeeded");
    let bucket_id = resource_id(&server, id, "s3_bucket", &bucket).await;
    let user = json!({"type": "identity_center_user", "name": "carol"});

    // The preview shows the permission set's inline policy and its calls.
    let body = json!({
        "integration_id": id, "resource_id": bucket_id, "access_level": "read", "principal": user,
        "duration_seconds": 600, "request_id": unique("req"), "approved_by": "approver"
    });
    let (status, preview) = server.post("/v1/grants/preview", body).await;
    assert_eq!(status, 200, "{preview}");
    let operations: Vec<&str> =
        preview["apply_calls"].as_array().unwrap().iter().map(|c| c["operation"].as_str().unwrap()).collect();
    assert_eq!(
        operations,
        [
            "sso:CreatePermissionSet",
            "identitystore:GetUserId",
            "sso:PutInlinePolicyToPermissionSet",
            "sso:CreateAccountAssignment",
            "sso:DescribeAccountAssignmentCreationStatus"
        ]
    );
    let revoke_calls: Vec<&str> =
        preview["revoke_calls"].as_array().unwrap().iter().map(|c| c["operation"].as_str().unwrap()).collect();
    assert_eq!(
        revoke_calls,
        ["sso:DeleteAccountAssignment", "sso:DescribeAccountAssignmentDeletionStatus", "sso:DeletePermissionSet"]
    );
    assert!(preview["policy_document"]["Statement"].to_string().contains(&bucket), "{preview}");

    for (principal, principal_type, principal_id) in
        [(user.clone(), "USER", &carol), (json!({"type": "identity_center_group", "name": "ops"}), "GROUP", &ops)]
    {
        let (status, grant) = grant(&server, id, &bucket_id, "read", principal).await;
        assert_eq!((status, grant["status"].as_str()), (202, Some("active")), "{grant}");
        let name = grant["policy"]["name"].as_str().unwrap().to_string();
        let arn = grant["policy"]["arn"].as_str().unwrap().to_string();
        assert_eq!(name.len(), 32, "{name}");
        let sets = permission_sets(&account, &instance).await;
        let (found_arn, inline) = &sets[&name];
        assert_eq!(found_arn, &arn);
        let inline: Value = serde_json::from_str(inline).unwrap();
        assert_eq!(inline, grant["policy"]["document"], "the inline policy is the grant's document");
        let described = account.sso_admin().describe_permission_set().instance_arn(&instance).permission_set_arn(&arn);
        let described = described.send().await.unwrap();
        let described = described.permission_set().unwrap();
        assert_eq!(
            described.session_duration(),
            Some("PT1H"),
            "the grant's 10 minutes, at least Identity Center's hour"
        );
        assert!(described.description().unwrap().contains(grant["id"].as_str().unwrap()));
        assert_eq!(
            assigned(&account, &instance, &arn, &account.id).await,
            set_of(&[(principal_type, principal_id)]),
            "assigned in the bucket's account, by id"
        );
        revoked(&server, grant["id"].as_str().unwrap()).await;
        assert!(assigned(&account, &instance, &arn, &account.id).await.is_empty());
        assert!(!permission_sets(&account, &instance).await.contains_key(&name), "the permission set is deleted");
    }

    // Widened by an admin while active: found and written back.
    let (_, widened) = grant(&server, id, &bucket_id, "read", user.clone()).await;
    let arn = widened["policy"]["arn"].as_str().unwrap().to_string();
    let sso = account.sso_admin();
    let wider = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    sso.put_inline_policy_to_permission_set()
        .instance_arn(&instance)
        .permission_set_arn(&arn)
        .inline_policy(wider)
        .send()
        .await
        .unwrap();
    let mut kinds = reconcile(&server, id, json!({})).await;
    kinds.sort();
    assert_eq!(kinds, [("policy_modified".to_string(), "repaired".to_string())]);
    let sets = permission_sets(&account, &instance).await;
    let inline: Value = serde_json::from_str(&sets[widened["policy"]["name"].as_str().unwrap()].1).unwrap();
    assert_eq!(inline, widened["policy"]["document"], "written back");
    assert!(reconcile(&server, id, json!({})).await.is_empty());
    revoked(&server, widened["id"].as_str().unwrap()).await;
    assert!(permission_sets(&account, &instance).await.is_empty());

    // Refused before anything is made: the instance has no room.
    let (full, _full_proxy) = server_behind_proxy_with(&[("JIT_IAM_MAX_PERMISSION_SETS_PER_INSTANCE", "1")]).await;
    account.create_permission_set(&instance, "Standing", false).await;
    let created = full.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(full.wait_for_sync(id).await["status"], "succeeded");
    let bucket_id = resource_id(&full, id, "s3_bucket", &bucket).await;
    let (status, error) = grant(&full, id, &bucket_id, "read", user).await;
    assert_eq!((status, error["error"]["code"].as_str()), (409, Some("quota_exceeded")), "{error}");
    assert_eq!(permission_sets(&account, &instance).await.len(), 1, "nothing made");
}

#[tokio::test]
async fn assignment_creations_in_progress_are_bounded_per_instance() {
    let (server, proxy) = server_behind_proxy_with(&[("JIT_IAM_IDENTITY_CENTER_MAX_ASSIGNMENT_CREATIONS", "1")]).await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (instance, store) = account.identity_center().await;
    account.create_identity_center_user(&store, "carol", "Carol").await;
    for name in ["First", "Second"] {
        account.create_permission_set(&instance, name, true).await;
    }
    let created = server.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(server.wait_for_sync(id).await["status"], "succeeded");
    proxy.hold_answers("CreateAccountAssignment");
    let mut ids = Vec::new();
    for name in ["First", "Second"] {
        let body = json!({
            "integration_id": id, "resource_id": resource_id(&server, id, "permission_set", name).await,
            "access_level": "assign", "principal": {"type": "identity_center_user", "name": "carol"},
            "account_id": account.id, "duration_seconds": 600, "request_id": unique("req"), "approved_by": "approver"
        });
        let (status, grant) = server.post("/v1/grants", body).await;
        assert_eq!(status, 202, "{grant}");
        ids.push(grant["id"].as_str().unwrap().to_string());
    }
    proxy.holding().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let creations = || proxy.exchanges().iter().filter(|e| e.action == "CreateAccountAssignment").count();
    assert_eq!(creations(), 1, "the second waits for the first to be provisioned");
    proxy.release();
    for id in &ids {
        wait_for(&server, id, "active").await;
    }
    assert_eq!(creations(), 2);
}

#[tokio::test]
async fn a_conflict_creating_a_temporary_permission_set_is_retried_and_makes_one() {
    let (server, proxy) = server_behind_proxy().await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (instance, store) = account.identity_center().await;
    account.create_identity_center_user(&store, "carol", "Carol").await;
    let bucket = unique("ic-conflict");
    account.create_bucket(&bucket, &[]).await;
    let created = server.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(server.wait_for_sync(id).await["status"], "succeeded");
    let bucket_id = resource_id(&server, id, "s3_bucket", &bucket).await;
    proxy.fault_next("CreatePermissionSet", crate::support::Fault::Conflict);
    let (status, granted) =
        grant(&server, id, &bucket_id, "read", json!({"type": "identity_center_user", "name": "carol"})).await;
    assert_eq!((status, granted["status"].as_str()), (202, Some("active")), "{granted}");
    let (_, events) = server.get(&format!("/v1/grants/{}/events?limit=1000", granted["id"].as_str().unwrap())).await;
    let creations: Vec<(String, String)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operation"] == "sso:CreatePermissionSet")
        .map(|e| (e["outcome"].as_str().unwrap().to_string(), e["error_code"].as_str().unwrap_or("").to_string()))
        .collect();
    let wanted = [("failed".to_string(), "ConflictException".to_string()), ("success".to_string(), String::new())];
    assert_eq!(creations, wanted, "retried, one permission set made");
    assert_eq!(permission_sets(&account, &instance).await.len(), 1);
    revoked(&server, granted["id"].as_str().unwrap()).await;
    assert!(permission_sets(&account, &instance).await.is_empty());
}

/// A replica killed while Identity Center grants of every kind are applied
/// and revoked: another takes them over, each ends correctly, and nothing is
/// left in Identity Center (what a try made before recording it is adopted,
/// or deleted as an orphan).
#[tokio::test]
async fn a_killed_replica_s_identity_center_grants_are_taken_over_and_leave_nothing() {
    let moto = Moto::shared();
    let proxy = FaultProxy::start(&moto.endpoint, Duration::from_secs(1)).await;
    proxy.answer("ListTagsForResource", None, permission_set_tags(&[]));
    let db = crate::support::TestDb::new();
    let builder = || {
        TestServer::builder(Moto::shared())
            .database(db.clone())
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .env("JIT_IAM_SERVICE_PRINCIPAL_ARN", "arn:aws:iam::111122223333:role/jit-iam")
            .env("JIT_IAM_MIN_GRANT", "1s")
            .env("JIT_IAM_WORKER_LEASE", "2s")
    };
    let mut first = builder().start().await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (instance, store) = account.identity_center().await;
    let users: Vec<String> = (0..5).map(|i| format!("user-{i}")).collect();
    for user in &users {
        account.create_identity_center_user(&store, user, user).await;
    }
    account.create_identity_center_group(&store, "ops").await;
    let viewer = account.create_permission_set(&instance, "Viewer", true).await;
    let bucket = unique("ic-crash");
    account.create_bucket(&bucket, &[]).await;
    let created = first.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(first.wait_for_sync(&id).await["status"], "succeeded");
    let resources = [
        (resource_id(&first, &id, "identity_center_group", "ops").await, "member", None),
        (resource_id(&first, &id, "permission_set", "Viewer").await, "assign", Some(account.id.clone())),
        (resource_id(&first, &id, "s3_bucket", &bucket).await, "read", None),
    ];
    let mut ids = Vec::new();
    for i in 0..30 {
        let (resource, level, account_id) = &resources[i % 3];
        let body = json!({
            "integration_id": id, "resource_id": resource, "access_level": level, "account_id": account_id,
            "principal": {"type": "identity_center_user", "name": users[i % users.len()]},
            "duration_seconds": 4 + (i % 3) as i64, "request_id": unique("crash"), "approved_by": "approver"
        });
        let (status, grant) = first.post("/v1/grants", body).await;
        assert_eq!(status, 202, "{grant}");
        ids.push(grant["id"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(4200)).await;
    first.kill();

    let second = builder().start().await;
    let mut ended = Vec::new();
    for id in &ids {
        ended.push(
            crate::support::eventually(Duration::from_secs(120), "the grant to end", || async {
                let (_, grant) = second.get(&format!("/v1/grants/{id}")).await;
                matches!(grant["status"].as_str(), Some("revoked" | "failed")).then_some(grant)
            })
            .await,
        );
    }
    for grant in &ended {
        match grant["status"].as_str() {
            Some("revoked") => assert_eq!(grant["revoke_reason"], "expired", "{grant}"),
            _ => assert_eq!(grant["last_error"]["code"], "expired", "{grant}"),
        }
    }
    assert!(ended.iter().filter(|g| g["status"] == "revoked").count() >= 15, "most grants were applied");
    // A permission set made by a try the kill cut off before its ARN was
    // recorded is an orphan once the inventory has seen it (moto, unlike AWS,
    // let the retry make a second one under the same name rather than adopt it).
    let (status, _) = second.post(&format!("/v1/integrations/{id}/sync"), json!({})).await;
    assert_eq!(status, 202);
    assert_eq!(second.wait_for_sync(&id).await["status"], "succeeded");
    reconcile(&second, &id, json!({"delete_orphans": true})).await;
    assert!(assigned(&account, &instance, &viewer, &account.id).await.is_empty(), "no assignment left");
    let left: Vec<String> = permission_sets(&account, &instance).await.into_keys().collect();
    assert_eq!(left, ["Viewer"], "no temporary permission set left");
    let identity_store = account.identity_store();
    let memberships = identity_store.list_users().identity_store_id(&store).send().await.unwrap();
    for user in memberships.users() {
        assert!(groups_of(&account, &store, user.user_id()).await.is_empty(), "no membership left");
    }
}

/// A permission set named and described as jit-iam's temporary ones are, for `installation`.
async fn temporary_looking_set(account: &Account, instance: &str, installation: &str) -> String {
    let grant_id = uuid::Uuid::now_v7();
    let name = format!("jit-{}", &grant_id.simple().to_string()[..28]);
    let created = account
        .sso_admin()
        .create_permission_set()
        .instance_arn(instance)
        .name(&name)
        .description(format!("jit-iam grant {grant_id} (installation {installation}): temporary"))
        .session_duration("PT1H")
        .send()
        .await
        .unwrap();
    created.permission_set().unwrap().permission_set_arn().unwrap().to_string()
}

#[tokio::test]
async fn this_installations_orphaned_temporary_permission_sets_are_deleted_and_no_one_elses() {
    let (server, _proxy) = server_behind_proxy().await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (instance, _) = account.identity_center().await;
    let installation = server.get("/readyz").await.1["installation_id"].as_str().unwrap().to_string();
    // Made by a try that died before recording it; another installation's; an admin's.
    let orphan = temporary_looking_set(&account, &instance, &installation).await;
    let others = temporary_looking_set(&account, &instance, &uuid::Uuid::now_v7().to_string()).await;
    let standing = account.create_permission_set(&instance, "ReadOnly", false).await;
    let created = server.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(server.wait_for_sync(id).await["status"], "succeeded");

    let kept = [("orphaned_policy".to_string(), "kept".to_string())];
    assert_eq!(reconcile(&server, id, json!({})).await, kept, "within the grace period");
    let deleted = [("orphaned_policy".to_string(), "repaired".to_string())];
    assert_eq!(reconcile(&server, id, json!({"delete_orphans": true})).await, deleted);
    let left: BTreeSet<String> = permission_sets(&account, &instance).await.into_values().map(|(arn, _)| arn).collect();
    assert_eq!(left, [others, standing].into_iter().collect(), "only this installation's orphan goes");
    assert!(!left.contains(&orphan));
    assert!(reconcile(&server, id, json!({"delete_orphans": true})).await.is_empty(), "gone: nothing more to do");
}

/// Asks for a reconciliation with `body`; its kinds and actions once finished.
async fn reconcile(server: &TestServer, integration: &str, body: Value) -> Vec<(String, String)> {
    let (status, run) = server.post(&format!("/v1/integrations/{integration}/reconcile"), body).await;
    assert_eq!(status, 202, "{run}");
    let path = format!("/v1/integrations/{integration}/reconciliations/{}", run["id"].as_str().unwrap());
    let run = crate::support::eventually(Duration::from_secs(60), "the reconciliation", || async {
        let (_, run) = server.get(&path).await;
        (run["status"] != "queued" && run["status"] != "running").then_some(run)
    })
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let findings = run["findings"].as_array().unwrap().iter();
    findings.map(|f| (f["kind"].as_str().unwrap().to_string(), f["action"].as_str().unwrap().to_string())).collect()
}

#[tokio::test]
async fn a_membership_removed_by_someone_is_reported_then_put_back_by_reconciliation() {
    let (server, _proxy) = server_behind_proxy().await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (_, store) = account.identity_center().await;
    let carol = account.create_identity_center_user(&store, "carol", "Carol").await;
    let ops = account.create_identity_center_group(&store, "ops").await;
    let created = server.create_integration(integration(&account, json!({"identity_center": {}}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(server.wait_for_sync(id).await["status"], "succeeded");
    let group = server.browse_all(&format!("integration_id={id}&type=identity_center_group")).await[0]["id"].clone();
    let (_, granted) =
        grant(&server, id, &group, "member", json!({"type": "identity_center_user", "name": "carol"})).await;
    assert_eq!(granted["status"], "active", "{granted}");
    assert!(reconcile(&server, id, json!({})).await.is_empty(), "nothing to find");

    let identity_store = account.identity_store();
    let member = aws_sdk_identitystore::types::MemberId::UserId(carol.clone());
    let membership = identity_store
        .get_group_membership_id()
        .identity_store_id(&store)
        .group_id(&ops)
        .member_id(member)
        .send()
        .await
        .unwrap();
    let request = identity_store.delete_group_membership().identity_store_id(&store);
    request.membership_id(membership.membership_id()).send().await.unwrap();

    let missing = [("access_missing".to_string(), "reported".to_string())];
    assert_eq!(reconcile(&server, id, json!({"repair": false})).await, missing);
    assert!(groups_of(&account, &store, &carol).await.is_empty(), "reporting changes nothing");
    let repaired = [("access_missing".to_string(), "repaired".to_string())];
    assert_eq!(reconcile(&server, id, json!({})).await, repaired);
    assert_eq!(groups_of(&account, &store, &carol).await, set(&[&ops]));
    assert!(reconcile(&server, id, json!({})).await.is_empty());
    revoked(&server, granted["id"].as_str().unwrap()).await;
    assert!(groups_of(&account, &store, &carol).await.is_empty(), "the grant's end removes what the repair put back");
}

/// A server behind a fault proxy with `env` besides, an account whose
/// Identity Center has the users `users` and the group `ops`, and an
/// integration discovering it with `options`, synced: (server, proxy,
/// account, integration id, the group's resource id).
async fn memberships(
    env: &[(&str, &str)],
    users: &[&str],
    mut options: Value,
) -> (TestServer, FaultProxy, Account, String, Value) {
    let (server, proxy) = server_behind_proxy_with(env).await;
    let account = Moto::shared().account(&random_account_id()).await;
    let (_, store) = account.identity_center().await;
    for user in users {
        account.create_identity_center_user(&store, user, user).await;
    }
    account.create_identity_center_group(&store, "ops").await;
    options["identity_center"] = json!({});
    let created = server.create_integration(integration(&account, options)).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(server.wait_for_sync(&id).await["status"], "succeeded");
    let group = server.browse_all(&format!("integration_id={id}&type=identity_center_group")).await[0]["id"].clone();
    (server, proxy, account, id, group)
}

fn to(user: &str) -> Value {
    json!({"type": "identity_center_user", "name": user})
}

#[tokio::test]
async fn the_discovered_instance_is_listed_once_per_revision_of_the_integration() {
    let (server, proxy, _, id, ops) = memberships(&[], &["carol"], json!({})).await;
    let listed = || proxy.exchanges().iter().filter(|e| e.service == "sso" && e.action == "ListInstances").count();
    let lifecycle = || async {
        let (_, granted) = grant(&server, &id, &ops, "member", to("carol")).await;
        assert_eq!(granted["status"], "active", "{granted}");
        revoked(&server, granted["id"].as_str().unwrap()).await;
    };
    lifecycle().await;
    lifecycle().await;
    assert_eq!(listed(), 1, "the sync's discovery serves both grants, applied and revoked");

    // A new revision (its options may name another instance) discovers afresh, once.
    let (status, body) =
        server.patch(&format!("/v1/integrations/{id}"), json!({"options": {"max_duration": 7200}})).await;
    assert_eq!(status, 200, "{body}");
    lifecycle().await;
    lifecycle().await;
    assert_eq!(listed(), 2);
}

#[tokio::test]
async fn a_burst_of_identity_center_grants_expiring_together_keeps_to_the_rate_and_none_fails() {
    const RATE: usize = 5;
    // The bucket's burst at this rate: a quarter second's requests, at least one.
    const BURST: usize = 1;
    let users = ["u1", "u2", "u3", "u4", "u5", "u6"];
    let env = [("JIT_IAM_IDENTITY_CENTER_REQUESTS_PER_SECOND", "5"), ("JIT_IAM_MIN_GRANT", "1s")];
    let (server, proxy, _, id, ops) = memberships(&env, &users, json!({})).await;
    // Three identitystore calls each to apply, two to revoke: 30 calls, 6 s at 5/s.
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(8)).to_rfc3339();
    let mut grants = Vec::new();
    for user in users {
        let body = json!({
            "integration_id": id, "resource_id": ops, "access_level": "member", "principal": to(user),
            "expires_at": expires_at, "request_id": unique("req"), "approved_by": "approver"
        });
        let (status, granted) = server.post("/v1/grants", body).await;
        assert_eq!(status, 202, "{granted}");
        grants.push(granted["id"].as_str().unwrap().to_string());
    }
    for grant in &grants {
        let ended = crate::support::eventually(Duration::from_secs(60), "the grant's end", || async {
            let (_, grant) = server.get(&format!("/v1/grants/{grant}")).await;
            (grant["status"] == "revoked" || grant["status"] == "failed").then_some(grant)
        })
        .await;
        assert_eq!(
            (ended["status"].as_str(), ended["revoke_reason"].as_str()),
            (Some("revoked"), Some("expired")),
            "{ended}"
        );
        assert!(ended["activated_at"].is_string(), "applied before it expired: {ended}");
    }

    let calls: Vec<_> = proxy
        .exchanges()
        .into_iter()
        .filter(|e| e.service == "sso" || e.service == "identitystore")
        .map(|e| e.at)
        .collect();
    let changes = proxy.exchanges().iter().filter(|e| e.action.ends_with("GroupMembership")).count();
    assert_eq!(changes, 2 * users.len(), "every membership made and removed once");
    assert!(calls.len() >= 5 * users.len(), "{} calls", calls.len());
    // Any one second holds at most the rate and the burst (a few ms of
    // leeway: the proxy timestamps arrivals, not departures).
    let mut sorted = calls.clone();
    sorted.sort();
    for (i, at) in sorted.iter().enumerate() {
        let within = sorted[i..].iter().take_while(|later| **later < *at + Duration::from_millis(980)).count();
        assert!(within <= RATE + BURST, "{within} Identity Center calls in the second after call {i}");
    }
}

#[tokio::test]
async fn access_levels_narrow_identity_center_groups_and_permission_sets() {
    let options = json!({"access_levels": {"identity_center_group": []}});
    let (server, _proxy, account, id, ops) = memberships(&[], &["carol"], options).await;
    let path = format!("/v1/integrations/{id}");
    let body = || {
        json!({
            "integration_id": id, "resource_id": ops, "access_level": "member", "principal": to("carol"),
            "duration_seconds": 600, "request_id": unique("req"), "approved_by": "approver"
        })
    };
    for route in ["/v1/grants", "/v1/grants/preview"] {
        let (status, error) = server.post(route, body()).await;
        let refusal = (status.as_u16(), error["error"]["code"].as_str(), error["error"]["field"].as_str());
        assert_eq!(refusal, (422, Some("validation_failed"), Some("access_level")), "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("integration's options.access_levels") && message.contains("no level"), "{message}");
    }
    let (_, grants) = server.get(&format!("/v1/grants?integration_id={id}")).await;
    assert_eq!(grants["items"], json!([]), "{grants}");

    // Only each type's own levels, each once, at creation and at change.
    for (levels, field) in [
        (json!({"identity_center_group": ["assign"]}), "options.access_levels.identity_center_group[0]"),
        (json!({"permission_set": ["member"]}), "options.access_levels.permission_set[0]"),
        (json!({"permission_set": ["assign", "assign"]}), "options.access_levels.permission_set[1]"),
    ] {
        let (status, error) = server.patch(&path, json!({"options": {"access_levels": levels.clone()}})).await;
        assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (422, Some(field)), "{levels}: {error}");
        let options = json!({"access_levels": levels.clone(), "identity_center": {}});
        let (status, error) = server.post("/v1/integrations", integration(&account, options)).await;
        assert_eq!((status.as_u16(), error["error"]["field"].as_str()), (422, Some(field)), "{levels}: {error}");
    }

    let levels = json!({"identity_center_group": ["member"], "permission_set": ["assign"]});
    let (status, updated) = server.patch(&path, json!({"options": {"access_levels": levels.clone()}})).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["options"]["access_levels"], levels);
    let (status, granted) = server.post("/v1/grants?wait=20", body()).await;
    assert_eq!((status.as_u16(), granted["status"].as_str()), (202, Some("active")), "{granted}");
}
