//! Token roles: every `/v1` operation allows exactly the roles of the table in
//! docs/tour.md ("Token roles"), and says so in its OpenAPI description.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{random_account_id, unique, TestServer};

const ROLES: [&str; 3] = ["admin", "portal", "auditor"];

/// `METHOD /path` → the roles ticked in the tour's table.
fn documented_table() -> BTreeMap<String, BTreeSet<String>> {
    let tour = crate::readme_tour::tour();
    let header = "| Operation | admin | portal | auditor |";
    let table = tour.split_once(header).expect("docs/tour.md has the roles table").1;
    let mut rows = BTreeMap::new();
    for line in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let operation = cells[0].trim_matches('`').to_string();
        let roles = ROLES.iter().zip(&cells[1..]).filter(|(_, c)| **c == "✓").map(|(r, _)| r.to_string()).collect();
        rows.insert(operation, roles);
    }
    rows
}

#[tokio::test]
async fn every_operation_allows_exactly_the_roles_of_the_documented_table() {
    let server = TestServer::start().await;
    let table = documented_table();
    let (_, doc) = server.get("/openapi.json").await;
    let mut documented = BTreeSet::new();
    let mut wrong = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap().iter().filter(|(p, _)| p.starts_with("/v1/")) {
        for (method, operation) in item.as_object().unwrap() {
            let key = format!("{} {path}", method.to_uppercase());
            documented.insert(key.clone());
            let Some(allowed) = table.get(&key) else { continue };
            let description = operation["description"].as_str().unwrap_or_default();
            let stated = description.rsplit("Roles: ").next().unwrap_or_default();
            for role in ROLES {
                if stated.contains(role) != allowed.contains(role) {
                    wrong.push(format!("{key}: the OpenAPI description says `Roles: {stated}` ({role})"));
                }
            }
            let concrete = path
                .replace("{id}", &uuid::Uuid::new_v4().to_string())
                .replace("{sync_id}", &uuid::Uuid::new_v4().to_string());
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
            for role in ROLES {
                let (status, answer) = server.call_as(role, method.clone(), &concrete, body.clone()).await;
                let forbidden = status == 403;
                if forbidden != !allowed.contains(role) {
                    wrong.push(format!("{key} as {role}: {status} {answer}"));
                }
                if forbidden {
                    assert_eq!(answer["error"]["code"], "forbidden", "{key} as {role}: {answer}");
                    assert!(answer["error"]["message"].as_str().unwrap().contains("needs admin"), "{answer}");
                }
            }
        }
    }
    let table_keys: BTreeSet<String> = table.keys().cloned().collect();
    assert_eq!(documented, table_keys, "the roles table of docs/tour.md and the OpenAPI operations differ");
    assert!(wrong.is_empty(), "roles not as docs/tour.md says:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn external_ids_are_shown_to_admins_only() {
    let server = TestServer::start().await;
    let account_id = random_account_id();
    let created = server
        .create_integration(json!({
            "name": unique("roles"),
            "connection": "single_account",
            "root_account": {
                "account_id": account_id,
                "access_role_arn": format!("arn:aws:iam::{account_id}:role/jit-iam-access"),
                "external_id": "external-id-roles-123",
                "region": "us-east-1"
            },
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    for role in ROLES {
        let (status, one) = server.call_as(role, Method::GET, &format!("/v1/integrations/{id}"), None).await;
        assert_eq!(status, 200, "{one}");
        let (_, list) = server.call_as(role, Method::GET, "/v1/integrations", None).await;
        let listed: Vec<&Value> = list["items"].as_array().unwrap().iter().collect();
        let shown = role == "admin";
        assert_eq!(one["root_account"].get("external_id").is_some(), shown, "{role}: {one}");
        assert_eq!(listed[0]["root_account"].get("external_id").is_some(), shown, "{role}: {list}");
        assert_eq!(one["root_account"]["access_role_arn"], created["root_account"]["access_role_arn"]);
    }
    let (status, answer) = server.call_as("portal", Method::GET, &format!("/v1/integrations/{id}/setup"), None).await;
    assert_eq!((status.as_u16(), &answer["error"]["code"]), (403, &json!("forbidden")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("portal"), "{answer}");
}
