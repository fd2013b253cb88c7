//! Fuzzing the API from its OpenAPI document with Schemathesis: no 5xx, and
//! every answer's status, content type and body as documented; the stateful
//! phase, following the document's links, reaches every operation with an id
//! that exists, and the grant requests are accepted with the integration,
//! resource and principal the test made (`schemathesis.toml`).
//!
//! `JIT_IAM_FUZZ_EXAMPLES` (default 5) sets the examples per operation;
//! `scripts/fuzz` raises it. `JIT_IAM_FUZZ_SEED` replays a run.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{random_account_id, unique, Moto, TestServer};

/// Every check Schemathesis has, positive data acceptance and negative data rejection included.
const CHECKS: &str = "all";

/// Examples of each grant request in the fuzzing phase, at least: few of the
/// bodies Schemathesis generates for them are valid (one of `resource_id` and
/// `resource_arn`, a lifetime within the rules), and one must be accepted.
const GRANT_REQUEST_EXAMPLES: u64 = 50;

fn schemathesis() -> PathBuf {
    let path = std::env::var("JIT_IAM_TEST_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/schemathesis"));
    assert!(
        path.exists(),
        "schemathesis not found at {}: run scripts/test, which installs it into .venv",
        path.display()
    );
    path
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Status codes of the answers the server logged (tower-http's "finished processing request").
fn logged_statuses(server: &TestServer) -> Vec<(u16, String)> {
    server
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["message"] == "finished processing request")
        .filter_map(|event| {
            let status = event["status"].as_u64()? as u16;
            let span = &event["span"];
            Some((
                status,
                format!("{} {}", span["method"].as_str().unwrap_or("?"), span["path"].as_str().unwrap_or("?")),
            ))
        })
        .collect()
}

#[tokio::test]
async fn fuzzing_from_the_openapi_document_finds_no_server_error_nor_undocumented_answer() {
    let examples = env_number("JIT_IAM_FUZZ_EXAMPLES", 5);
    let moto = Moto::shared();
    // The service's own identity is a real IAM user (moto's default caller is
    // no IAM ARN), so that the setup documents can be made.
    let home = moto.account(&random_account_id()).await;
    home.create_user("jit-iam-service", &[]).await;
    let key = home.iam.create_access_key().user_name("jit-iam-service").send().await.unwrap().access_key.unwrap();
    let account = moto.account(&random_account_id()).await;
    // Whom the grant requests name (`schemathesis.toml`).
    for user in ["alice", "bob", "carol", "dave", "erin"] {
        account.create_user(user, &[]).await;
    }
    account.create_role("deployer", &[("env", "prod")]).await;
    account.create_bucket(&unique("fuzz"), &[("env", "prod")]).await;
    let server = TestServer::builder(moto)
        .env("AWS_ACCESS_KEY_ID", &key.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &key.secret_access_key)
        // Whether a webhook host's addresses are public is no property of the
        // URL's text, which is all the document can describe (`it webhooks`
        // tests the address rules).
        .env("JIT_IAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
        .start()
        .await;

    // Something to find: an integration, its inventory and a grant.
    let integration = server.connect(&account, &unique("fuzz")).await;
    let role = server.browse_all(&format!("integration_id={integration}&type=iam_role")).await.remove(0);
    let (status, grant) = server
        .post(
            "/v1/grants?wait=20",
            json!({
                "integration_id": integration, "resource_id": role["id"], "access_level": "assume",
                "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": 3600,
                "request_id": unique("req"), "approved_by": "approver@example.com"
            }),
        )
        .await;
    assert_eq!(status, 202, "{grant}");
    let before = logged_statuses(&server).len();

    let reports = std::env::temp_dir().join(unique("jit-iam-schemathesis"));
    // The committed settings, with the dictionaries of what the grant
    // requests name, and enough examples of them that some are accepted
    // (`schemathesis.toml` says why).
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/security/schemathesis.toml");
    let mut settings = std::fs::read_to_string(&committed).unwrap();
    settings.push_str(&format!(
        "\n[[operations]]\ninclude-operation-id = [\"submit_grant\", \"preview_grant\"]\n\
         phases.fuzzing.generation.max-examples = {}\n",
        examples.max(GRANT_REQUEST_EXAMPLES)
    ));
    let expiry = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (name, value) in [
        ("integrations", json!(integration)),
        ("resource-ids", role["id"].clone()),
        ("resource-arns", role["arn"].clone()),
        ("expiries", json!(expiry)),
    ] {
        settings.push_str(&format!("\n[dictionaries.{name}]\nvalues = [{value}]\n"));
    }
    std::fs::create_dir_all(&reports).unwrap();
    let config = reports.join("schemathesis.toml");
    std::fs::write(&config, settings).unwrap();
    let (output, report, elapsed) =
        run_schemathesis(&server, &config, &reports.join("report"), "examples,coverage,fuzzing,stateful", examples)
            .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    let statuses = logged_statuses(&server);
    let answered = &statuses[before.min(statuses.len())..];
    let server_errors: Vec<&(u16, String)> = answered.iter().filter(|(s, _)| *s >= 500).collect();
    let cases = report["test_cases"]["generated"].as_u64().unwrap_or(0);
    // Operations that answered only 404 in every phase: for one with a path
    // parameter, no link led the stateful phase to an id that exists; for
    // the grant requests, the ids `schemathesis.toml` gives did not arrive.
    let mut missing_test_data: Vec<String> = report["warnings"]["missing_test_data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|label| label.as_str().map(str::to_string))
        .collect();
    // The answers to the grant requests: some accepted, with the ids
    // `schemathesis.toml` gives.
    let grant_requests = |path: &str| {
        let mut by_status = std::collections::BTreeMap::new();
        for (status, _) in answered.iter().filter(|(_, at)| at == &format!("POST {path}")) {
            *by_status.entry(*status).or_insert(0) += 1;
        }
        let accepted: u32 = by_status.iter().filter(|(status, _)| (200..300).contains(*status)).map(|(_, n)| n).sum();
        (accepted, by_status)
    };
    let ((submitted, submissions), (previewed, previews)) =
        (grant_requests("/v1/grants"), grant_requests("/v1/grants/preview"));
    let stateful = report["phases"]["stateful"]["status"].as_str().unwrap_or("?");
    println!(
        "schemathesis {}: {examples} examples per operation, {cases} test cases, {} failing, {} unique failures; \
         stateful phase: {stateful}; the server answered {} requests, {} of them 5xx; {:.1?} (seed {})",
        report["schemathesis_version"].as_str().unwrap_or("?"),
        report["test_cases"]["with_failures"],
        report["test_cases"]["unique_failures"],
        answered.len(),
        server_errors.len(),
        elapsed,
        stdout.lines().find_map(|l| l.trim().strip_prefix("Seed: ")).unwrap_or("?"),
    );
    let mut by_status = std::collections::BTreeMap::new();
    for (status, _) in answered {
        *by_status.entry(*status).or_insert(0) += 1;
    }
    println!("answers by status: {by_status:?}");
    println!("grant requests by status: submit_grant {submissions:?}, preview_grant {previews:?}");
    println!("answered only 404 (missing test data): {missing_test_data:?}");
    // How often each operation with a path parameter was served (the margin
    // of the check above): the fewest first.
    let mut served: Vec<(usize, String)> = crate::committed_spec()["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.contains('{'))
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| (path, method.to_uppercase())))
        .map(|(path, method)| {
            let label = format!("{method} {path}");
            let n =
                answered.iter().filter(|(status, at)| (200..300).contains(status) && is_operation(at, &label)).count();
            (n, label)
        })
        .collect();
    served.sort();
    println!("2xx answers of the operations with a path parameter, fewest first: {:?}", &served[..5.min(served.len())]);
    let links = stdout.lines().find_map(|l| l.trim().strip_prefix("API Links:")).unwrap_or(" ?").trim();
    let scenarios = stdout.lines().find_map(|l| l.trim().strip_prefix("Scenarios:")).unwrap_or(" ?").trim();
    println!("links the stateful phase followed: {links}, in {scenarios} scenarios");

    // The stateful phase reaches the three-step chain (webhook, test
    // delivery, retry) in most runs, not all: an operation it missed gets one
    // more stateful run, and fails the test only if that misses it too.
    if !missing_test_data.is_empty() {
        let from = logged_statuses(&server).len();
        let (again, _, took) = run_schemathesis(&server, &config, &reports.join("again"), "stateful", examples).await;
        let statuses = logged_statuses(&server);
        let errors: Vec<_> = statuses[from..].iter().filter(|(status, _)| *status >= 500).collect();
        assert!(errors.is_empty(), "the second stateful run met server errors: {errors:?}\n{}", server.problems());
        missing_test_data.retain(|label| {
            !statuses[from..].iter().any(|(status, at)| (200..300).contains(status) && is_operation(at, label))
        });
        println!(
            "a second stateful run ({took:.1?}, exit {:?}) left unreached: {missing_test_data:?}",
            again.status.code()
        );
    }
    let _ = std::fs::remove_dir_all(&reports);

    let failed = !output.status.success()
        || report.is_null()
        || cases == 0
        || report["failures"].as_array().is_none_or(|f| !f.is_empty())
        || report["errors"].as_array().is_none_or(|e| !e.is_empty())
        || !server_errors.is_empty()
        || stateful != "success"
        || !missing_test_data.is_empty()
        || submitted == 0
        || previewed == 0;
    if failed {
        panic!(
            "schemathesis failed (exit {:?}; 5xx answers: {server_errors:?}; stateful phase: {stateful}; \
             answered only 404 (link the operation in src/api/links.rs, or give the ids in \
             tests/security/schemathesis.toml): {missing_test_data:?}; grant requests accepted: \
             {submitted} submitted, {previewed} previewed; \
             server problems:\n{})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            output.status.code(),
            server.problems(),
        );
    }
    // Every operation of the document was exercised.
    let operations = &report["operations"];
    assert_eq!(operations["tested"], operations["total"], "{operations}");
}

/// Every leaf of `value` with its path as the API names fields (`a.b[0].c`).
/// One Schemathesis run of `phases` against the service: its output, its JSON
/// report (Null when it wrote none) and how long it ran.
async fn run_schemathesis(
    server: &TestServer,
    config: &Path,
    report_dir: &Path,
    phases: &str,
    examples: u64,
) -> (std::process::Output, Value, Duration) {
    let mut command = tokio::process::Command::new(schemathesis());
    command
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(format!("{}/openapi.json", server.url))
        .args(["--header", &format!("Authorization: Bearer {}", server.token)])
        .args(["--checks", CHECKS])
        .args(["--phases", phases])
        .args(["--max-examples", &examples.to_string()])
        // One worker: Python 3.11's `ast` module keeps its recursion depth in shared
        // state, and Hypothesis parsing sources from two threads at once can trip it
        // ("AST constructor recursion depth mismatch").
        .args(["--workers", "1"])
        .args(["--generation-database", "none"])
        .args(["--report", "json", "--report-dir"])
        .arg(report_dir)
        .arg("--no-color")
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Ok(seed) = std::env::var("JIT_IAM_FUZZ_SEED") {
        command.args(["--seed", &seed]);
    }
    let limit = Duration::from_secs(240 + examples * 4);
    let started = Instant::now();
    let output = tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran longer than {limit:?}"))
        .expect("run schemathesis");
    let elapsed = started.elapsed();
    let report: Value = std::fs::read_dir(report_dir)
        .ok()
        .and_then(|mut entries| {
            entries.find_map(|e| e.ok().filter(|e| e.path().extension().is_some_and(|x| x == "json")))
        })
        .and_then(|entry| serde_json::from_str(&std::fs::read_to_string(entry.path()).ok()?).ok())
        .unwrap_or(Value::Null);
    (output, report, elapsed)
}

/// Whether `at` ("METHOD /path") is a request to the operation `label`
/// ("METHOD /template/{id}").
fn is_operation(at: &str, label: &str) -> bool {
    let (method, path) = label.split_once(' ').unwrap_or(("", label));
    let template: Vec<&str> = path.split('/').collect();
    let (m, p) = at.split_once(' ').unwrap_or(("", at));
    let p: Vec<&str> = p.split('/').collect();
    m == method && p.len() == template.len() && p.iter().zip(&template).all(|(s, t)| t.starts_with('{') || s == t)
}

fn leaves(value: &Value, path: String, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, item) in fields {
                leaves(item, if path.is_empty() { key.clone() } else { format!("{path}.{key}") }, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                leaves(item, format!("{path}[{i}]"), out);
            }
        }
        _ => out.push(path),
    }
}

/// `value` with the leaf at `path` replaced.
fn replaced(value: &Value, path: &str, with: Value) -> Value {
    let pointer = format!("/{}", path.replace('.', "/").replace('[', "/").replace(']', ""));
    let mut value = value.clone();
    *value.pointer_mut(&pointer).unwrap() = with;
    value
}

/// Values Postgres or chrono cannot hold (NUL in text, numbers past any
/// duration), put in every field of valid bodies and in every query
/// parameter: each is refused with a 4xx naming the field, never a 5xx.
#[tokio::test]
async fn nul_characters_and_huge_numbers_are_refused_naming_the_field() {
    let moto = Moto::shared();
    let account = moto.account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    account.create_role("deployer", &[]).await;
    let server = TestServer::start().await;
    let integration = server.connect(&account, &unique("hostile")).await;
    let role = server.browse_all(&format!("integration_id={integration}&type=iam_role")).await.remove(0);
    let grant_body = json!({
        "integration_id": integration, "resource_id": role["id"], "access_level": "assume",
        "principal": {"type": "iam_user", "name": "alice"}, "duration_seconds": 3600,
        "request_id": unique("req"), "approved_by": "approver@example.com", "reason": "incident 42"
    });
    let (status, grant) = server.post("/v1/grants?wait=20", grant_body.clone()).await;
    assert_eq!(status, 202, "{grant}");
    let grant = grant["id"].as_str().unwrap();

    let bodies = [
        (
            "/v1/integrations".to_string(),
            reqwest::Method::POST,
            json!({
                "name": unique("hostile"), "connection": "single_account",
                "root_account": {
                    "account_id": random_account_id(), "access_role_arn": "arn:aws:iam::123456789012:role/r",
                    "external_id": "external-id-123", "region": "us-east-1"
                },
                "options": {"tags": [{"key": "env", "value": "prod"}], "regions": ["us-east-1"], "member_role_name": "m"}
            }),
        ),
        (
            format!("/v1/integrations/{integration}"),
            reqwest::Method::PATCH,
            json!({
                "name": "renamed", "options": {"tags": [{"key": "env", "value": "prod"}]}
            }),
        ),
        ("/v1/grants/preview".to_string(), reqwest::Method::POST, grant_body.clone()),
        ("/v1/grants".to_string(), reqwest::Method::POST, replaced(&grant_body, "request_id", json!(unique("req")))),
        (format!("/v1/grants/{grant}/extend"), reqwest::Method::POST, json!({"duration_seconds": 60})),
    ];
    let hostile = [json!("a\u{0}b"), json!(i64::MAX), json!(u64::MAX), json!(-i64::MAX), json!(1e300)];
    let mut wrong = Vec::new();
    let mut tried = 0;
    for (path, method, body) in &bodies {
        let mut fields = Vec::new();
        leaves(body, String::new(), &mut fields);
        for field in &fields {
            for value in &hostile {
                tried += 1;
                let sent = replaced(body, field, value.clone());
                let (status, answer) = server.call(method.clone(), path, Some(sent)).await;
                let named = answer["error"]["field"].as_str() == Some(field.as_str());
                if !status.is_client_error() || !named {
                    wrong.push(format!("{method} {path} with {field} = {value}: {status} {answer}"));
                }
            }
        }
    }
    // Query parameters of every documented operation, and a path id.
    let spec = crate::committed_spec();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", grant).replace("{sync_id}", grant);
        for (method, operation) in item.as_object().unwrap() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let params = operation["parameters"].as_array().cloned().unwrap_or_default();
            for name in params.iter().filter(|p| p["in"] == "query").filter_map(|p| p["name"].as_str()) {
                for (value, must_refuse) in [("a%00b", true), ("99999999999999999999", false)] {
                    tried += 1;
                    let url = format!("{concrete}?{name}={value}");
                    let body = (method == reqwest::Method::POST).then(|| grant_body.clone());
                    let (status, answer) = server.call(method.clone(), &url, body).await;
                    let refused = status == 400 && answer["error"]["field"] == name;
                    if status.is_server_error() || (must_refuse && !refused) {
                        wrong.push(format!("{method} {url}: {status} {answer}"));
                    }
                }
            }
        }
    }
    let (status, answer) = server.get("/v1/grants/%00").await;
    assert_eq!((status.as_u16(), answer["error"]["field"].as_str()), (400, Some("id")), "{answer}");
    println!("{tried} hostile values sent, {} answered wrongly", wrong.len());
    assert!(wrong.is_empty(), "hostile values not refused naming their field:\n{}", wrong.join("\n"));
}
