//! The integrations API: auth, CRUD, validation, setup documents and the connection check.

use aws_credential_types::Credentials;
use reqwest::StatusCode;
use serde_json::{json, Value};

use std::time::Duration;

use crate::support::{
    eventually, random_account_id, unique, Account, EnforcedSetup, Moto, TestServer, ENFORCED_ACCOUNT,
};

fn integration_body(name: &str, account_id: &str) -> Value {
    json!({
        "name": name,
        "connection": "single_account",
        "root_account": {
            "account_id": account_id,
            "access_role_arn": format!("arn:aws:iam::{account_id}:role/jit-iam-access"),
            "external_id": "external-id-123",
            "region": "us-east-1"
        },
        "options": {"tags": [{"key": "jit", "value": "enabled"}], "regions": ["us-east-1"]}
    })
}

#[tokio::test]
async fn health_is_open_and_v1_needs_a_valid_token() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    for path in ["/healthz", "/readyz"] {
        let response = http.get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let url = format!("{}/v1/integrations", server.url);
    for authorization in [None, Some("Bearer wrong-token-0123456789"), Some("Basic dGVzdDp0ZXN0"), Some("Bearer")] {
        let mut request = http.get(&url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{authorization:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let ok = http.get(&url).bearer_auth(&server.token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // The caller's name is logged; the token never is.
    let logs = eventually(Duration::from_secs(5), "the caller in the logs", || async {
        let logs = server.logs().join("\n");
        logs.contains(r#""caller":"tests""#).then_some(logs)
    })
    .await;
    assert!(!logs.contains(&server.token));
}

#[tokio::test]
async fn create_get_list_update_delete() {
    let server = TestServer::start().await;
    let account = random_account_id();

    let mut body = integration_body("prod", &account);
    body["root_account"].as_object_mut().unwrap().remove("external_id");
    let created = server.create_integration(body).await;
    let id = created["id"].as_str().unwrap().to_string();
    let external_id = created["root_account"]["external_id"].as_str().unwrap();
    assert!(external_id.len() >= 32, "generated external id {external_id}");
    assert_eq!(created["status"], "active");
    assert_eq!(created["options"]["tags"], json!([{"key": "jit", "value": "enabled"}]));

    let (status, fetched) = server.get(&format!("/v1/integrations/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);

    // The row holds what the API returned, and no credential of any kind.
    let db = server.db().await;
    let (stored_name, stored_external_id): (String, String) =
        sqlx::query_as("select name, external_id from integrations where integration_id = $1::uuid")
            .bind(&id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!((stored_name.as_str(), stored_external_id.as_str()), ("prod", external_id));

    for name in ["staging", "dev"] {
        server.create_integration(integration_body(name, &account)).await;
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/integrations?limit=2&cursor={c}"),
            None => "/v1/integrations?limit=2".to_string(),
        };
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200, "{page}");
        names.extend(page["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["prod", "staging", "dev"]);

    let (status, updated) = server
        .patch(
            &format!("/v1/integrations/{id}"),
            json!({"name": "production", "root_account": {"external_id": "rotated-id"},
                   "options": {"tags": [], "regions": null}}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "production");
    assert_eq!(updated["root_account"]["external_id"], "rotated-id");
    assert_eq!(updated["root_account"]["access_role_arn"], created["root_account"]["access_role_arn"]);
    assert_eq!(updated["options"]["tags"], json!([]));
    assert!(updated["options"].get("regions").is_none(), "{updated}");

    let (status, _) = server.delete(&format!("/v1/integrations/{id}")).await;
    assert_eq!(status, 204);
    let (status, body) = server.get(&format!("/v1/integrations/{id}")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, _) = server.delete(&format!("/v1/integrations/{id}")).await;
    assert_eq!(status, 404);
    let remaining: i64 = sqlx::query_scalar("select count(*) from integrations").fetch_one(&db).await.unwrap();
    assert_eq!(remaining, 2);
}

#[tokio::test]
async fn names_are_unique() {
    let server = TestServer::start().await;
    let account = random_account_id();
    server.create_integration(integration_body("prod", &account)).await;
    let (status, body) = server.post("/v1/integrations", integration_body("prod", &account)).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "name_taken");
    assert_eq!(body["error"]["field"], "name");

    let other = server.create_integration(integration_body("dev", &account)).await;
    let (status, body) =
        server.patch(&format!("/v1/integrations/{}", other["id"].as_str().unwrap()), json!({"name": "prod"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("name_taken")));
}

/// Each bad input gets its 4xx and names the field; none gets a 500.
#[tokio::test]
async fn every_validation_rule_names_its_field() {
    let server = TestServer::start().await;
    let account = "123456789012";
    type Mutation = fn(&mut Value);
    let cases: Vec<(Mutation, u16, &str, &str)> = vec![
        (|b| b["name"] = json!(""), 422, "name", "validation_failed"),
        (|b| b["name"] = json!(7), 422, "name", "validation_failed"),
        (|b| b["connection"] = json!("multi"), 422, "connection", "validation_failed"),
        (
            |b| {
                b.as_object_mut().unwrap().remove("connection");
            },
            422,
            "connection",
            "validation_failed",
        ),
        (|b| b["surprise"] = json!(true), 422, "surprise", "validation_failed"),
        (|b| b["root_account"]["account_id"] = json!("12345"), 422, "root_account.account_id", "validation_failed"),
        (
            |b| b["root_account"]["account_id"] = json!(123456789012u64),
            422,
            "root_account.account_id",
            "validation_failed",
        ),
        (
            |b| b["root_account"]["access_role_arn"] = json!("arn:aws:iam::123456789012:user/x"),
            422,
            "root_account.access_role_arn",
            "validation_failed",
        ),
        (
            |b| b["root_account"]["access_role_arn"] = json!("arn:gcp:iam::123456789012:role/x"),
            422,
            "root_account.access_role_arn",
            "validation_failed",
        ),
        (
            |b| b["root_account"]["access_role_arn"] = json!("arn:aws:iam::999999999999:role/x"),
            422,
            "root_account.access_role_arn",
            "validation_failed",
        ),
        (|b| b["root_account"]["external_id"] = json!("x"), 422, "root_account.external_id", "validation_failed"),
        (
            |b| b["root_account"]["external_id"] = json!("a".repeat(1225)),
            422,
            "root_account.external_id",
            "validation_failed",
        ),
        (
            |b| b["root_account"]["external_id"] = json!("has spaces"),
            422,
            "root_account.external_id",
            "validation_failed",
        ),
        (|b| b["root_account"]["region"] = json!("mars-north-1"), 422, "root_account.region", "validation_failed"),
        (|b| b["root_account"]["region"] = json!("cn-north-1"), 422, "root_account.region", "validation_failed"),
        (|b| b["root_account"]["extra"] = json!(1), 422, "root_account.extra", "validation_failed"),
        (
            |b| b["options"]["tags"] = json!([{"key": "", "value": "v"}]),
            422,
            "options.tags[0].key",
            "validation_failed",
        ),
        (
            |b| b["options"]["tags"] = json!([{"key": "k".repeat(129), "value": "v"}]),
            422,
            "options.tags[0].key",
            "validation_failed",
        ),
        (
            |b| b["options"]["tags"] = json!([{"key": "k", "value": "v".repeat(257)}]),
            422,
            "options.tags[0].value",
            "validation_failed",
        ),
        (|b| b["options"]["tags"] = json!([{"key": "k"}]), 422, "options.tags[0].value", "validation_failed"),
        (|b| b["options"]["regions"] = json!([]), 422, "options.regions", "validation_failed"),
        (|b| b["options"]["regions"] = json!(["us-east-1", "nowhere"]), 422, "options.regions[1]", "validation_failed"),
        (|b| b["options"]["member_role_name"] = json!("jit"), 422, "options.member_role_name", "validation_failed"),
        (
            |b| b["options"]["include_aws_managed_policies"] = json!("yes"),
            422,
            "options.include_aws_managed_policies",
            "validation_failed",
        ),
    ];
    for (mutate, status, field, code) in cases {
        let mut body = integration_body("valid", account);
        mutate(&mut body);
        let (got, answer) = server.post("/v1/integrations", body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }

    let url = format!("{}/v1/integrations", server.url);
    let http = reqwest::Client::new();
    let raw = |body: &'static str, content_type: &'static str| {
        http.post(&url).bearer_auth(&server.token).header("content-type", content_type).body(body).send()
    };
    let response = raw(r#"{"name": "x",,}"#, "application/json").await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "malformed_json");
    let response = raw(r#"{"name": "x"}"#, "text/plain").await.unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "unsupported_media_type");
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(100_000));
    let response = http
        .post(&url)
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "payload_too_large");

    for (path, field) in [
        ("/v1/integrations?limit=0", "limit"),
        ("/v1/integrations?limit=1001", "limit"),
        ("/v1/integrations?limit=ten", "limit"),
        ("/v1/integrations?cursor=forged", "cursor"),
        ("/v1/integrations?colour=blue", "colour"),
        ("/v1/integrations/not-a-uuid", "id"),
        ("/v1/integrations/not-a-uuid/setup", "id"),
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{path}");
        assert_eq!(body["error"]["field"], field, "{path}");
    }
    let (status, body) = server.get("/v1/integrations/00000000-0000-0000-0000-000000000000").await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, body) = server.call(reqwest::Method::PUT, "/v1/integrations", None).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (405, Some("method_not_allowed")));

    let created = server.create_integration(integration_body("patched", account)).await;
    let path = format!("/v1/integrations/{}", created["id"].as_str().unwrap());
    for (patch, field) in [
        (json!({"connection": "organization"}), "connection"),
        (json!({"root_account": {"account_id": "210987654321"}}), "root_account.account_id"),
        (
            json!({"root_account": {"access_role_arn": "arn:aws:iam::210987654321:role/x"}}),
            "root_account.access_role_arn",
        ),
        (json!({"root_account": {"region": "nowhere-1"}}), "root_account.region"),
        (json!({"options": {"tags": [{"key": "", "value": ""}]}}), "options.tags[0].key"),
        (json!({"options": {"unknown": 1}}), "options.unknown"),
    ] {
        let (status, body) = server.patch(&path, patch.clone()).await;
        assert_eq!(status, 422, "{patch} -> {body}");
        assert_eq!(body["error"]["field"], field, "{patch} -> {body}");
    }
    let (_, unchanged) = server.get(&path).await;
    assert_eq!(unchanged, created);
}

/// The setup documents name the service's identity; IAM accepts them; the
/// check passes with them, and reports AWS's refusal when the external id differs.
#[tokio::test]
async fn setup_documents_work_in_iam_and_the_check_reports_access_denied() {
    let moto = Moto::start();
    // moto's default account, where trust policies and external ids are enforced.
    let account_id = "123456789012";
    let admin = Account::new(
        account_id,
        moto.config(Credentials::new("AKIAIOSFODNN7EXAMPLE", "admin", None, None, "tests"), "us-east-1").await,
    );
    admin.iam.create_user().user_name("jit-iam-service").send().await.unwrap();
    admin
        .iam
        .put_user_policy()
        .user_name("jit-iam-service")
        .policy_name("assume")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let key = admin.iam.create_access_key().user_name("jit-iam-service").send().await.unwrap().access_key.unwrap();

    let server = TestServer::builder(&moto)
        .env("AWS_ACCESS_KEY_ID", &key.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &key.secret_access_key)
        .start()
        .await;
    let mut body = integration_body(&unique("enforced"), account_id);
    body["root_account"]["external_id"] = json!("the-right-external-id");
    let integration = server.create_integration(body).await;
    let path = format!("/v1/integrations/{}", integration["id"].as_str().unwrap());

    let (status, setup) = server.get(&format!("{path}/setup")).await;
    assert_eq!(status, 200, "{setup}");
    let service_arn = format!("arn:aws:iam::{account_id}:user/jit-iam-service");
    assert_eq!(setup["service_principal_arn"], service_arn);
    let trust = &setup["root_account"]["trust_policy"];
    assert_eq!(trust["Statement"][0]["Principal"]["AWS"], service_arn);
    assert_eq!(trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"], "the-right-external-id");
    let permissions = &setup["root_account"]["permission_policy"];
    let actions: Vec<&str> = permissions["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()))
        .collect();
    assert!(actions.contains(&"iam:CreatePolicy") && actions.contains(&"iam:AttachUserPolicy"), "{actions:?}");
    assert!(setup.get("member_accounts").is_none());
    // Writes are confined: policies under jit-iam's own path, attachments to the account's principals.
    let resources_of = |action: &str| {
        let statements = permissions["Statement"].as_array().unwrap();
        let statement = statements.iter().find(|s| s["Action"].as_array().unwrap().contains(&json!(action))).unwrap();
        statement["Resource"].clone()
    };
    assert_eq!(resources_of("iam:DeletePolicy"), json!([format!("arn:aws:iam::{account_id}:policy/jit-iam/*")]));
    assert_eq!(resources_of("iam:AttachUserPolicy"), json!([format!("arn:aws:iam::{account_id}:user/*")]));
    assert_eq!(resources_of("iam:ListPolicies"), json!(["*"]));

    // IAM accepts both documents as they are.
    admin
        .iam
        .create_role()
        .role_name("jit-iam-access")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("CreateRole accepts the trust policy");
    admin
        .iam
        .put_role_policy()
        .role_name("jit-iam-access")
        .policy_name("jit-iam")
        .policy_document(permissions.to_string())
        .send()
        .await
        .expect("PutRolePolicy accepts the permission policy");
    admin
        .iam
        .create_policy()
        .policy_name("jit-iam-permissions")
        .policy_document(permissions.to_string())
        .send()
        .await
        .expect("CreatePolicy accepts the permission policy");

    moto.enforce_iam().await;

    let (status, check) = server.post(&format!("{path}/check"), json!({})).await;
    assert_eq!(status, 200, "{check}");
    assert_eq!(check["ok"], true, "{check}");
    let steps: Vec<(&str, &str)> = check["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("assume_role", "passed"), ("get_caller_identity", "passed"), ("account_matches", "passed")]);

    let (status, _) = server.patch(&path, json!({"root_account": {"external_id": "a-wrong-external-id"}})).await;
    assert_eq!(status, 200);
    let (status, check) = server.post(&format!("{path}/check"), json!({})).await;
    assert_eq!(status, 200, "{check}");
    assert_eq!(check["ok"], false);
    let assume = &check["steps"][0];
    assert_eq!((assume["name"].as_str(), assume["status"].as_str()), (Some("assume_role"), Some("failed")));
    assert_eq!(assume["error"]["operation"], "sts:AssumeRole");
    assert_eq!(assume["error"]["http_status"], 403);
    assert_eq!(assume["error"]["code"], "AccessDenied", "{check}");
    assert!(assume["detail"].as_str().unwrap().contains("AWS denied sts:AssumeRole"), "{check}");
    assert_eq!(check["steps"][1]["status"], "skipped");
    assert_eq!(check["steps"][2]["status"], "skipped");
}

/// Organizations get a second role to create in every member account, without Organizations access.
#[tokio::test]
async fn organization_setup_includes_member_roles() {
    let server = TestServer::builder(Moto::shared())
        .env("JIT_IAM_SERVICE_PRINCIPAL_ARN", "arn:aws:sts::111122223333:assumed-role/jit-iam-pod/i-0abc")
        .start()
        .await;
    let mut body = integration_body(&unique("org"), &random_account_id());
    body["connection"] = json!("organization");
    body["options"]["member_role_name"] = json!("jit-iam-member");
    let integration = server.create_integration(body).await;
    let (status, setup) = server.get(&format!("/v1/integrations/{}/setup", integration["id"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{setup}");
    assert_eq!(setup["service_principal_arn"], "arn:aws:iam::111122223333:role/jit-iam-pod");
    assert_eq!(setup["member_accounts"]["role_name"], "jit-iam-member");
    assert!(setup["root_account"]["permission_policy"].to_string().contains("organizations:ListAccounts"));
    assert!(!setup["member_accounts"]["permission_policy"].to_string().contains("organizations:"));
}

/// While grants are live, a new role, external id or member role is checked
/// before it is stored: one that cannot be assumed would leave their access in
/// AWS. Refused with the check's report, nothing changed; without live grants,
/// the change is stored as asked.
#[tokio::test]
async fn a_connection_change_is_checked_first_while_grants_are_live() {
    let setup = EnforcedSetup::new().await;
    let bucket = unique("guarded");
    setup.seed.create_bucket(&bucket, &[]).await;
    setup.seed.create_user("alice", &[]).await;
    let enforced = setup.enforce().await;
    let server = &enforced.server;
    let path = format!("/v1/integrations/{}", enforced.integration);
    let alice = json!({"type": "iam_user", "name": "alice"});
    let grant = enforced.grant_arn(alice, &format!("arn:aws:s3:::{bucket}"), "read", 3600).await;
    assert_eq!(grant["status"], "active", "{grant}");
    let (_, before) = server.get(&path).await;

    let wrong_role = format!("arn:aws:iam::{ENFORCED_ACCOUNT}:role/not-there");
    for patch in [
        json!({"root_account": {"external_id": "a-wrong-external-id"}}),
        json!({"root_account": {"access_role_arn": wrong_role}}),
        json!({"name": "renamed", "options": {"member_role_name": "not-there"}, "root_account": {"external_id": "nope-1234"}}),
    ] {
        let (status, error) = server.patch(&path, patch.clone()).await;
        assert_eq!(
            (status.as_u16(), error["error"]["code"].as_str()),
            (409, Some("connection_check_failed")),
            "{patch}: {error}"
        );
        let check = &error["error"]["checks"][0];
        assert_eq!(
            (check["account_id"].as_str(), check["ok"].as_bool()),
            (Some(ENFORCED_ACCOUNT), Some(false)),
            "{error}"
        );
        // moto lets a role that does not exist be assumed; the organization's listing then fails.
        let failed = check["steps"].as_array().unwrap().iter().find(|step| step["status"] == "failed").cloned();
        let expected = if patch["root_account"].get("external_id").is_some() { "assume_role" } else { "list_accounts" };
        assert_eq!(failed.map(|step| step["name"].clone()), Some(json!(expected)), "{patch}: {error}");
    }
    let (_, after) = server.get(&path).await;
    assert_eq!(after, before, "nothing was stored");
    let (_, audit) =
        server.get(&format!("/v1/audit-events?action=integration.updated&target_id={}", enforced.integration)).await;
    assert_eq!(audit["items"], json!([]));

    // A change that keeps the connection is not checked; one that passes its check is stored.
    let (status, renamed) = server.patch(&path, json!({"name": "renamed"})).await;
    assert_eq!((status.as_u16(), &renamed["name"]), (200, &json!("renamed")), "{renamed}");
    let (status, updated) = server.patch(&path, json!({"options": {"member_role_name": "jit-iam-access"}})).await;
    assert_eq!(status, 200, "{updated}");

    // The connection still reaches the account: the grant is revoked.
    let id = grant["id"].as_str().unwrap();
    enforced.revoke(id).await;
    enforced.wait(id, |g| g["status"] == "revoked").await;
    assert!(enforced.admin.user_policies("alice").await.is_empty());

    // Without live grants, the change is the admin's to make.
    let (status, updated) = server.patch(&path, json!({"root_account": {"external_id": "a-wrong-external-id"}})).await;
    assert_eq!(status, 200, "{updated}");
}

/// On a machine with no AWS identity (no credentials, no instance metadata)
/// the setup documents cannot name jit-iam: the answer says what to set.
#[tokio::test]
async fn setup_without_an_aws_identity_says_what_to_set() {
    let server =
        TestServer::builder(Moto::shared()).env("AWS_ACCESS_KEY_ID", "").env("AWS_SECRET_ACCESS_KEY", "").start().await;
    let integration = server.create_integration(integration_body(&unique("bare"), &random_account_id())).await;
    let (status, body) = server.get(&format!("/v1/integrations/{}/setup", integration["id"].as_str().unwrap())).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("give it AWS credentials") && message.contains("JIT_IAM_SERVICE_PRINCIPAL_ARN"),
        "{message}"
    );
}
