//! The OpenAPI 3.0 rendition of the 3.1 document, for generators that read
//! only 3.0 (progenitor, older openapi-generator releases). It says the same
//! in 3.0's words; only `propertyNames` (map keys are strings anyway) has no
//! 3.0 form and is left out.

use serde_json::{json, Map, Value};

/// `doc` (OpenAPI 3.1, as `api::openapi` makes it) as OpenAPI 3.0.3.
pub fn from_3_1(doc: &Value) -> Value {
    let mut doc = doc.clone();
    doc["openapi"] = json!("3.0.3");
    // `license.identifier` is 3.1's.
    if let Some(license) = doc.pointer_mut("/info/license").and_then(Value::as_object_mut) {
        license.remove("identifier");
    }
    for part in ["paths", "components"] {
        if let Some(part) = doc.get_mut(part) {
            rewrite(part);
        }
    }
    doc
}

/// Rewrites every schema below `value`, innermost first.
fn rewrite(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            // Examples are values, not schemas.
            fields.iter_mut().filter(|(key, _)| *key != "example" && *key != "examples").for_each(|(_, v)| rewrite(v));
            rewrite_schema(fields);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite),
        _ => {}
    }
}

fn rewrite_schema(fields: &mut Map<String, Value>) {
    fields.remove("propertyNames");
    // `type: [T, "null"]` is `type: T, nullable: true`.
    if let Some(Value::Array(types)) = fields.get("type") {
        let mut types: Vec<Value> = types.clone();
        let nullable = types.iter().any(|t| t == "null");
        types.retain(|t| t != "null");
        if nullable {
            fields.insert("nullable".into(), json!(true));
        }
        match types.as_slice() {
            [one] => fields.insert("type".into(), one.clone()),
            _ => fields.insert("type".into(), Value::Array(types)),
        };
    }
    // `oneOf: [{type: null}, X]` is X, nullable.
    if let Some(Value::Array(alternatives)) = fields.get("oneOf") {
        let is_null = |v: &Value| v.get("type") == Some(&json!("null"));
        if alternatives.len() == 2 && alternatives.iter().any(is_null) {
            let other = alternatives.iter().find(|v| !is_null(v)).cloned().unwrap_or_default();
            fields.remove("oneOf");
            fields.insert("nullable".into(), json!(true));
            match other {
                Value::Object(other) if other.contains_key("$ref") => {
                    fields.insert("allOf".into(), json!([{"$ref": other["$ref"]}]));
                    for (key, value) in other.into_iter().filter(|(key, _)| key != "$ref") {
                        fields.entry(key).or_insert(value);
                    }
                }
                Value::Object(other) => {
                    for (key, value) in other {
                        fields.entry(key).or_insert(value);
                    }
                }
                _ => {}
            }
        }
    }
    // A 3.0 reference has no siblings: they would be ignored.
    if fields.len() > 1 {
        if let Some(reference) = fields.remove("$ref") {
            fields.insert("allOf".into(), json!([{"$ref": reference}]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullables_references_and_versions_in_3_0_words() {
        let doc = json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1", "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
            "components": {"schemas": {"S": {"type": "object", "properties": {
                "a": {"type": ["string", "null"], "format": "uuid"},
                "b": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/T", "description": "d"}]},
                "c": {"$ref": "#/components/schemas/T", "description": "d"},
                "d": {"$ref": "#/components/schemas/T"},
                "e": {"type": "object", "additionalProperties": {"type": "string"}, "propertyNames": {"type": "string"}}
            }}}}
        });
        let converted = from_3_1(&doc);
        assert_eq!(converted["openapi"], "3.0.3");
        assert!(converted["info"]["license"].get("identifier").is_none());
        let properties = &converted["components"]["schemas"]["S"]["properties"];
        assert_eq!(properties["a"], json!({"type": "string", "format": "uuid", "nullable": true}));
        assert_eq!(
            properties["b"],
            json!({"allOf": [{"$ref": "#/components/schemas/T"}], "nullable": true, "description": "d"})
        );
        assert_eq!(properties["c"], json!({"allOf": [{"$ref": "#/components/schemas/T"}], "description": "d"}));
        assert_eq!(properties["d"], json!({"$ref": "#/components/schemas/T"}));
        assert_eq!(properties["e"], json!({"type": "object", "additionalProperties": {"type": "string"}}));
    }
}
