//! Clients generated from openapi/openapi.json with mainstream tools, used
//! unedited: a Python client (openapi-python-client) runs the portal's tour
//! against the live service and moto; TypeScript types (openapi-typescript)
//! type-check a portal written with openapi-fetch under `tsc --strict`; and
//! `redocly lint` finds no error. The 3.0 rendition, openapi/openapi-3.0.json,
//! validates as 3.0, and openapi-typescript-codegen (a 3.0-only generator)
//! builds a client from it that type-checks a portal call. The tools are
//! installed by `scripts/test` (.venv, and tests/clients/node_modules from its
//! committed lockfile).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{random_account_id, unique, Moto, TestServer};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test tools' virtualenv, found from the moto it installs.
fn venv_bin() -> PathBuf {
    let moto = std::env::var("JIT_IAM_TEST_MOTO").expect("JIT_IAM_TEST_MOTO (set by scripts/test)");
    Path::new(&moto).parent().unwrap().to_path_buf()
}

fn node_tool(name: &str) -> PathBuf {
    let tool = repository().join("tests/clients/node_modules/.bin").join(name);
    assert!(tool.exists(), "{} is missing: run scripts/test (it runs `npm ci` in tests/clients)", tool.display());
    tool
}

fn succeeded(what: &str, output: Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed ({}):\n{text}", output.status);
    text
}

#[tokio::test]
async fn a_generated_python_client_runs_the_portal_tour() {
    let generated = std::env::temp_dir().join(unique("jit-iam-python-client"));
    let path = format!("{}:{}", venv_bin().display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new(venv_bin().join("openapi-python-client"))
        .args(["generate", "--meta", "none", "--path"])
        .arg(repository().join("openapi/openapi.json"))
        .arg("--output-path")
        .arg(generated.join("jit_iam_client"))
        .env("PATH", &path)
        .output()
        .expect("run openapi-python-client");
    let text = succeeded("openapi-python-client", output);
    assert!(!text.to_lowercase().contains("warning"), "the generator warned:\n{text}");

    let moto = Moto::shared();
    let server = TestServer::start().await;
    let account = moto.account(&random_account_id()).await;
    account.create_user("alice", &[]).await;
    let prefix = unique("tour");
    for i in 0..3 {
        account.create_bucket(&format!("{prefix}-{i}"), &[("env", "prod")]).await;
    }
    account.create_bucket(&format!("{prefix}-dev"), &[("env", "dev")]).await;
    let tour = tokio::process::Command::new(venv_bin().join("python"))
        .arg(repository().join("tests/clients/tour.py"))
        .env("PYTHONPATH", &generated)
        .env("JIT_URL", &server.url)
        .env("JIT_TOKEN", &server.token)
        .env("ACCOUNT_ID", &account.id)
        .env("ROLE_ARN", account.role_arn("jit-iam-access"))
        .env("BUCKET_PREFIX", &prefix)
        .output()
        .await
        .expect("run the tour");
    let text = succeeded("tests/clients/tour.py", tour);
    assert!(text.contains("tour ok"), "{text}");
    let _ = std::fs::remove_dir_all(generated);
}

#[test]
fn generated_typescript_types_check_the_portal_under_strict_and_the_document_lints_clean() {
    let clients = repository().join("tests/clients");
    let document = repository().join("openapi/openapi.json");
    let output = Command::new(node_tool("openapi-typescript"))
        .arg(&document)
        .args(["-o", "generated/schema.d.ts"])
        .current_dir(&clients)
        .output()
        .expect("run openapi-typescript");
    succeeded("openapi-typescript", output);
    let output = Command::new(node_tool("tsc")).args(["-p", "tsconfig.json"]).current_dir(&clients).output();
    succeeded("tsc --strict on tests/clients/portal.ts", output.expect("run tsc"));
    let output = Command::new(node_tool("redocly"))
        .args(["lint", "--format", "summary"])
        .arg(&document)
        .env("REDOCLY_TELEMETRY", "off")
        .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
        .current_dir(&clients)
        .output()
        .expect("run redocly");
    succeeded("redocly lint", output);
}

#[test]
fn the_3_0_rendition_validates_and_a_3_0_only_generator_builds_a_client_from_it() {
    for document in ["openapi/openapi.json", "openapi/openapi-3.0.json"] {
        let output = Command::new(venv_bin().join("openapi-spec-validator")).arg(repository().join(document)).output();
        let text =
            succeeded(&format!("openapi-spec-validator {document}"), output.expect("run openapi-spec-validator"));
        assert!(text.contains("OK"), "{text}");
    }
    let clients = repository().join("tests/clients");
    // Its command is named `openapi`, as @redocly/cli's is: run it by path.
    let codegen = clients.join("node_modules/openapi-typescript-codegen/bin/index.js");
    let output = Command::new("node")
        .arg(codegen)
        .args(["--input", "../../openapi/openapi-3.0.json", "--output", "generated/openapi-3.0", "--client", "fetch"])
        .current_dir(&clients)
        .output()
        .expect("run openapi-typescript-codegen");
    succeeded("openapi-typescript-codegen", output);
    let output =
        Command::new(node_tool("tsc")).args(["-p", "tsconfig.openapi-3.0.json"]).current_dir(&clients).output();
    succeeded("tsc --strict on tests/clients/portal-3.0.ts", output.expect("run tsc"));
}
