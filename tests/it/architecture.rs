//! The layering docs/architecture.md describes, checked on the source: no
//! import cycles between top-level modules, and only the HTTP API knows the
//! HTTP error type (`api::error`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules its files name as `crate::<module>`.
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
            let module =
                relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let uses = graph.entry(module.clone()).or_default();
            uses.extend(modules_named(&text).into_iter().filter(|name| *name != module));
        }
    }
    graph
}

/// The top-level modules a file names: `crate::<module>` anywhere outside
/// comments, and each item of `use crate::{a, b::{c, d}}` groups, however many
/// lines they span.
fn modules_named(text: &str) -> BTreeSet<String> {
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
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
    let text = "use crate::{\n    aws::AwsPool,\n    domain::{grant::Grant, policy},\n    storage,\n};\n// crate::api\nlet x = crate::worker::run;";
    let expected: BTreeSet<String> = ["aws", "domain", "storage", "worker"].map(String::from).into();
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

#[test]
fn only_the_http_api_uses_the_http_error_type() {
    let graph = module_graph();
    for module in ["domain", "storage", "aws", "grants", "worker", "app", "webhooks"] {
        // The HTTP error type lives in `api::error`.
        assert!(!graph[module].contains("api"), "{module} uses crate::api");
    }
}
