//! The `jit-iam` binary as a child process, with its own database.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::{die_with_parent, unique, Moto};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database of this test alone, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new() -> Arc<TestDb> {
        let name = unique("jit_iam_test").replace('-', "_");
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        Arc::new(TestDb { name, url })
    }

    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new().max_connections(4).connect(&self.url).await.expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let statement = format!("drop database if exists \"{}\" with (force)", self.name);
        // Drop runs outside any runtime: use a small one of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
                if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(ADMIN_URL).await {
                    let _ = sqlx::query(&statement).execute(&pool).await;
                }
            })
        })
        .join();
    }
}

pub struct TestServer {
    pub url: String,
    pub token: String,
    pub db: Arc<TestDb>,
    pub client: reqwest::Client,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct ServerBuilder {
    env: Vec<(String, String)>,
    db: Option<Arc<TestDb>>,
}

impl TestServer {
    /// A server on a fresh database, its AWS endpoint the shared moto.
    pub async fn start() -> TestServer {
        Self::builder(Moto::shared()).start().await
    }

    pub fn builder(moto: &Moto) -> ServerBuilder {
        let env = [
            ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "service-secret"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("JIT_IAM_LOG_FORMAT", "json"),
            ("JIT_IAM_LISTEN", "127.0.0.1:0"),
            ("JIT_IAM_WORKER_LEASE", "5s"),
            // Small pools: many servers share the machine's Postgres (100 connections).
            ("JIT_IAM_DB_MAX_CONNECTIONS", "4"),
            ("JIT_IAM_WORKER_CONCURRENCY", "8"),
            ("JIT_IAM_SYNC_ACCOUNT_CONCURRENCY", "2"),
            // Gauges current within a fraction of a second.
            ("JIT_IAM_METRICS_REFRESH", "250ms"),
            ("RUST_LOG", "info,jit_iam=debug"),
        ];
        ServerBuilder { env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), db: None }
    }

    pub async fn db(&self) -> PgPool {
        self.db.pool().await
    }

    /// Every log line the server wrote so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The warnings and errors the server logged, for failure messages.
    pub fn problems(&self) -> String {
        self.logs()
            .into_iter()
            .filter(|l| l.contains(r#""level":"WARN""#) || l.contains(r#""level":"ERROR""#))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The token of `role` (admin, portal or auditor).
    pub fn token_of(&self, role: &str) -> String {
        match role {
            "admin" => self.token.clone(),
            role => format!("{}-{role}", self.token),
        }
    }

    /// Sends a request with the admin token; returns the status and the JSON body (Null when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as("admin", method, path, body).await
    }

    /// Sends a request with the token of `role`.
    pub async fn call_as(&self, role: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.url)).bearer_auth(self.token_of(role));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request to jit-iam");
        let status = response.status();
        let text = response.text().await.unwrap();
        let json =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Waits until no sync of the integration is queued or running, and returns
    /// the newest run with its accounts.
    pub async fn wait_for_sync(&self, integration_id: &str) -> Value {
        let run_id = super::eventually(Duration::from_secs(120), "the sync to finish", || async {
            let (_, page) = self.get(&format!("/v1/integrations/{integration_id}/syncs?limit=1")).await;
            let run = page["items"].get(0)?;
            (!matches!(run["status"].as_str(), Some("queued" | "running")))
                .then(|| run["id"].as_str().unwrap().to_string())
        })
        .await;
        self.get(&format!("/v1/integrations/{integration_id}/syncs/{run_id}")).await.1
    }

    /// The sum of the `/metrics` samples whose line starts with `prefix`
    /// (a metric name, optionally with the start of its labels).
    pub async fn metric(&self, prefix: &str) -> f64 {
        let metrics = reqwest::get(format!("{}/metrics", self.url)).await.unwrap().text().await.unwrap();
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }

    /// Waits until the metric reads `value`: the gauges read from the database
    /// are refreshed every `JIT_IAM_METRICS_REFRESH`, not at each scrape.
    pub async fn wait_for_metric(&self, prefix: &str, value: f64) {
        let what = format!("{prefix} to read {value}");
        super::eventually(Duration::from_secs(10), &what, || async {
            (self.metric(prefix).await == value).then_some(())
        })
        .await;
    }

    /// Every resource the browse API lists for `query`, following all pages.
    pub async fn browse_all(&self, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/resources?{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = self.get(&path).await;
            assert_eq!(status, 200, "{path}: {page}");
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return items,
            }
        }
    }

    /// Creates an integration and returns its JSON; fails the test on any error.
    pub async fn create_integration(&self, body: Value) -> Value {
        let (status, json) = self.post("/v1/integrations", body).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    /// Connects `account` as a single-account integration named `name` (role
    /// `jit-iam-access`, us-east-1) and waits for its first sync to succeed.
    /// Returns the integration id.
    pub async fn connect(&self, account: &super::Account, name: &str) -> String {
        let integration = self
            .create_integration(serde_json::json!({
                "name": name,
                "connection": "single_account",
                "root_account": {
                    "account_id": account.id, "access_role_arn": account.role_arn("jit-iam-access"),
                    "external_id": "external-id-123", "region": "us-east-1"
                },
                "options": {"regions": ["us-east-1"]}
            }))
            .await;
        let id = integration["id"].as_str().unwrap().to_string();
        assert_eq!(self.wait_for_sync(&id).await["status"], "succeeded");
        id
    }
}

impl ServerBuilder {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Leaves `key` out of the environment (e.g. the AWS keys, to test another identity).
    pub fn without(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Shares a database with another server (replicas).
    pub fn database(mut self, db: Arc<TestDb>) -> Self {
        self.db = Some(db);
        self
    }

    pub async fn start(self) -> TestServer {
        let db = self.db.unwrap_or_else(TestDb::new);
        let token = format!("test-token-{}", uuid::Uuid::new_v4().simple());
        let mut command = Command::new(env!("CARGO_BIN_EXE_jit-iam"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db.url)
            // The main token names no role (admin by default); one token per other role.
            .env(
                "JIT_IAM_API_TOKENS",
                format!("tests:{token},portal:{token}-portal:portal,auditor:{token}-auditor:auditor"),
            )
            // No scheduled reconciliation: tests that make drift on purpose ask for runs themselves.
            .env("JIT_IAM_RECONCILE_INTERVAL", "0")
            .envs(self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = die_with_parent(&mut command).spawn().expect("start jit-iam");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut address_tx = Some(address_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    if event["message"] == "listening" {
                        if let Some(tx) = address_tx.take() {
                            let _ = tx.send(event["address"].as_str().unwrap_or_default().to_string());
                        }
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let address = match tokio::time::timeout(Duration::from_secs(60), address_rx).await {
            Ok(Ok(address)) => address,
            _ => {
                let _ = child.kill();
                panic!("jit-iam did not start; its output:\n{}", logs.lock().unwrap().join("\n"));
            }
        };
        TestServer {
            url: format!("http://{address}"),
            token,
            db,
            // Idle connections are dropped well before the server's idle timeout (75 s), as docs/configuration.md asks of clients.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            child,
            logs,
        }
    }
}
