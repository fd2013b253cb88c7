//! The deployment, checked offline: both Kustomize overlays render, every
//! object validates against the Kubernetes schemas, checkov passes the
//! manifests and the Dockerfile, hadolint passes the Dockerfile, and the alert
//! rules pass promtool's check and unit tests and name only metrics jit-iam
//! exposes. The tools come from `.venv` (kubernetes-validate, hadolint),
//! `.venv-checkov` and PATH (kubectl, promtool); `scripts/test` installs them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::docs::anchors;
use crate::support::{unique, TestServer};

const OVERLAYS: [&str; 2] = ["irsa", "pod-identity"];
/// The oldest Kubernetes the manifests support (the preStop `sleep` action is
/// on by default from 1.30) and the newest kubernetes-validate has schemas for.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];
const RULES: &str = "deploy/prometheus/jit-iam-rules.yml";
const RULES_TESTS: &str = "deploy/prometheus/jit-iam-rules.test.yml";
/// Series of other exporters the rules may use.
const FOREIGN_METRICS: [&str; 2] = ["up", "kube_deployment_status_replicas_available"];

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A tool of the test suite: a path under the repository, or a name on PATH.
fn tool(path: &str) -> Command {
    let local = repository().join(path);
    let program = if path.contains('/') { local } else { PathBuf::from(path) };
    let mut command = Command::new(&program);
    command.current_dir(repository());
    command
}

/// Runs `command`; its stdout if it succeeded, else the test fails with its output.
fn run(mut command: Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {what} ({:?}: {e}); scripts/test installs the deployment checks' tools",
            command.get_program()
        )
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what} failed ({}):\n{stdout}\n{stderr}", output.status);
    stdout
}

fn render(overlay: &str) -> String {
    let mut kustomize = tool("kubectl");
    kustomize.args(["kustomize", &format!("deploy/kubernetes/overlays/{overlay}")]);
    run(kustomize, &format!("kubectl kustomize of the {overlay} overlay"))
}

/// Both overlays rendered into a fresh directory, one file each.
fn rendered() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("jit-iam-manifests"));
    std::fs::create_dir_all(&dir).unwrap();
    for overlay in OVERLAYS {
        std::fs::write(dir.join(format!("{overlay}.yaml")), render(overlay)).unwrap();
    }
    dir
}

#[test]
fn both_overlays_render_and_every_object_validates() {
    let dir = rendered();
    let files: Vec<PathBuf> = OVERLAYS.iter().map(|o| dir.join(format!("{o}.yaml"))).collect();
    for version in KUBERNETES_VERSIONS {
        let mut validate = tool(".venv/bin/kubernetes-validate");
        validate.args(["--strict", "--kubernetes-version", version]).args(&files);
        let report = run(validate, &format!("kubernetes-validate against Kubernetes {version}"));
        // Every object of both overlays was checked, none skipped for want of a schema.
        for overlay in OVERLAYS {
            let passed = report.lines().filter(|l| l.contains(&format!("{overlay}.yaml passed"))).count();
            assert_eq!(passed, 7, "{overlay} against {version}:\n{report}");
        }
    }

    let irsa = std::fs::read_to_string(&files[0]).unwrap();
    let pod_identity = std::fs::read_to_string(&files[1]).unwrap();
    // The one role ARN of the overlay reaches the ServiceAccount (IRSA) and the setup documents' principal.
    assert!(irsa.contains("eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/jit-iam"), "{irsa}");
    assert!(!pod_identity.contains("eks.amazonaws.com/role-arn"), "{pod_identity}");
    for manifest in [&irsa, &pod_identity] {
        assert!(manifest.contains("JIT_IAM_SERVICE_PRINCIPAL_ARN: arn:aws:iam::111122223333:role/jit-iam"));
        assert!(manifest.contains("image: ghcr.io/example/jit-iam:0.1.0"));
        // Secrets are referenced, never written.
        assert!(!manifest.contains("kind: Secret"), "{manifest}");
        // database-owner-url, database-url, api-tokens, and the optional metrics-token.
        assert_eq!(manifest.matches("secretKeyRef:").count(), 4);
        assert!(
            manifest.contains("key: metrics-token\n              name: jit-iam\n              optional: true"),
            "{manifest}"
        );
    }
    assert!(pod_identity.contains("cidr: 169.254.170.23/32"), "the Pod Identity Agent is reachable");
    std::fs::remove_dir_all(dir).unwrap();
}

/// checkov over both rendered overlays and the Dockerfile, at once (it takes a
/// few seconds to start). Its skips are annotations of the objects
/// (`checkov.io/skip…`) and `#checkov:skip` comments, each with its reason.
#[test]
fn checkov_passes_the_manifests_and_the_dockerfile() {
    let dir = rendered();
    std::fs::copy(repository().join("Dockerfile"), dir.join("Dockerfile")).unwrap();
    let mut checkov = tool(".venv-checkov/bin/checkov");
    checkov
        .args(["--directory"])
        .arg(&dir)
        .args(["--framework", "kubernetes", "dockerfile", "--compact", "--skip-download", "--output", "json"])
        // Offline: no policy download from Prisma Cloud, no check for a newer checkov.
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CKV_SKIP_PACKAGE_UPDATE_CHECK", "TRUE");
    let output = checkov.output().expect("run checkov (scripts/test installs it into .venv-checkov)");
    let report = String::from_utf8_lossy(&output.stdout);
    let reports: Vec<serde_json::Value> = match serde_json::from_str(&report) {
        Ok(serde_json::Value::Array(reports)) => reports,
        Ok(report) => vec![report],
        Err(e) => panic!("checkov's report is not JSON ({e}):\n{report}\n{}", String::from_utf8_lossy(&output.stderr)),
    };
    let mut summary = BTreeMap::new();
    for report in &reports {
        let failed: Vec<String> = report["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("{} {} ({}, {})", c["check_id"], c["check_name"], c["resource"], c["file_path"]))
            .collect();
        assert!(failed.is_empty(), "checkov ({}) failed:\n{}", report["check_type"], failed.join("\n"));
        summary.insert(report["check_type"].as_str().unwrap_or_default().to_string(), report["summary"].clone());
    }
    // Both frameworks scanned something: a path mistake would pass with nothing checked.
    for framework in ["kubernetes", "dockerfile"] {
        let passed = summary.get(framework).and_then(|s| s["passed"].as_u64()).unwrap_or(0);
        assert!(passed > 10, "checkov checked little or nothing of {framework}: {summary:?}");
    }
    assert!(output.status.success(), "checkov: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let mut hadolint = tool(".venv/bin/hadolint");
    hadolint.args(["--failure-threshold", "info", "Dockerfile"]);
    run(hadolint, "hadolint");
}

/// promtool: Debian's `prometheus` package (scripts/test installs it).
fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "promtool is not on PATH: install Debian's `prometheus` package (scripts/test does)");
    tool("promtool")
}

#[test]
fn the_alert_rules_are_valid_and_pass_their_unit_tests() {
    let mut check = promtool();
    check.args(["check", "rules", RULES]);
    run(check, "promtool check rules");
    let mut test = promtool();
    test.args(["test", "rules", RULES_TESTS]);
    run(test, "promtool test rules");
}

/// A metric the service records, as `src/` writes it.
#[derive(Debug)]
struct Recorded {
    kind: &'static str,
    /// Histograms with buckets (set in src/telemetry.rs) are exposed as
    /// histograms; the others as summaries.
    bucketed: bool,
}

/// Every `metrics::counter!/gauge!/histogram!("jit_iam_…")` of `src/`.
fn recorded_metrics() -> BTreeMap<String, Recorded> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repository().join("src"), &mut files);
    let telemetry = std::fs::read_to_string(repository().join("src/telemetry.rs")).unwrap();
    let mut metrics = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for kind in ["counter", "gauge", "histogram"] {
            let call = format!("metrics::{kind}!(\"");
            for (i, _) in text.match_indices(&call) {
                let rest = &text[i + call.len()..];
                let name = &rest[..rest.find('"').unwrap()];
                let bucketed = telemetry.contains(&format!("Matcher::Full(\"{name}\""));
                metrics.insert(name.to_string(), Recorded { kind, bucketed });
            }
        }
    }
    metrics
}

/// The series names a recorded metric appears under on /metrics.
fn exposed_series(metrics: &BTreeMap<String, Recorded>) -> BTreeSet<String> {
    let mut series = BTreeSet::new();
    for (name, metric) in metrics {
        series.insert(name.clone());
        if metric.kind == "histogram" {
            series.insert(format!("{name}_sum"));
            series.insert(format!("{name}_count"));
            if metric.bucketed {
                series.insert(format!("{name}_bucket"));
            }
        }
    }
    series
}

/// The metric names of a rules or rules-test file: every `jit_iam_…` word,
/// and the foreign ones it names.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("jit_iam_") {
        let after = &rest[i..];
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        names.insert(after[..end].to_string());
        rest = &after[end..];
    }
    names
}

#[tokio::test]
async fn the_alert_rules_name_only_metrics_jit_iam_exposes() {
    let recorded = recorded_metrics();
    assert!(recorded.len() >= 15, "{recorded:?}");
    let exposed = exposed_series(&recorded);
    let rules = std::fs::read_to_string(repository().join(RULES)).unwrap();
    let rule_tests = std::fs::read_to_string(repository().join(RULES_TESTS)).unwrap();
    for (file, text) in [(RULES, &rules), (RULES_TESTS, &rule_tests)] {
        let unknown: Vec<_> = metric_names_in(text).into_iter().filter(|n| !exposed.contains(n)).collect();
        assert!(unknown.is_empty(), "{file} names metrics jit-iam does not expose: {unknown:?}; it has {exposed:?}");
        // A summary has quantiles, a histogram buckets: the rule must read each as what it is.
        for (name, metric) in &recorded {
            if metric.kind == "histogram" && !metric.bucketed {
                assert!(!text.contains(&format!("{name}_bucket")), "{file}: {name} is a summary");
            }
            if metric.bucketed {
                assert!(!text.contains(&format!("{name}{{quantile")), "{file}: {name} is a histogram");
            }
        }
        for foreign in FOREIGN_METRICS {
            assert!(text.contains(foreign), "{file} no longer uses {foreign}: drop it from FOREIGN_METRICS");
        }
    }

    // The gauges are written at every scrape: a live /metrics shows them under these names.
    let server = TestServer::start().await;
    let live = reqwest::get(format!("{}/metrics", server.url)).await.unwrap().text().await.unwrap();
    for (name, metric) in recorded.iter().filter(|(_, m)| m.kind == "gauge") {
        assert!(live.contains(&format!("\n{name}")) || live.starts_with(name.as_str()), "{name} ({metric:?}):\n{live}");
    }

    // Every alert links its runbook, a section of docs/operations.md.
    let operations = std::fs::read_to_string(repository().join("docs/operations.md")).unwrap();
    let sections = anchors(&operations);
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    for alert in &alerts {
        let link = format!("runbook_url: docs/operations.md#{}", alert.to_lowercase());
        assert!(rules.contains(&link), "{alert} has no runbook_url `{link}`");
        assert!(sections.contains(&alert.to_lowercase()), "docs/operations.md has no section `{alert}`");
    }
    // And the metrics table of docs/operations.md lists every metric.
    for name in recorded.keys() {
        assert!(operations.contains(&format!("| `{name}` |")), "docs/operations.md's metrics table lacks {name}");
    }
}
