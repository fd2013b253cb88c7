//! The layering docs/architecture.md describes, checked on the source: no
//! import cycles between top-level modules (`api::views`, the wire shapes the
//! worker sends too, counts as one of its own, below the handlers), only the
//! HTTP API knows the HTTP error type (`api::error`), and the domain is free
//! of HTTP, SQL and schema crates.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module (and `api::views`) -> the modules its files name as `crate::<module>`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let module = if relative.starts_with("api/views") {
                VIEWS.to_string()
            } else {
                relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string()
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let uses = graph.entry(module.clone()).or_default();
            uses.extend(modules_named(&text).into_iter().filter(|name| *name != module));
        }
    }
    graph
}

const VIEWS: &str = "api::views";

/// The top-level modules a file names (`api::views` as one of its own):
/// `crate::<module>` anywhere outside comments, and each item of
/// `use crate::{a, b::{c, d}}` groups, however many lines they span.
fn modules_named(text: &str) -> BTreeSet<String> {
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String {
        if s.starts_with(VIEWS) {
            return VIEWS.to_string();
        }
        s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's top-level items, up to its closing brace.
            let (mut depth, mut item_start) = (0usize, true);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        names.insert(ident(&group[j..]));
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

#[test]
fn imports_are_read_across_lines() {
    let text = "use crate::{\n    aws::AwsPool,\n    domain::{grant::Grant, policy},\n    storage,\n};\n// crate::api\nlet x = crate::worker::run;\nuse crate::api::views::grant::Grant;";
    let expected: BTreeSet<String> = ["aws", "domain", "storage", "worker", VIEWS].map(String::from).into();
    assert_eq!(modules_named(text), expected);
}

#[test]
fn top_level_modules_have_no_import_cycles() {
    let graph = module_graph();
    // Depth-first search for a back edge, reporting the cycle's path.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(start) = path.iter().position(|n| n == node) {
            panic!("import cycle: {} -> {node}", path[start..].join(" -> "));
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
    assert!(graph["grants"].contains("aws") && graph["api"].contains("grants"), "the graph is read: {graph:?}");
}

/// The files under `src/<dir>`, each with its text outside `//` comment lines.
fn sources(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut pending = vec![root.join(dir)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                // Comment lines are emptied, not dropped: line numbers stay right.
                let lines = text.lines().map(|l| if l.trim_start().starts_with("//") { "" } else { l });
                let code = lines.collect::<Vec<_>>().join("\n");
                files.push((path.strip_prefix(&root).unwrap().display().to_string(), code));
            }
        }
    }
    files
}

#[test]
fn only_the_http_api_uses_the_http_error_type() {
    let graph = module_graph();
    for module in ["domain", "storage", "aws", "grants", "worker", "app", "webhooks", VIEWS] {
        // The HTTP error type lives in `api::error`.
        assert!(!graph[module].contains("api"), "{module} uses crate::api");
    }
}

/// Words that mean a file of the domain knows HTTP, SQL or the OpenAPI
/// document: the crates, and the derives and attributes they bring.
const NOT_IN_DOMAIN: &[&str] =
    &["utoipa", "axum", "sqlx", "ToSchema", "IntoParams", "FromRow", "#[schema(", "#[param(", "#[sqlx("];

/// Where `code` names one of `NOT_IN_DOMAIN`, as whole words.
fn foreign_names(code: &str) -> Vec<String> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for name in NOT_IN_DOMAIN {
        for (i, _) in code.match_indices(name) {
            // A word's ends must not run on into a longer identifier (`sqlx_rows`).
            let before = code[..i].chars().next_back().filter(|_| name.starts_with(word));
            let after = code[i + name.len()..].chars().next().filter(|_| name.ends_with(word));
            if !before.is_some_and(word) && !after.is_some_and(word) {
                let line = code[..i].matches('\n').count() + 1;
                found.push(format!("line {line}: {name}"));
            }
        }
    }
    found
}

#[test]
fn foreign_names_are_found_in_uses_derives_and_paths() {
    assert_eq!(foreign_names("use utoipa::ToSchema;"), ["line 1: utoipa", "line 1: ToSchema"]);
    assert_eq!(foreign_names("#[derive(Debug, sqlx::FromRow)]"), ["line 1: sqlx", "line 1: FromRow"]);
    assert_eq!(foreign_names("let r = axum::Json(x);\n#[schema(example = 1)]"), ["line 1: axum", "line 2: #[schema("]);
    assert!(foreign_names("let sqlx_rows = to_schema(); // not a ToSchemaLike").is_empty());
}

#[test]
fn the_domain_uses_neither_utoipa_axum_nor_sqlx() {
    let files = sources("domain");
    assert!(files.len() > 5, "the domain is read: {files:?}");
    for (file, code) in files {
        let found = foreign_names(&code);
        assert!(found.is_empty(), "src/{file} knows HTTP, SQL or the OpenAPI schema: {found:?}");
    }
}
