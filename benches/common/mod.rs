//! What every jit-iam benchmark needs: moto and the service as child processes
//! (killed on exit, panic or the bench's own death), clients acting inside a
//! moto account, bounded-concurrency seeding with progress, and wrk.

#![allow(dead_code)]

pub mod aws_proxy;
pub mod latency;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use futures::StreamExt;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the child when the thread that spawned it dies, so that nothing
/// outlives the benchmark, even when it is killed.
pub fn die_with_parent(command: &mut Command) -> &mut Command {
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// Kills and reaps a child when dropped (normal end and panics alike).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(child: &mut Child, address: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if std::net::TcpStream::connect(address).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A moto server of this benchmark alone. Start it from the main thread
/// (before the runtime exists): the child dies with the thread that spawned it.
pub struct Moto {
    pub endpoint: String,
    _child: Arc<ChildGuard>,
}

impl Moto {
    pub fn start() -> Moto {
        let binary = std::env::var("JIT_IAM_BENCH_MOTO")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"));
        assert!(binary.exists(), "{} not found: run scripts/bench, which installs it", binary.display());
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new(&binary);
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = ChildGuard(die_with_parent(&mut command).spawn().expect("start moto_server"));
            if wait_for_port(&mut child.0, &format!("127.0.0.1:{port}"), Duration::from_secs(30)) {
                return Moto { endpoint: format!("http://127.0.0.1:{port}"), _child: Arc::new(child) };
            }
        }
        panic!("moto_server did not start");
    }

    /// This moto reached through `endpoint` (a [`latency::LatencyProxy`] in front of it).
    pub fn through(&self, endpoint: &str) -> Moto {
        Moto { endpoint: endpoint.to_string(), _child: self._child.clone() }
    }

    /// SDK configuration with the given keys, pointed at this moto.
    pub async fn config(&self, credentials: Credentials, region: &str) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(region.to_string()))
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// Configuration acting inside `account_id`: moto routes a request by the
    /// account of the assumed role whose keys signed it (never MOTO_ACCOUNT_ID).
    pub async fn account(&self, account_id: &str) -> SdkConfig {
        let dummy = Credentials::new("AKIAIOSFODNN7EXAMPLE", "bench-secret", None, None, "bench");
        let base = self.config(dummy, "us-east-1").await;
        let assumed = aws_sdk_sts::Client::new(&base)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account_id}:role/bench-seed"))
            .role_session_name("jit-iam-bench")
            .send()
            .await
            .expect("assume a role in the seeded account")
            .credentials
            .expect("credentials");
        let credentials = Credentials::new(
            assumed.access_key_id,
            assumed.secret_access_key,
            Some(assumed.session_token),
            None,
            "bench",
        );
        self.config(credentials, "us-east-1").await
    }
}

/// This moto behind a [`latency::LatencyProxy`] adding
/// `JIT_IAM_BENCH_AWS_LATENCY_MS` per call (0: raw moto, one loopback hop
/// more), which jit-iam and the direct baseline both go through.
pub async fn with_aws_latency(moto: &Moto) -> (Moto, latency::LatencyProxy, u64) {
    let millis = aws_latency_ms();
    let proxy = latency::LatencyProxy::start(&moto.endpoint, aws_latency(millis)).await;
    (moto.through(&proxy.endpoint), proxy, millis)
}

/// `JIT_IAM_BENCH_AWS_LATENCY_MS`, 0 when unset.
pub fn aws_latency_ms() -> u64 {
    std::env::var("JIT_IAM_BENCH_AWS_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// `millis` per call, give or take a tenth, throttling nothing.
pub fn aws_latency(millis: u64) -> latency::Latency {
    let delay = Duration::from_millis(millis);
    latency::Latency { delay, jitter: delay / 10, throttle: None }
}

/// Runs `jobs` with at most `concurrency` in flight, printing progress to
/// stderr; the first error stops the benchmark.
pub async fn run_bounded<T, E, Fut>(label: &str, concurrency: usize, jobs: Vec<Fut>) -> Vec<T>
where
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Debug,
{
    let total = jobs.len();
    let started = Instant::now();
    let mut done = 0;
    let mut results = Vec::with_capacity(total);
    let mut stream = futures::stream::iter(jobs).buffer_unordered(concurrency);
    while let Some(result) = stream.next().await {
        results.push(result.unwrap_or_else(|e| panic!("{label}: {e:?}")));
        done += 1;
        if done % 1000 == 0 || done == total {
            let seconds = started.elapsed().as_secs_f64();
            eprintln!("  {label}: {done}/{total} in {seconds:.1}s ({:.0}/s)", done as f64 / seconds);
        }
    }
    results
}

/// A database of this benchmark alone: the service creates it; dropped at the end.
pub struct BenchDb {
    pub name: String,
    pub url: String,
}

impl BenchDb {
    pub fn new(prefix: &str) -> BenchDb {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        BenchDb { url: format!("{POSTGRES}/{name}"), name }
    }

    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new().max_connections(4).connect(&self.url).await.expect("connect to the bench database")
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let statement = format!("drop database if exists \"{}\" with (force)", self.name);
        // Drop may run inside the runtime: use a small one on a thread of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
                if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&format!("{POSTGRES}/postgres")).await
                {
                    let _ = sqlx::query(&statement).execute(&pool).await;
                }
            })
        })
        .join();
    }
}

/// The `jit-iam` binary as a child process on a fresh database, its AWS
/// endpoint the given moto. Fields drop in order: the process, then its database.
pub struct Service {
    pub url: String,
    pub token: String,
    pub pid: u32,
    pub client: reqwest::Client,
    logs: Arc<Mutex<VecDeque<String>>>,
    child: Mutex<ChildGuard>,
    pub db: BenchDb,
}

pub fn service_binary() -> PathBuf {
    std::env::var("JIT_IAM_BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_jit-iam")))
}

impl Service {
    /// Starts the service; must be called on the thread that lives as long as it should.
    pub async fn start(moto: &Moto, extra_env: &[(&str, &str)]) -> Service {
        let db = BenchDb::new("jit_iam_bench");
        let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let binary = service_binary();
        assert!(binary.exists(), "{} not found: build it with `cargo build --release`", binary.display());
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db.url)
            .env("JIT_IAM_API_TOKENS", format!("bench:{token}"))
            .env("JIT_IAM_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("JIT_IAM_LOG_FORMAT", "json")
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "bench-service-secret")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // Cheap logging, but keep the line that says where it listens.
            .env("RUST_LOG", "warn,jit_iam::server=info")
            .env("RUST_BACKTRACE", "1")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = ChildGuard(die_with_parent(&mut command).spawn().expect("start jit-iam"));
        let pid = child.0.id();
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        let stderr = child.0.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut address_tx = Some(address_tx);
            // Reads to the end whatever the bytes: the service's stderr never closes early.
            let lines = BufReader::new(stderr).split(b'\n').map_while(Result::ok);
            for line in lines.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()) {
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    if event["message"] == "listening" {
                        if let Some(tx) = address_tx.take() {
                            let _ = tx.send(event["address"].as_str().unwrap_or_default().to_string());
                        }
                    }
                }
                let mut logs = sink.lock().unwrap();
                logs.push_back(line);
                if logs.len() > 1000 {
                    logs.pop_front();
                }
            }
        });
        let address = match tokio::time::timeout(Duration::from_secs(60), address_rx).await {
            Ok(Ok(address)) => address,
            _ => panic!("jit-iam did not start; its output:\n{}", Vec::from(logs.lock().unwrap().clone()).join("\n")),
        };
        Service {
            url: format!("http://{address}"),
            token,
            pid,
            client: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            logs,
            child: Mutex::new(child),
            db,
        }
    }

    /// The last lines the service wrote, and its exit status if it ended.
    pub fn recent_logs(&self) -> String {
        let exited = match self.child.lock().unwrap().0.try_wait() {
            Ok(Some(status)) => format!("\n(the service exited: {status})"),
            _ => String::new(),
        };
        Vec::from(self.logs.lock().unwrap().clone()).join("\n") + &exited
    }

    /// Sends a request with the token and expects `expected`; returns the JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>, expected: u16) -> Value {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.url)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nservice logs:\n{}", self.recent_logs()));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, expected, "{method} {path}: {text}\nservice logs:\n{}", self.recent_logs());
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Registers `account_id` as a single-account integration and waits for its first sync; returns its id.
    pub async fn connect_single_account(&self, account_id: &str) -> String {
        let body = serde_json::json!({
            "name": format!("bench-{account_id}"), "connection": "single_account",
            "root_account": {"account_id": account_id, "access_role_arn": format!("arn:aws:iam::{account_id}:role/jit-iam-access"),
                             "external_id": "bench-external-id", "region": "us-east-1"},
            "options": {"regions": ["us-east-1"]}
        });
        let integration = self.call(reqwest::Method::POST, "/v1/integrations", Some(body), 201).await;
        let integration = integration["id"].as_str().unwrap().to_string();
        let runs = self.get(&format!("/v1/integrations/{integration}/syncs")).await;
        self.wait_for_sync(&integration, runs["items"][0]["id"].as_str().unwrap(), Instant::now()).await;
        integration
    }

    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None, 200).await
    }

    /// Waits until sync run `sync_id` of `integration_id` ends; returns it
    /// (with its accounts) and the time from `since` to when it was seen ended.
    pub async fn wait_for_sync(&self, integration_id: &str, sync_id: &str, since: Instant) -> (Value, Duration) {
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            let run = self.get(&format!("/v1/integrations/{integration_id}/syncs/{sync_id}")).await;
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                return (run, since.elapsed());
            }
            assert!(Instant::now() < deadline, "sync {sync_id} did not end within an hour");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The service's Prometheus metrics (`/metrics`, open).
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}\nservice logs:\n{}", self.recent_logs()));
        response.text().await.unwrap_or_default()
    }

    /// CPU time the service has used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(self.pid)
    }

    /// Peak and current resident memory (VmHWM, VmRSS), in MB.
    pub fn memory_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
                .unwrap_or(f64::NAN)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

/// What wrk measured.
#[derive(Debug)]
pub struct WrkResult {
    pub requests: u64,
    pub requests_per_second: f64,
    pub latency_ms: BTreeMap<String, f64>,
    pub non_2xx: u64,
    pub socket_errors: String,
    pub raw: String,
}

/// Runs wrk (keep-alive connections) against `url` with a bearer token.
pub async fn wrk(url: &str, token: &str, threads: u32, connections: u32, seconds: u32) -> WrkResult {
    let mut command = Command::new("wrk");
    command
        .args(["-t", &threads.to_string(), "-c", &connections.to_string(), "-d", &format!("{seconds}s"), "--latency"])
        .args(["-H", &format!("Authorization: Bearer {token}"), url])
        .stdin(Stdio::null());
    die_with_parent(&mut command);
    let output = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run wrk (apt-get install -y wrk)");
    let raw = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "wrk failed: {raw}{}", String::from_utf8_lossy(&output.stderr));
    parse_wrk(&raw)
}

/// `12.5us`, `3.1ms`, `1.2s`, `1m` as milliseconds.
fn duration_ms(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        "h" => number * 3_600_000.0,
        _ => return None,
    })
}

pub fn parse_wrk(raw: &str) -> WrkResult {
    let mut result = WrkResult {
        requests: 0,
        requests_per_second: f64::NAN,
        latency_ms: BTreeMap::new(),
        non_2xx: 0,
        socket_errors: String::new(),
        raw: raw.to_string(),
    };
    let mut in_distribution = false;
    for line in raw.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("Latency Distribution") {
            in_distribution = true;
            continue;
        }
        if in_distribution && words.len() == 2 && words[0].ends_with('%') {
            if let Some(ms) = duration_ms(words[1]) {
                result.latency_ms.insert(words[0].trim_end_matches('%').to_string(), ms);
            }
            continue;
        }
        in_distribution = false;
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            result.requests_per_second = rest.trim().parse().unwrap_or(f64::NAN);
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.non_2xx = rest.trim().parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            result.socket_errors = rest.trim().to_string();
        } else if words.get(1) == Some(&"requests") && words.get(2) == Some(&"in") {
            result.requests = words[0].parse().unwrap_or(0);
        }
    }
    result
}

/// `service:Operation` -> attempts so far, from `jit_iam_aws_requests_total`
/// in Prometheus text (the service's /metrics, or a recorder of this process).
pub fn aws_calls_by_operation(prometheus_text: &str) -> BTreeMap<String, u64> {
    let mut calls = BTreeMap::new();
    for line in prometheus_text.lines() {
        let Some(rest) = line.strip_prefix("jit_iam_aws_requests_total{") else { continue };
        let Some((labels, value)) = rest.rsplit_once("} ") else { continue };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        let (Some(service), Some(operation)) = (label("service"), label("operation")) else { continue };
        let count = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        *calls.entry(format!("{}:{operation}", service.to_lowercase())).or_insert(0) += count;
    }
    calls
}

/// What `after` counted since `before`, without the zeros.
pub fn calls_since(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0))).filter(|(_, n)| *n > 0).collect()
}

/// CPU time (user + system) of process `pid` so far, in seconds.
pub fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses: utime and stime are the 12th and 13th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<f64>().ok()).sum();
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// CPU time of every process called `name` (e.g. the Postgres backends), in seconds.
pub fn cpu_seconds_of(name: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .map(process_cpu_seconds)
        .sum()
}

/// The machine's busy and total CPU time so far (all cores), in ticks.
pub fn machine_cpu_ticks() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<f64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: f64 = values.iter().take(8).sum();
    // idle and iowait
    let idle = values.get(3).copied().unwrap_or(0.0) + values.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// The 1-minute load average: the machine may be shared with other work.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Rounds to 3 decimals for the report.
pub fn round3(x: f64) -> Value {
    json!((x * 1000.0).round() / 1000.0)
}

/// Parses wrk's output format once at start, so that a format change fails
/// before minutes of seeding rather than after.
pub fn self_check_wrk_parser() {
    let sample = "Running 20s test @ http://127.0.0.1:1/v1/resources\n  2 threads and 64 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     5.12ms    1.01ms  30.00ms   90.00%\n  Latency Distribution\n     50%  850.00us\n     75%    5.00ms\n     90%    6.00ms\n     99%    1.20s\n  120000 requests in 20.00s, 500.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:   6000.50\nTransfer/sec:     25.00MB\n";
    let parsed = parse_wrk(sample);
    assert_eq!(parsed.requests, 120_000);
    assert_eq!(parsed.requests_per_second, 6000.5);
    assert_eq!(parsed.latency_ms["50"], 0.85);
    assert_eq!(parsed.latency_ms["99"], 1200.0);
    assert_eq!(parsed.non_2xx, 3);
}

/// The `p` quantile (0 to 1) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// p50 and p99 of latency samples in milliseconds, for the report.
pub fn summary(mut samples: Vec<f64>) -> Value {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({"p50_ms": round3(percentile(&samples, 0.5)), "p99_ms": round3(percentile(&samples, 0.99)), "n": samples.len()})
}

/// Waits until every grant has `status`; returns them.
pub async fn wait_status(service: &Service, ids: &[String], status: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let page = service.get(&format!("/v1/grants?status={status}&limit=1000")).await;
        let mut found: BTreeMap<String, Value> = BTreeMap::new();
        let mut page = page;
        loop {
            for grant in page["items"].as_array().unwrap() {
                found.insert(grant["id"].as_str().unwrap().to_string(), grant.clone());
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    page = service.get(&format!("/v1/grants?status={status}&limit=1000&cursor={cursor}")).await
                }
                None => break,
            }
        }
        if ids.iter().all(|id| found.contains_key(id)) {
            return ids.iter().map(|id| found[id].clone()).collect();
        }
        let failed = service.get("/v1/grants?status=failed&limit=1").await;
        assert!(failed["items"].as_array().unwrap().is_empty(), "a grant failed: {}", failed["items"][0]);
        assert!(Instant::now() < deadline, "grants not {status} after 15 minutes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where one request's time went, from the AWS calls the proxy saw during it.
pub struct Breakdown {
    pub total_ms: f64,
    /// The time at least one AWS call was in flight.
    pub aws_ms: f64,
    /// Calls one after the other: groups of calls in flight together.
    pub sequential_calls: usize,
    pub calls: usize,
}

impl Breakdown {
    pub fn of(proxy: &latency::LatencyProxy, started: Instant, ended: Instant) -> Breakdown {
        let mut calls = proxy.calls_between(started, ended);
        calls.sort_by_key(|c| c.arrived);
        let (mut aws, mut groups, mut open_until): (Duration, usize, Option<Instant>) = (Duration::ZERO, 0, None);
        for call in &calls {
            match open_until {
                Some(until) if call.arrived <= until => {
                    if call.answered > until {
                        aws += call.answered - until;
                        open_until = Some(call.answered);
                    }
                }
                _ => {
                    groups += 1;
                    aws += call.answered - call.arrived;
                    open_until = Some(call.answered);
                }
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        Breakdown { total_ms: ms(ended - started), aws_ms: ms(aws), sequential_calls: groups, calls: calls.len() }
    }

    /// The time spent outside AWS calls: in the caller, its database, the network to the proxy.
    pub fn own_ms(&self) -> f64 {
        self.total_ms - self.aws_ms
    }
}

/// p50 and p99 of each part of many breakdowns, for the report.
pub fn breakdown_summary(breakdowns: &[Breakdown]) -> Value {
    let quantiles = |values: Vec<f64>| {
        let mut values = values;
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        json!({"p50": round3(percentile(&values, 0.5)), "p99": round3(percentile(&values, 0.99))})
    };
    json!({
        "aws_ms": quantiles(breakdowns.iter().map(|b| b.aws_ms).collect()),
        "outside_aws_ms": quantiles(breakdowns.iter().map(Breakdown::own_ms).collect()),
        "sequential_aws_calls": quantiles(breakdowns.iter().map(|b| b.sequential_calls as f64).collect()),
        "aws_calls": quantiles(breakdowns.iter().map(|b| b.calls as f64).collect()),
    })
}

/// What a sync of an organization lists, listed by jit-iam's own code in this
/// process (nothing stored), `concurrency` accounts at a time with
/// `calls_in_flight` calls each: the resources found and the AWS calls made.
pub async fn list_organization_directly(
    pool: &jit_iam::aws::AwsPool,
    integration: &jit_iam::domain::integration::Integration,
    concurrency: usize,
    calls_in_flight: usize,
) -> (usize, u64) {
    use jit_iam::aws::inventory::{list_account, list_organization_accounts, CallLimiter};
    let root_account = integration.root_account.account_id.as_str();
    let root = pool.clients(integration, root_account).await;
    let org_limiter = CallLimiter::new(1);
    let accounts = list_organization_accounts(&root, &org_limiter).await.expect("ListAccounts");
    let mut ids: Vec<String> = accounts.into_iter().filter(|a| a.status == "ACTIVE").map(|a| a.id).collect();
    if !ids.iter().any(|id| id == root_account) {
        ids.push(root_account.to_string());
    }
    let per_account: Vec<(usize, u64)> = futures::stream::iter(ids)
        .map(|account_id| async move {
            let clients = pool.clients(integration, &account_id).await;
            let limiter = CallLimiter::new(calls_in_flight);
            let is_root = account_id == root_account;
            let found = list_account(&clients, &account_id, is_root, &integration.options, &limiter)
                .await
                .unwrap_or_else(|e| panic!("listing {account_id}: {e}"));
            (found.len(), limiter.calls())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let calls = org_limiter.calls() + per_account.iter().map(|(_, c)| c).sum::<u64>();
    (per_account.iter().map(|(n, _)| n).sum(), calls)
}
