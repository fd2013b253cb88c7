//! Security tests: authentication of every route, request size and time
//! limits, secrets kept out of the logs, grants confined to the inventory, and
//! generated policies that never grant a write on `Resource: "*"`; plus API
//! fuzzing from the OpenAPI document with Schemathesis (`scripts/fuzz`).
//!
//! Same harness as `tests/it`: the real binary, a fresh Postgres database, moto.

#[path = "../it/support/mod.rs"]
#[allow(unused_imports)]
mod support;

mod auth;
mod fuzz;
mod limits;
mod logs;
mod policies;
mod scope;

use serde_json::Value;

/// The committed OpenAPI document (the one the server serves, see tests/it/openapi.rs).
pub fn committed_spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("openapi/openapi.json")).unwrap()
}

/// `error.code` of the API's one error shape, if the body has it.
pub fn error_code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// `error.field` of the API's one error shape, if the body has it.
pub fn error_field(body: &Value) -> Option<&str> {
    body["error"]["field"].as_str()
}
