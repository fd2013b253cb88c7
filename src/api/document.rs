//! Rules of the OpenAPI document that no derive can state, so that it says
//! exactly what the server accepts:
//! - request bodies are closed (unknown fields are refused), answers are open
//!   (a field added later does not break strict clients): a schema used on
//!   both sides is written twice, `X` for answers and `XInput` for requests;
//! - "exactly one of" rules are `oneOf`s;
//! - text never holds NUL (Postgres cannot store it): request strings without
//!   a pattern of their own say so.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use utoipa::openapi::OpenApi as OpenApiDoc;

const PREFIX: &str = "#/components/schemas/";
const NO_NUL: &str = "^[^\\u0000]*$";

/// `doc` with the rules applied; `exactly_one_of` lists, per schema, its
/// pairs of fields of which exactly one is given. (The result is JSON:
/// utoipa's types cannot hold every schema it writes.)
pub fn apply_rules(doc: &OpenApiDoc, exactly_one_of: &[(&str, &[[&str; 2]])]) -> Value {
    let mut value = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    for (name, pairs) in exactly_one_of {
        let schema = value["components"]["schemas"].get_mut(*name);
        require_exactly_one_of(schema.unwrap_or_else(|| panic!("no schema {name} in the document")), pairs);
    }
    let requested = split_schemas(&mut value);
    for name in requested {
        forbid_nul(&mut value["components"]["schemas"][name]);
    }
    for item in value["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut()) {
        for operation in item.as_object_mut().into_iter().flat_map(|item| item.values_mut()) {
            for part in ["parameters", "requestBody"] {
                if let Some(part) = operation.get_mut(part) {
                    forbid_nul(part);
                }
            }
        }
    }
    value
}

/// Each pair becomes a `oneOf` of two alternatives: the one field given, not null.
fn require_exactly_one_of(schema: &mut Value, pairs: &[[&str; 2]]) {
    let alternative = |field: &str| {
        let mut property = schema["properties"][field].clone();
        if let Some(types) = property["type"].as_array() {
            let types: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
            property["type"] = if types.len() == 1 { types[0].clone() } else { json!(types) };
        }
        json!({"required": [field], "properties": {field: property}})
    };
    let rules: Vec<Value> = pairs.iter().map(|[a, b]| json!({"oneOf": [alternative(a), alternative(b)]})).collect();
    schema["allOf"] = Value::Array(rules);
}

/// Strings that take any text (no pattern, format or enum) say that NUL is refused.
fn forbid_nul(value: &mut Value) {
    visit_mut(value, &mut |value| {
        let Some(fields) = value.as_object_mut() else { return };
        let is_string = match fields.get("type") {
            Some(Value::String(t)) => t == "string",
            Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
            _ => false,
        };
        if is_string && !["pattern", "format", "enum", "const"].iter().any(|k| fields.contains_key(*k)) {
            fields.insert("pattern".into(), Value::String(NO_NUL.into()));
        }
    });
}

/// Splits shared closed schemas; returns the component schemas requests use.
fn split_schemas(doc: &mut Value) -> Vec<String> {
    let schemas = doc["components"]["schemas"].as_object().cloned().unwrap_or_default();
    let mut request_roots = Vec::new();
    let mut response_roots = Vec::new();
    for item in doc["paths"].as_object().into_iter().flat_map(|paths| paths.values()) {
        for operation in item.as_object().into_iter().flat_map(|item| item.values()) {
            request_roots.push(operation["requestBody"].clone());
            request_roots.push(operation["parameters"].clone());
            response_roots.push(operation["responses"].clone());
        }
    }
    let reach = |roots: &[Value]| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = roots.iter().flat_map(refs).collect();
        while let Some(name) = todo.pop() {
            if seen.insert(name.clone()) {
                todo.extend(schemas.get(&name).map(refs).unwrap_or_default());
            }
        }
        seen
    };
    let requested = reach(&request_roots);
    let answered = reach(&response_roots);

    // Shared schemas that are closed, or hold one that is split, are split.
    let mut split = BTreeSet::new();
    loop {
        let before = split.len();
        for name in requested.intersection(&answered) {
            let schema = &schemas[name];
            if schema["additionalProperties"] == Value::Bool(false) || refs(schema).iter().any(|r| split.contains(r)) {
                split.insert(name.clone());
            }
        }
        if split.len() == before {
            break;
        }
    }

    let components = doc["components"]["schemas"].as_object_mut().expect("the document has schemas");
    for name in &split {
        let mut input = components[name].clone();
        rename_refs(&mut input, &split);
        components.insert(format!("{name}Input"), input);
    }
    for name in &answered {
        if let Some(schema) = components.get_mut(name) {
            open_objects(schema);
        }
    }
    for name in requested.difference(&answered) {
        if let Some(schema) = components.get_mut(name) {
            rename_refs(schema, &split);
        }
    }
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut()) {
        for operation in item.as_object_mut().into_iter().flat_map(|item| item.values_mut()) {
            if let Some(body) = operation.get_mut("requestBody") {
                rename_refs(body, &split);
            }
        }
    }
    let request_only = requested.difference(&answered).cloned();
    request_only.chain(split.iter().map(|name| format!("{name}Input"))).collect()
}

/// The component schemas `value` refers to.
fn refs(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    visit(value, &mut |value| {
        if let Some(name) = value.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(PREFIX)) {
            found.push(name.to_string());
        }
    });
    found
}

fn rename_refs(value: &mut Value, split: &BTreeSet<String>) {
    visit_mut(value, &mut |value| {
        let Some(reference) = value.get_mut("$ref") else { return };
        if let Some(name) = reference.as_str().and_then(|r| r.strip_prefix(PREFIX)).filter(|n| split.contains(*n)) {
            *reference = Value::String(format!("{PREFIX}{name}Input"));
        }
    });
}

/// Drops `additionalProperties: false` wherever it is (maps keep their value type).
fn open_objects(value: &mut Value) {
    visit_mut(value, &mut |value| {
        if let Some(fields) = value.as_object_mut() {
            if fields.get("additionalProperties") == Some(&Value::Bool(false)) {
                fields.remove("additionalProperties");
            }
        }
    });
}

fn visit(value: &Value, f: &mut impl FnMut(&Value)) {
    f(value);
    match value {
        Value::Object(fields) => fields.values().for_each(|v| visit(v, f)),
        Value::Array(items) => items.iter().for_each(|v| visit(v, f)),
        _ => {}
    }
}

fn visit_mut(value: &mut Value, f: &mut impl FnMut(&mut Value)) {
    f(value);
    match value {
        Value::Object(fields) => fields.values_mut().for_each(|v| visit_mut(v, f)),
        Value::Array(items) => items.iter_mut().for_each(|v| visit_mut(v, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_closed_schemas_are_split_and_answers_are_open() {
        let mut doc = serde_json::json!({
            "paths": {"/x": {"post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Create"}}}},
                "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}}
            }}},
            "components": {"schemas": {
                "Create": {"type": "object", "additionalProperties": false, "properties": {
                    "options": {"$ref": "#/components/schemas/Options"}}},
                "Thing": {"type": "object", "additionalProperties": false, "properties": {
                    "options": {"$ref": "#/components/schemas/Options"},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}}}},
                "Options": {"type": "object", "properties": {"pair": {"$ref": "#/components/schemas/Pair"}}},
                "Pair": {"type": "object", "additionalProperties": false, "properties": {"key": {"type": "string"}}}
            }}
        });
        assert_eq!(split_schemas(&mut doc), ["Create", "OptionsInput", "PairInput"]);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Create"]["properties"]["options"]["$ref"], "#/components/schemas/OptionsInput");
        assert_eq!(schemas["OptionsInput"]["properties"]["pair"]["$ref"], "#/components/schemas/PairInput");
        assert_eq!(schemas["PairInput"]["additionalProperties"], false);
        assert_eq!(schemas["Create"]["additionalProperties"], false);
        assert_eq!(schemas["Thing"]["properties"]["options"]["$ref"], "#/components/schemas/Options");
        assert!(schemas["Thing"].get("additionalProperties").is_none());
        assert!(schemas["Pair"].get("additionalProperties").is_none());
        assert_eq!(schemas["Thing"]["properties"]["tags"]["additionalProperties"]["type"], "string");
    }

    #[test]
    fn exactly_one_of_is_a_one_of_of_non_null_fields() {
        let mut schema = json!({"type": "object", "properties": {
            "a": {"type": ["string", "null"], "format": "uuid"}, "b": {"type": ["integer", "null"]}}});
        require_exactly_one_of(&mut schema, &[["a", "b"]]);
        assert_eq!(
            schema["allOf"],
            json!([{"oneOf": [
                {"required": ["a"], "properties": {"a": {"type": "string", "format": "uuid"}}},
                {"required": ["b"], "properties": {"b": {"type": "integer"}}}
            ]}])
        );
    }

    #[test]
    fn free_text_says_nul_is_refused() {
        let mut schema = json!({"properties": {
            "free": {"type": ["string", "null"]}, "id": {"type": "string", "format": "uuid"},
            "code": {"type": "string", "pattern": "^[0-9]{12}$"}, "n": {"type": "integer"}}});
        forbid_nul(&mut schema);
        assert_eq!(schema["properties"]["free"]["pattern"], NO_NUL);
        assert!(["id", "n"].iter().all(|f| schema["properties"][f].get("pattern").is_none()));
        assert_eq!(schema["properties"]["code"]["pattern"], "^[0-9]{12}$");
    }
}
