//! The curl tour (docs/tour.md) runs: every command of its `sh` blocks, with
//! real curl, against jit-iam and the sandbox `scripts/sandbox` starts, in
//! order. A command must answer 2xx, or the status its trailing comment starts
//! with (`# 202: ...`); `export X=<...>` lines take an id from the answer before.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{die_with_parent, Moto, Receiver, TestServer};

fn repository() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tour, where it lives.
pub(crate) fn tour() -> String {
    std::fs::read_to_string(repository().join("docs/tour.md")).expect("docs/tour.md")
}

/// One command of the tour, as bash will run it.
#[derive(Debug)]
pub(crate) enum Step {
    Curl {
        command: String,
        expected: Option<u16>,
        /// The comment lines before the command and its trailing comment: what the tour says of it.
        notes: String,
    },
    /// `export NAME=<the id returned>` / `<the first id listed>`.
    Capture { name: String, first_listed: bool },
    /// `export NAME=value ...`: variables the tour sets itself.
    Export(String),
}

/// The commands of the tour's `sh` blocks.
pub(crate) fn tour_steps(tour: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    let mut comments = String::new();
    for line in tour.lines() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            comments.clear();
            continue;
        }
        if !in_block {
            continue;
        }
        if pending.is_empty() && (line.trim_start().starts_with('#') || line.trim().is_empty()) {
            comments.push_str(line.trim_start().trim_start_matches('#'));
            comments.push('\n');
            continue;
        }
        pending.push_str(line);
        pending.push('\n');
        let quotes_open = pending.matches('\'').count() % 2 == 1;
        if quotes_open || line.trim_end().ends_with('\\') {
            continue;
        }
        let command = std::mem::take(&mut pending);
        steps.push(step_of(command.trim(), &std::mem::take(&mut comments)));
    }
    steps
}

fn step_of(command: &str, comments: &str) -> Step {
    if let Some(export) = command.strip_prefix("export ") {
        if let Some((name, value)) = export.split_once('=') {
            if value.starts_with('<') {
                return Step::Capture { name: name.to_string(), first_listed: value.contains("listed") };
            }
        }
        return Step::Export(command.to_string());
    }
    assert!(command.starts_with("curl "), "a tour command that is not curl: {command}");
    // The trailing comment of the last line, outside quotes.
    let last = command.lines().last().unwrap_or_default();
    let comment = last.rfind(" # ").filter(|i| last[..*i].matches('\'').count() % 2 == 0).map(|i| &last[i + 3..]);
    let expected = comment.and_then(|c| c.get(..3)).and_then(|s| s.parse().ok());
    let notes = format!("{comments}{}", comment.unwrap_or_default());
    Step::Curl { command: command.to_string(), expected, notes }
}

/// `scripts/sandbox` on a port of its own; stopped (with its moto) when dropped.
struct Sandbox {
    child: Child,
    env: Vec<(String, String)>,
}

impl Sandbox {
    fn start() -> Sandbox {
        let port = crate::support::free_port();
        let mut command = Command::new(repository().join("scripts/sandbox"));
        command.env("SANDBOX_PORT", port.to_string()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = die_with_parent(&mut command).spawn().expect("start scripts/sandbox");
        let mut env = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok) {
            if line.starts_with("cargo run") {
                break;
            }
            for pair in line.strip_prefix("export ").unwrap_or_default().split_whitespace() {
                let (key, value) = pair.split_once('=').unwrap();
                env.push((key.to_string(), value.to_string()));
            }
        }
        assert!(env.iter().any(|(k, _)| k == "AWS_ENDPOINT_URL"), "scripts/sandbox printed no environment");
        Sandbox { child, env }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // SIGTERM: the script's trap stops its moto.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn every_command_of_the_tour_answers_as_documented() {
    let steps = tour_steps(&tour());
    assert!(steps.len() > 40, "the tour was read: {steps:?}");

    let sandbox = tokio::task::spawn_blocking(Sandbox::start).await.unwrap();
    let mut builder = TestServer::builder(Moto::shared())
        .env("JIT_IAM_WEBHOOK_ALLOW_HTTP", "true")
        .env("JIT_IAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true");
    for (key, value) in &sandbox.env {
        if key != "JIT_IAM_API_TOKENS" {
            builder = builder.env(key, value);
        }
    }
    let server = builder.start().await;
    let receiver = Receiver::start().await;

    let mut vars: Vec<(String, String)> =
        vec![("JIT".into(), server.url.clone()), ("AUTH".into(), format!("Authorization: Bearer {}", server.token))];
    let mut last_answer = Value::Null;
    let mut last_command = String::new();
    for step in steps {
        match step {
            Step::Export(line) if line.starts_with("export JIT=") => {}
            // The webhook receiver: the tour's stands for the portal's.
            Step::Export(line) if line.starts_with("export HOOK_URL=") => {
                vars.push(("HOOK_URL".into(), receiver.url.clone()))
            }
            Step::Export(line) => panic!("an export the test does not know: {line}"),
            Step::Capture { name, first_listed } => {
                let id = if first_listed { &last_answer["items"][0]["id"] } else { &last_answer["id"] };
                let id = id
                    .as_str()
                    .unwrap_or_else(|| panic!("no id for {name} in the answer to {last_command}: {last_answer}"));
                vars.push((name, id.to_string()));
            }
            Step::Curl { command, expected, .. } => {
                // A listing right after a sync may be empty for a moment: ask again, for a while.
                let mut attempts = 0;
                loop {
                    let (status, body) = run(&command, &vars).await;
                    let wanted = expected.map_or((200..300).contains(&status), |e| status == e);
                    assert!(wanted, "`{command}` answered {status} (wanted {expected:?} or 2xx):\n{body}");
                    last_answer = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let empty_list = last_answer["items"].as_array().is_some_and(|items| items.is_empty());
                    attempts += 1;
                    if !empty_list || attempts > 60 || !command.contains("/v1/resources?") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                last_command = command;
            }
        }
    }
    assert!(!receiver.received().is_empty(), "the tour's test event reached the receiver");
}

/// Runs one curl command with bash, with the tour's variables; returns its status and body.
async fn run(command: &str, vars: &[(String, String)]) -> (u16, String) {
    let script = format!("curl() {{ command curl -sS -w '\\n%{{http_code}}' \"$@\"; }}\n{command}");
    let output = tokio::process::Command::new("bash")
        .args(["-c", &script])
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "`{command}` failed: {}{stdout}", String::from_utf8_lossy(&output.stderr));
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    (status.trim().parse().unwrap_or_else(|_| panic!("`{command}` printed no status: {stdout}")), body.to_string())
}
