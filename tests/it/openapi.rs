//! The committed OpenAPI document is the one the code generates.

use serde_json::Value;

use crate::support::TestServer;

fn committed() -> Value {
    read("openapi/openapi.json")
}

fn read(path: &str) -> Value {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(full).expect(path)).unwrap()
}

#[test]
fn committed_document_matches_the_code() {
    let generated: Value = jit_iam::api::openapi();
    assert!(
        generated == committed(),
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn committed_3_0_rendition_matches_the_code() {
    let generated = jit_iam::api::openapi30::from_3_1(&jit_iam::api::openapi());
    assert!(
        generated == read("openapi/openapi-3.0.json"),
        "openapi/openapi-3.0.json is stale: regenerate it with \
         `cargo run -- openapi --openapi-version 3.0 > openapi/openapi-3.0.json`"
    );
}

#[tokio::test]
async fn served_document_is_the_committed_one_and_docs_are_open() {
    let server = TestServer::start().await;
    let served: Value = reqwest::get(format!("{}/openapi.json", server.url)).await.unwrap().json().await.unwrap();
    assert_eq!(served, committed());
    let docs = reqwest::get(format!("{}/docs", server.url)).await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let policy = docs.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.starts_with("default-src 'none'; style-src 'self';"), "{policy}");
    assert!(!policy.contains("http") && !policy.contains("unsafe"), "{policy}");
    let page = docs.text().await.unwrap();
    assert!(page.contains("Just-in-time access for AWS IAM"));
    // Every operation is on the page.
    for item in served["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(page.contains(&format!("id=\"op-{id}\"")), "{id} is missing from /docs");
        }
    }
    // Nothing from anywhere else: no script, and every reference is to this origin.
    assert!(!page.contains("<script"), "{page}");
    let references: Vec<&str> = ["src=\"", "href=\"", "url(", "@import"]
        .iter()
        .flat_map(|attribute| page.match_indices(attribute).map(|(i, _)| &page[i + attribute.len()..]))
        .map(|rest| rest.split(['"', ')']).next().unwrap())
        .collect();
    assert!(references.len() > 100, "{references:?}");
    let external: Vec<&&str> =
        references.iter().filter(|r| !(r.starts_with('/') || r.starts_with('#')) || r.starts_with("//")).collect();
    assert!(external.is_empty(), "/docs references other origins: {external:?}");
    let style = reqwest::get(format!("{}/docs/style.css", server.url)).await.unwrap();
    assert_eq!(style.headers()["content-type"], "text/css; charset=utf-8");
    let style = style.text().await.unwrap();
    assert!(style.contains(".operation") && !style.contains("url(") && !style.contains("@import"), "{style}");
}

#[test]
fn every_v1_operation_documents_errors_and_the_token() {
    let doc = committed();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            if path.starts_with("/v1/") {
                assert!(responses.contains_key("4XX"), "{method} {path} lacks the 4XX error schema");
                assert!(responses.contains_key("5XX"), "{method} {path} lacks the 5XX error schema");
                assert_eq!(operation["security"][0]["bearer"], serde_json::json!([]), "{method} {path}");
            } else if path == "/metrics" {
                // Open unless JIT_IAM_METRICS_TOKEN is set.
                assert_eq!(operation["security"], serde_json::json!([{}, {"bearer": []}]), "{method} {path}");
            } else {
                assert_eq!(operation["security"], serde_json::json!([]), "{method} {path} is open");
            }
            for (status, response) in responses {
                assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{method} {path} {status}");
            }
        }
    }
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert!(doc["servers"][0]["url"].is_string());
}

/// Generated clients name their methods after the operationIds: a renamed
/// one renames a method in every client built from the document.
#[test]
fn operation_ids_are_the_committed_ones() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/operation-ids.txt");
    let listed = std::fs::read_to_string(path).expect("openapi/operation-ids.txt");
    let doc = committed();
    let mut served = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            served.push(format!("{id} {} {path}", method.to_uppercase()));
        }
    }
    served.sort();
    let listed: Vec<String> = listed.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    assert!(
        served == listed,
        "the operationIds changed: every generated client would rename or lose these methods.\n\
         Keep the old ids (`operation_id = ...` on the route), or, for a deliberate breaking change, \
         update openapi/operation-ids.txt and say so in the release notes.\n\
         served:\n{}\nlisted:\n{}",
        served.join("\n"),
        listed.join("\n")
    );
}

/// Each operation that takes an id in its path is the target of a link from an
/// answer holding that id (src/api/links.rs), so that Schemathesis' stateful
/// phase and clients reach it: a new route without one fails here.
#[test]
fn every_operation_with_a_path_parameter_is_linked_to() {
    for doc in [committed(), read("openapi/openapi-3.0.json")] {
        let mut path_parameters = std::collections::BTreeMap::new();
        let mut links = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                let id = operation["operationId"].as_str().unwrap().to_string();
                let params = operation["parameters"].as_array().cloned().unwrap_or_default();
                let in_path: Vec<String> =
                    params.iter().filter(|p| p["in"] == "path").map(|p| p["name"].as_str().unwrap().into()).collect();
                path_parameters.insert(id.clone(), in_path);
                for (status, response) in operation["responses"].as_object().unwrap() {
                    for (name, link) in response["links"].as_object().into_iter().flatten() {
                        links.push((format!("{id} {status} {name}"), link.clone()));
                    }
                }
            }
        }
        for (from, link) in &links {
            let to = link["operationId"].as_str().unwrap_or_else(|| panic!("{from} names no operationId"));
            let expected = path_parameters.get(to).unwrap_or_else(|| panic!("{from} leads to no operation"));
            let mut given: Vec<String> = link["parameters"].as_object().unwrap().keys().cloned().collect();
            let mut expected = expected.clone();
            given.sort();
            expected.sort();
            assert_eq!(given, expected, "{from}: the link fills the path parameters of {to}");
        }
        let linked: std::collections::BTreeSet<&str> =
            links.iter().map(|(_, link)| link["operationId"].as_str().unwrap()).collect();
        let unlinked: Vec<&String> = path_parameters
            .iter()
            .filter(|(id, ps)| !ps.is_empty() && !linked.contains(id.as_str()))
            .map(|(id, _)| id)
            .collect();
        assert!(unlinked.is_empty(), "no link leads to {unlinked:?}: add one in src/api/links.rs");
    }
}
