//! Every `/v1` operation of the OpenAPI document refuses a request without a
//! valid bearer token; the open routes answer without one.

use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::TestServer;
use crate::{committed_spec, error_code};

/// (method, path template, path with every `{param}` replaced by a random UUID).
fn v1_operations(spec: &Value) -> Vec<(Method, String, String)> {
    let mut operations = Vec::new();
    for (template, item) in spec["paths"].as_object().expect("paths") {
        if !template.starts_with("/v1/") && template != "/v1" {
            continue;
        }
        let concrete = template
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') && segment.ends_with('}') {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    segment.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let method = match method.as_str() {
                "parameters" | "summary" | "description" | "servers" => continue,
                m => Method::from_bytes(m.to_ascii_uppercase().as_bytes()).unwrap(),
            };
            operations.push((method, template.clone(), concrete.clone()));
        }
    }
    operations
}

/// Sends one request with the given Authorization header (None: no header);
/// a JSON body for the methods that take one, so that the body is never the reason for a refusal.
async fn send(server: &TestServer, method: &Method, path: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = server.client.request(method.clone(), format!("{}{path}", server.url));
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    if matches!(*method, Method::POST | Method::PATCH | Method::PUT) {
        request = request.json(&json!({}));
    }
    request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

#[tokio::test]
async fn every_v1_operation_refuses_a_missing_or_wrong_token() {
    let server = TestServer::start().await;
    let spec = committed_spec();
    let operations = v1_operations(&spec);
    assert!(operations.len() >= 20, "the document lists only {} /v1 operations: {operations:?}", operations.len());

    let token = server.token.clone();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("tests:{token}"));
    let wrong = format!("wrong-{}", uuid::Uuid::new_v4().simple());
    let truncated = &token[..token.len() - 1];
    let attempts: Vec<(&str, Option<String>)> = vec![
        ("no Authorization header", None),
        ("a wrong bearer token", Some(format!("Bearer {wrong}"))),
        ("the token with a character more", Some(format!("Bearer {token}x"))),
        ("the token with a character less", Some(format!("Bearer {truncated}"))),
        ("an empty bearer token", Some("Bearer ".to_string())),
        ("the scheme alone", Some("Bearer".to_string())),
        ("the right token under the Basic scheme", Some(format!("Basic {basic}"))),
        ("the right token under another scheme", Some(format!("Token {token}"))),
        ("the right token without a scheme", Some(token.clone())),
    ];

    let mut failures = Vec::new();
    for (method, template, path) in &operations {
        for (what, authorization) in &attempts {
            let response = send(&server, method, path, authorization.as_deref()).await;
            let status = response.status();
            let challenge =
                response.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap_or_default().to_string());
            let content_type = response.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or_default().to_string());
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let ok = status == StatusCode::UNAUTHORIZED
                && error_code(&body) == Some("unauthorized")
                && content_type.as_deref().is_some_and(|c| c.starts_with("application/json"))
                && challenge.as_deref() == Some("Bearer");
            if !ok {
                failures.push(format!(
                    "{method} {template} with {what}: {status}, content-type {content_type:?}, WWW-Authenticate {challenge:?}, {body}"
                ));
            }
        }
        // The token in the query string is no token.
        let query = format!("{path}?token={token}&access_token={token}");
        let response = send(&server, method, &query, None).await;
        if response.status() != StatusCode::UNAUTHORIZED {
            failures.push(format!("{method} {template} with the token in the query string: {}", response.status()));
        }

        // Control: the right token passes the gate (the answer is whatever the
        // operation says about a random id and an empty body, never 401).
        for authorization in [format!("Bearer {token}"), format!("bearer {token}")] {
            let response = send(&server, method, path, Some(&authorization)).await;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED || status.is_server_error() {
                failures.push(format!("{method} {template} with the right token ({authorization:.7}…): {status}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} requests were not refused as they should be:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Nothing was created by any of these requests.
    let db = server.db().await;
    for table in ["integrations", "grants"] {
        let count: i64 = sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(&db).await.unwrap();
        assert_eq!(count, 0, "{table}");
    }
}

#[tokio::test]
async fn open_routes_answer_without_a_token() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"] {
        let response = client.get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let (status, health) = get_json(&client, &format!("{}/readyz", server.url)).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ready")));

    let metrics = client.get(format!("{}/metrics", server.url)).send().await.unwrap();
    assert!(metrics.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    for status in ["pending", "active", "revoking"] {
        let gauge = format!("jit_iam_grants{{status=\"{status}\"}} 0");
        assert!(text.lines().any(|l| l == gauge), "/metrics lacks `{gauge}`:\n{text}");
    }
    assert!(text.contains("# TYPE jit_iam_grants gauge"), "{text}");

    // A wrong token does not close the open routes.
    let response = client.get(format!("{}/healthz", server.url)).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(response.status(), 200);
}

async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
