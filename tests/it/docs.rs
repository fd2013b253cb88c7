//! The documentation holds together without a server: every relative link of
//! README.md and docs/*.md reaches a file (and a heading, for `#anchor`s into
//! Markdown), and what the docs state about the API (how many operations, the
//! statuses of the tour's examples) is what openapi/openapi.json says.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::readme_tour::{tour, tour_steps, Step};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md, with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let mut paths = vec![repository().join("README.md")];
    for entry in std::fs::read_dir(repository().join("docs")).expect("docs/") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            paths.push(path);
        }
    }
    paths.sort();
    paths.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

/// The lines of a Markdown text outside fenced code blocks, numbered from 1.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// The anchors GitHub gives a document's headings: lowercased, punctuation
/// dropped, spaces as hyphens; a repeated one gets `-1`, `-2`, ...
pub(crate) fn anchors(text: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = Vec::new();
    for (_, line) in prose(text) {
        let Some(heading) = line.strip_prefix('#') else { continue };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let count = seen.entry(slug.clone()).or_default();
        anchors.push(if *count == 0 { slug.clone() } else { format!("{slug}-{count}") });
        *count += 1;
    }
    anchors
}

/// The targets of a line's inline links `[text](target)`.
fn link_targets(line: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        // `[text](target "title")`: the target is the first word.
        targets.push(after[..end].split_whitespace().next().unwrap_or_default());
        rest = &after[end..];
    }
    targets
}

#[test]
fn every_relative_link_of_the_docs_reaches_a_file_and_heading() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for (path, text) in documents() {
        let name = path.strip_prefix(repository()).unwrap().display().to_string();
        for (number, line) in prose(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = target.split_once('#').map_or((target, None), |(f, a)| (f, Some(a)));
                let resolved = if file.is_empty() { path.clone() } else { path.parent().unwrap().join(file) };
                if !resolved.exists() {
                    broken.push(format!("{name}:{number}: {target}: no such file"));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                if resolved.extension().is_some_and(|e| e == "md") {
                    let target_text = std::fs::read_to_string(&resolved).unwrap();
                    if !anchors(&target_text).iter().any(|a| a == anchor) {
                        broken.push(format!("{name}:{number}: {target}: no such heading"));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "the links were read: only {checked}");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

fn openapi() -> Value {
    let text = std::fs::read_to_string(repository().join("openapi/openapi.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `(METHOD, /path template)` of every operation of the document.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if matches!(method.as_str(), "get" | "put" | "post" | "patch" | "delete" | "head" | "options") {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

#[test]
fn every_operation_count_the_docs_state_is_the_documents() {
    let all = operations(&openapi());
    let v1 = all.iter().filter(|(_, path)| path.starts_with("/v1/")).count();
    let mut wrong = Vec::new();
    for (path, text) in documents() {
        let name = path.strip_prefix(repository()).unwrap().display().to_string();
        for (number, line) in prose(&text) {
            let words: Vec<&str> = line.split_whitespace().collect();
            for (i, word) in words.iter().enumerate() {
                if word.trim_end_matches(|c: char| !c.is_alphanumeric()) != "operations" {
                    continue;
                }
                // "33 operations", "33 `/v1` operations".
                let (count, expected) = match words[..i] {
                    [.., count, "`/v1`"] => (count, v1),
                    [.., count] => (count, all.len()),
                    [] => continue,
                };
                let Ok(count) = count.trim_start_matches('(').parse::<usize>() else { continue };
                if count != expected {
                    wrong.push(format!("{name}:{number}: says {count}, openapi/openapi.json has {expected}: {line}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "operation counts the docs get wrong:\n{}", wrong.join("\n"));
}

/// The HTTP statuses a tour comment names: three digits, 100 to 599, standing alone.
fn statuses(notes: &str) -> Vec<u16> {
    let chars: Vec<char> = notes.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        // Part of a longer token: `REQ-1042`, `v2`, `1,000`, `2.404` (a comma or dot only between digits).
        let digit = |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(|c| c.is_ascii_digit());
        let glued = |j: Option<usize>, beyond: Option<usize>| {
            j.and_then(|j| chars.get(j)).is_some_and(|c| {
                c.is_alphanumeric() || matches!(c, '_' | '-') || (matches!(c, ',' | '.') && digit(beyond))
            })
        };
        let before = glued(start.checked_sub(1), start.checked_sub(2));
        let after = glued(Some(i), Some(i + 1));
        if i - start == 3 && !before && !after {
            let status: u16 = chars[start..i].iter().collect::<String>().parse().unwrap();
            if (100..600).contains(&status) {
                found.push(status);
            }
        }
    }
    found
}

/// The method and path template of a tour command: `-X`, or POST with a body, else GET.
fn operation_of(command: &str, operations: &[(String, String)]) -> Option<(String, String)> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let method = match words.iter().position(|w| *w == "-X") {
        Some(i) => words[i + 1].to_string(),
        None if words.contains(&"-d") => "POST".to_string(),
        None => "GET".to_string(),
    };
    let url = words.iter().find(|w| w.contains("$JIT"))?;
    let path = url.trim_matches('"').trim_start_matches("$JIT");
    let path = path.split('?').next().unwrap();
    let segments: Vec<&str> = path.split('/').collect();
    operations
        .iter()
        .find(|(m, template)| {
            let parts: Vec<&str> = template.split('/').collect();
            *m == method
                && parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(p, s)| p == s || (p.starts_with('{') && s.starts_with('$')))
        })
        .cloned()
        .or_else(|| Some((method, path.to_string())))
}

#[test]
fn every_status_the_tour_states_is_documented_for_its_operation() {
    let doc = openapi();
    let operations = operations(&doc);
    let mut wrong = Vec::new();
    let mut checked = 0;
    for step in tour_steps(&tour()) {
        let Step::Curl { command, notes, .. } = step else { continue };
        let (method, template) = operation_of(&command, &operations).expect("a tour command names $JIT");
        let Some(responses) = doc["paths"][&template][method.to_lowercase()]["responses"].as_object() else {
            // The document and its browsable page are served, not documented.
            if !matches!(template.as_str(), "/openapi.json" | "/docs") {
                wrong.push(format!("`{command}`: {method} {template} is not in openapi/openapi.json"));
            }
            continue;
        };
        checked += 1;
        for status in statuses(&notes) {
            let range = format!("{}XX", status / 100);
            let documented =
                responses.contains_key(&status.to_string()) || (status >= 400 && responses.contains_key(&range));
            if !documented {
                let listed: Vec<&String> = responses.keys().collect();
                wrong.push(format!("`{command}`: the tour says {status}; {method} {template} answers {listed:?}"));
            }
        }
    }
    assert!(checked > 30, "the tour's commands were read: only {checked}");
    assert!(wrong.is_empty(), "statuses the tour states that the API does not answer:\n{}", wrong.join("\n"));
}

#[test]
fn statuses_are_read_from_comments_as_meant() {
    assert_eq!(statuses(" Submit (202, pending); ?wait=10 holds it (201)."), [202, 201]);
    assert_eq!(statuses("202: the run; 1,000 grants, v2.404, REQ-1042, 503 while down"), [202, 503]);
    assert_eq!(statuses("enable again after 410 or failures"), [410]);
}

#[test]
fn anchors_are_github_slugs() {
    let text = "# A tour with curl\n## Token roles\n```sh\n# not a heading\n```\n## `JIT_IAM` and 3.0: done?\n## Token roles\n";
    assert_eq!(anchors(text), ["a-tour-with-curl", "token-roles", "jit_iam-and-30-done", "token-roles-1"]);
}
