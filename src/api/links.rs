//! OpenAPI links: from each answer that holds an id to the operations that
//! take it, so that clients and Schemathesis' stateful phase can follow them
//! (every operation with a path parameter is the target of one).

use serde_json::{json, Map, Value};

/// The answers of `from` with these statuses link to each operation of `to`,
/// filling its path parameters from the answer's body as `parameters` says.
struct Links {
    from: &'static str,
    statuses: &'static [&'static str],
    parameters: &'static [(&'static str, &'static str)],
    to: &'static [&'static str],
}

const ID: &[(&str, &str)] = &[("id", "$response.body#/id")];

const LINKS: &[Links] = &[
    Links {
        from: "create_integration",
        statuses: &["201"],
        parameters: ID,
        to: &[
            "get_integration",
            "update_integration",
            "delete_integration",
            "get_integration_setup",
            "check_integration",
            "list_integration_accounts",
            "start_sync",
            "list_syncs",
            "start_reconciliation",
            "list_reconciliations",
        ],
    },
    Links {
        from: "start_sync",
        statuses: &["202"],
        parameters: &[("id", "$response.body#/integration_id"), ("sync_id", "$response.body#/id")],
        to: &["get_sync"],
    },
    Links {
        from: "start_reconciliation",
        statuses: &["202"],
        parameters: &[("id", "$response.body#/integration_id"), ("run_id", "$response.body#/id")],
        to: &["get_reconciliation"],
    },
    Links {
        from: "submit_grant",
        statuses: &["200", "202"],
        parameters: ID,
        to: &["get_grant", "list_grant_events", "extend_grant", "revoke_grant"],
    },
    Links {
        from: "submit_grant",
        statuses: &["200", "202"],
        parameters: &[("id", "$response.body#/resource/id")],
        to: &["get_resource"],
    },
    Links {
        from: "get_grant",
        statuses: &["200"],
        parameters: &[("id", "$response.body#/resource/id")],
        to: &["get_resource"],
    },
    Links {
        from: "create_webhook",
        statuses: &["201"],
        parameters: ID,
        to: &[
            "get_webhook",
            "update_webhook",
            "delete_webhook",
            "rotate_webhook_secret",
            "test_webhook",
            "list_webhook_deliveries",
        ],
    },
    Links {
        from: "test_webhook",
        statuses: &["202"],
        parameters: &[("id", "$response.body#/endpoint_id"), ("delivery_id", "$response.body#/id")],
        to: &["retry_webhook_delivery"],
    },
];

/// Adds the links of `LINKS` to `doc` (a document as JSON), each named after
/// the operation it leads to.
pub fn add(doc: &mut Value) {
    for links in LINKS {
        for to in links.to {
            assert!(find(doc, to).is_some(), "a link leads to {to}, which is no operation");
        }
        let parameters: Map<String, Value> =
            links.parameters.iter().map(|(name, value)| (name.to_string(), json!(value))).collect();
        let operation = find(doc, links.from).unwrap_or_else(|| panic!("links start at {}, no operation", links.from));
        for status in links.statuses {
            let response = operation["responses"]
                .get_mut(*status)
                .and_then(Value::as_object_mut)
                .unwrap_or_else(|| panic!("links start at {} {status}, which it does not answer", links.from));
            let all = response.entry("links").or_insert_with(|| json!({}));
            for to in links.to {
                assert!(all.get(*to).is_none(), "{} {status} links to {to} twice", links.from);
                all[*to] = json!({"operationId": to, "parameters": parameters});
            }
        }
    }
}

fn find<'a>(doc: &'a mut Value, operation_id: &str) -> Option<&'a mut Value> {
    let paths = doc["paths"].as_object_mut()?.values_mut();
    paths
        .flat_map(|item| item.as_object_mut().into_iter().flat_map(|item| item.values_mut()))
        .find(|operation| operation["operationId"] == operation_id)
}
