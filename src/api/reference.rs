//! `/docs`: the API reference, rendered on the server from the OpenAPI
//! document into plain HTML and a stylesheet, both served by jit-iam itself.
//!
//! No script and nothing from another origin: the page is where operators
//! look up the API with tokens at hand, it must not run code jit-iam cannot
//! pin, and it must work in clusters without internet egress. The
//! Content-Security-Policy says so to the browser.

use std::fmt::Write;

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;

/// Only this origin, and from it only the stylesheet: no script, frame, form or plugin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub const STYLESHEET_PATH: &str = "/docs/style.css";

const STYLESHEET: &str = include_str!("reference.css");

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The page's answer: HTML with its security headers.
pub fn page_response(page: Bytes) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
}

pub fn stylesheet_response() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], STYLESHEET)
}

/// The reference page of `doc`: every operation by tag, then every schema.
pub fn page(doc: &Value) -> String {
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} API reference</title>\n<link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\">\n</head>\n<body>\n\
         <header>\n<h1>{title} API reference</h1>\n{description}\
         <p>The OpenAPI document: <a href=\"/openapi.json\">/openapi.json</a> (version {version}).</p>\n</header>\n",
        title = escape(title),
        description = markdown(doc["info"]["description"].as_str().unwrap_or_default()),
        version = escape(doc["info"]["version"].as_str().unwrap_or_default()),
    );
    let operations = operations(doc);
    html.push_str("<nav>\n<h2>Operations</h2>\n");
    for (tag, _) in tags(doc) {
        let _ = write!(html, "<h3><a href=\"#tag-{id}\">{tag}</a></h3>\n<ul>\n", id = anchor(&tag), tag = escape(&tag));
        for op in operations.iter().filter(|op| op.tag == tag) {
            let _ = writeln!(
                html,
                "<li><a href=\"#{id}\"><span class=\"method {method}\">{upper}</span> <code>{path}</code></a></li>",
                id = op.anchor(),
                method = op.method,
                upper = op.method.to_uppercase(),
                path = escape(&op.path),
            );
        }
        html.push_str("</ul>\n");
    }
    html.push_str("<h3><a href=\"#schemas\">Schemas</a></h3>\n</nav>\n<main>\n");
    for (tag, description) in tags(doc) {
        let _ = write!(
            html,
            "<section class=\"tag\" id=\"tag-{id}\">\n<h2>{tag}</h2>\n{description}",
            id = anchor(&tag),
            tag = escape(&tag),
            description = markdown(&description),
        );
        for op in operations.iter().filter(|op| op.tag == tag) {
            operation(&mut html, op);
        }
        html.push_str("</section>\n");
    }
    schemas(&mut html, doc);
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

struct Operation<'a> {
    tag: String,
    method: &'static str,
    path: String,
    item: &'a Value,
    op: &'a Value,
}

impl Operation<'_> {
    fn anchor(&self) -> String {
        match self.op["operationId"].as_str() {
            Some(id) => format!("op-{}", anchor(id)),
            None => format!("op-{}-{}", self.method, anchor(&self.path)),
        }
    }
}

/// The document's tags in its order, then any tag only operations name.
fn tags(doc: &Value) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default().to_string(),
                t["description"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for op in operations(doc) {
        if !tags.iter().any(|(t, _)| *t == op.tag) {
            tags.push((op.tag, String::new()));
        }
    }
    tags
}

fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let op = &item[method];
            if op.is_object() {
                let tag = op["tags"][0].as_str().unwrap_or("other").to_string();
                operations.push(Operation { tag, method, path: path.clone(), item, op });
            }
        }
    }
    operations
}

fn operation(html: &mut String, op: &Operation) {
    let _ = write!(
        html,
        "<article class=\"operation\" id=\"{id}\">\n<h3><span class=\"method {method}\">{upper}</span> <code>{path}</code></h3>\n\
         <p class=\"summary\">{summary}</p>\n{description}",
        id = op.anchor(),
        method = op.method,
        upper = op.method.to_uppercase(),
        path = escape(&op.path),
        summary = inline(op.op["summary"].as_str().unwrap_or_default()),
        description = markdown(op.op["description"].as_str().unwrap_or_default()),
    );
    let open = op.op["security"].as_array().is_some_and(|s| s.is_empty());
    html.push_str(if open {
        "<p class=\"auth\">No token needed.</p>\n"
    } else {
        "<p class=\"auth\">Needs <code>Authorization: Bearer &lt;token&gt;</code>.</p>\n"
    });
    let parameters: Vec<&Value> =
        [&op.item["parameters"], &op.op["parameters"]].into_iter().filter_map(|p| p.as_array()).flatten().collect();
    if !parameters.is_empty() {
        html.push_str(
            "<h4>Parameters</h4>\n<table>\n<tr><th>name</th><th>in</th><th>type</th><th>description</th></tr>\n",
        );
        for parameter in parameters {
            let required = if parameter["required"] == true { " <span class=\"required\">required</span>" } else { "" };
            let _ = writeln!(
                html,
                "<tr><td><code>{name}</code>{required}</td><td>{location}</td><td>{kind}</td><td>{description}</td></tr>",
                name = escape(parameter["name"].as_str().unwrap_or_default()),
                location = escape(parameter["in"].as_str().unwrap_or_default()),
                kind = type_of(&parameter["schema"]),
                description = inline(parameter["description"].as_str().unwrap_or_default()),
            );
        }
        html.push_str("</table>\n");
    }
    if let Some(body) = op.op["requestBody"].as_object() {
        html.push_str("<h4>Request body</h4>\n<ul>\n");
        for (content_type, content) in body.get("content").and_then(Value::as_object).into_iter().flatten() {
            let _ = writeln!(html, "<li><code>{}</code>: {}</li>", escape(content_type), type_of(&content["schema"]));
        }
        html.push_str("</ul>\n");
        if let Some(description) = body.get("description").and_then(Value::as_str) {
            html.push_str(&markdown(description));
        }
    }
    if let Some(responses) = op.op["responses"].as_object() {
        html.push_str("<h4>Responses</h4>\n<table>\n<tr><th>status</th><th>description</th><th>body</th></tr>\n");
        for (status, response) in responses {
            let bodies: Vec<String> = response["content"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(content_type, content)| {
                    format!("<code>{}</code> {}", escape(content_type), type_of(&content["schema"]))
                })
                .collect();
            let _ = writeln!(
                html,
                "<tr><td>{status}</td><td>{description}</td><td>{bodies}</td></tr>",
                status = escape(status),
                description = inline(response["description"].as_str().unwrap_or_default()),
                bodies = bodies.join("<br>"),
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("</article>\n");
}

fn schemas(html: &mut String, doc: &Value) {
    html.push_str("<section id=\"schemas\">\n<h2>Schemas</h2>\n");
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        let _ = write!(
            html,
            "<article class=\"schema\" id=\"schema-{id}\">\n<h3>{name}</h3>\n{description}",
            id = anchor(name),
            name = escape(name),
            description = markdown(schema["description"].as_str().unwrap_or_default()),
        );
        if let Some(properties) = schema["properties"].as_object() {
            let required: Vec<&str> =
                schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            html.push_str("<table>\n<tr><th>field</th><th>type</th><th>description</th></tr>\n");
            for (field, property) in properties {
                let mark =
                    if required.contains(&field.as_str()) { " <span class=\"required\">required</span>" } else { "" };
                let _ = writeln!(
                    html,
                    "<tr><td><code>{field}</code>{mark}</td><td>{kind}</td><td>{description}</td></tr>",
                    field = escape(field),
                    kind = type_of(property),
                    description = inline(property["description"].as_str().unwrap_or_default()),
                );
            }
            html.push_str("</table>\n");
        } else {
            let _ = writeln!(html, "<p>{}</p>", type_of(schema));
        }
        html.push_str("</article>\n");
    }
    html.push_str("</section>\n");
}

/// A schema in a few words: a link to a named schema, `X[]`, `a | b`, an enum's values.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{}\">{}</a>", anchor(name), escape(name));
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(variants) = schema[combinator].as_array() {
            let separator = if combinator == "allOf" { " &amp; " } else { " | " };
            return variants.iter().map(type_of).collect::<Vec<_>>().join(separator);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.as_str().map_or_else(|| v.to_string(), String::from))))
            .collect();
        return format!("one of {}", values.join(", "));
    }
    let kinds: Vec<&str> = match &schema["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if kinds.is_empty() {
        return "any".into();
    }
    kinds
        .iter()
        .map(|kind| match *kind {
            "array" => format!("{}[]", type_of(&schema["items"])),
            kind => match schema["format"].as_str() {
                Some(format) => format!("{kind} ({})", escape(format)),
                None => kind.to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Paragraphs (blank lines) of text with `code` spans; single newlines are spaces.
fn markdown(text: &str) -> String {
    text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).map(|p| format!("<p>{}</p>\n", inline(p))).collect()
}

/// Escapes text, turning `code` spans into `<code>`.
fn inline(text: &str) -> String {
    let mut html = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(html, "<code>{}</code>", escape(part));
        } else {
            html.push_str(&escape(&part.replace('\n', " ")));
        }
    }
    html
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn anchor(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_code_spans_kept() {
        assert_eq!(inline("a `<b>` & \"c\"\nd"), "a <code>&lt;b&gt;</code> &amp; &quot;c&quot; d");
        assert_eq!(markdown("one\ntwo\n\nthree"), "<p>one two</p>\n<p>three</p>\n");
    }

    #[test]
    fn schemas_are_named_briefly() {
        let schema = serde_json::json!({"type": ["array", "null"], "items": {"$ref": "#/components/schemas/Grant"}});
        assert_eq!(type_of(&schema), "<a href=\"#schema-Grant\">Grant</a>[] | null");
        assert_eq!(type_of(&serde_json::json!({"enum": ["a", 1]})), "one of <code>a</code>, <code>1</code>");
    }
}
