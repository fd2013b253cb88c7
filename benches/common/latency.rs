//! The benchmarks' stand-in for AWS's latency and throttling, in front of
//! moto: every call waits a fixed delay plus a random jitter before it is
//! forwarded (each on its own task: the delay is never serialized), and one
//! service's write calls can be throttled per account at a rate, answered as
//! AWS answers (`Throttling`) without reaching moto. jit-iam and the direct
//! baseline both go through it. Tested in `tests/it/latency_proxy.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What the proxy adds to each call.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    pub delay: Duration,
    /// A uniformly random extra delay, up to this much.
    pub jitter: Duration,
    /// From the start; [`LatencyProxy::set_throttle`] changes it.
    pub throttle: Option<Throttle>,
}

/// The write calls (not Get, List, Describe) of `service` (the SigV4 signing
/// name: `iam`, `sts`, `sso`, ...) allowed per second per account; a bucket
/// of one second's calls.
#[derive(Clone, Debug)]
pub struct Throttle {
    pub service: String,
    pub writes_per_second: f64,
    /// The accounts throttled; empty: every account.
    pub accounts: Vec<String>,
}

pub struct LatencyProxy {
    pub endpoint: String,
    state: Arc<State>,
}

struct State {
    upstream: String,
    latency: Latency,
    throttle: Mutex<Option<Throttle>>,
    client: reqwest::Client,
    /// (service, account) -> tokens and when they were counted.
    buckets: Mutex<HashMap<(String, String), (f64, Instant)>>,
    /// Access key id -> account, learnt from sts:AssumeRole answers.
    accounts: Mutex<HashMap<String, String>>,
    forwarded: AtomicU64,
    throttled: AtomicU64,
    /// Writes of a throttled service and account let through.
    admitted: AtomicU64,
    /// Every call forwarded: when it arrived, when its answer left, its action.
    log: Mutex<Vec<Call>>,
    /// [`LatencyProxy::set_call_rate`]'s rate and its per-account buckets.
    call_rate: Mutex<Option<(CallRate, HashMap<String, (f64, Instant)>)>>,
}

/// One call through the proxy, as [`LatencyProxy::calls_between`] gives it.
#[derive(Clone, Debug)]
pub struct Call {
    pub arrived: Instant,
    pub answered: Instant,
    pub action: String,
}

impl LatencyProxy {
    pub async fn start(upstream: &str, latency: Latency) -> LatencyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            throttle: Mutex::new(latency.throttle.clone()),
            latency,
            client: reqwest::Client::new(),
            buckets: Mutex::new(HashMap::new()),
            accounts: Mutex::new(HashMap::new()),
            forwarded: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            call_rate: Mutex::new(None),
        });
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| handle(state.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        LatencyProxy { endpoint, state }
    }

    /// Calls forwarded to moto so far.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::Relaxed)
    }

    /// Calls answered `Throttling` so far.
    pub fn throttled(&self) -> u64 {
        self.state.throttled.load(Ordering::Relaxed)
    }

    /// Writes that the throttle let through so far (with [`Self::throttled`]: the attempts).
    pub fn admitted(&self) -> u64 {
        self.state.admitted.load(Ordering::Relaxed)
    }

    /// The calls that arrived and were answered between `from` and `to`.
    pub fn calls_between(&self, from: Instant, to: Instant) -> Vec<Call> {
        let log = self.state.log.lock().unwrap();
        log.iter().filter(|c| c.arrived >= from && c.answered <= to).cloned().collect()
    }

    /// Throttles from now on as `throttle` says (None: no more); each account's bucket starts full.
    pub fn set_throttle(&self, throttle: Option<Throttle>) {
        *self.state.throttle.lock().unwrap() = throttle;
        self.state.buckets.lock().unwrap().clear();
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    // Credential=<access key id>/<date>/<region>/<service>/aws4_request
    let credential: Vec<String> = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .map(|c| c.split('/').map(str::to_string).collect())
        .unwrap_or_default();
    let key = credential.first().cloned().unwrap_or_default();
    let service = credential.get(3).cloned().unwrap_or_default();
    // JSON protocol: `X-Amz-Target: Service.Action`; query protocol: a form with `Action`.
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_string);
    let params: HashMap<String, String> = match target {
        Some(_) => HashMap::new(),
        None => form_urlencoded::parse(&body).into_owned().collect(),
    };
    let action = match &target {
        Some(target) => target.rsplit('.').next().unwrap_or_default().to_string(),
        None => params.get("Action").cloned().unwrap_or_default(),
    };

    let jitter = state.latency.jitter.mul_f64(rand::random::<f64>());
    tokio::time::sleep(state.latency.delay + jitter).await;

    let account = state.accounts.lock().unwrap().get(&key).cloned().unwrap_or(key);
    if over_call_rate(&state, &service, &account) || over_rate(&state, &service, &action, &account) {
        state.throttled.fetch_add(1, Ordering::Relaxed);
        return Ok(throttling(target.is_some()));
    }
    let url = format!("{}{}", state.upstream, parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut forwarded = state.client.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        forwarded = forwarded.header(name, value);
    }
    let Ok(answer) = forwarded.send().await else {
        return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "moto did not answer"));
    };
    state.forwarded.fetch_add(1, Ordering::Relaxed);
    let mut reply = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "connection" {
            reply = reply.header(name, value);
        }
    }
    let answer = answer.bytes().await.unwrap_or_default();
    if action == "AssumeRole" {
        learn_account(&state, &params, &answer);
    }
    state.log.lock().unwrap().push(Call { arrived, answered: Instant::now(), action });
    Ok(reply.body(Full::new(answer)).unwrap())
}

/// Whether the call is a write of the throttled service over its account's rate; takes a token when not.
fn over_rate(state: &State, service: &str, action: &str, account: &str) -> bool {
    let Some(throttle) = state.throttle.lock().unwrap().clone() else { return false };
    let reads = ["Get", "List", "Describe"].iter().any(|read| action.starts_with(read));
    let throttled_account = throttle.accounts.is_empty() || throttle.accounts.iter().any(|a| a == account);
    if throttle.service != service || reads || !throttled_account {
        return false;
    }
    let rate = throttle.writes_per_second;
    let now = Instant::now();
    let mut buckets = state.buckets.lock().unwrap();
    let (tokens, at) = buckets.entry((service.to_string(), account.to_string())).or_insert((rate, now));
    *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(rate);
    *at = now;
    if *tokens < 1.0 {
        return true;
    }
    *tokens -= 1.0;
    state.admitted.fetch_add(1, Ordering::Relaxed);
    false
}

/// AWS's throttling answer, in the call's protocol.
fn throttling(json_protocol: bool) -> Response<Full<Bytes>> {
    let request_id = format!("{:032x}", rand::random::<u128>());
    let (content_type, body) = match json_protocol {
        true => {
            ("application/x-amz-json-1.1", r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_string())
        }
        false => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>\
                 </Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
        ),
    };
    Response::builder()
        .status(400)
        .header("content-type", content_type)
        .header("x-amzn-requestid", request_id)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// Remembers whose keys an sts:AssumeRole answer holds: the account of its RoleArn.
fn learn_account(state: &State, params: &HashMap<String, String>, answer: &Bytes) {
    let answer = String::from_utf8_lossy(answer);
    let key = answer.split("<AccessKeyId>").nth(1).and_then(|rest| rest.split('<').next());
    let account = params.get("RoleArn").and_then(|arn| arn.split(':').nth(4));
    if let (Some(key), Some(account)) = (key, account) {
        state.accounts.lock().unwrap().insert(key.to_string(), account.to_string());
    }
}

/// Every call of `service`, reads too, allowed per second per account: how
/// Organizations throttles the management account's ListAccounts and the
/// like; a bucket of one second's calls.
#[derive(Clone, Debug)]
pub struct CallRate {
    pub service: String,
    pub calls_per_second: f64,
}

impl LatencyProxy {
    /// Limits every call of a service from now on (None: no more); each account's bucket starts full.
    pub fn set_call_rate(&self, rate: Option<CallRate>) {
        *self.state.call_rate.lock().unwrap() = rate.map(|rate| (rate, HashMap::new()));
    }
}

/// Whether the call is over its service's [`CallRate`] for its account; takes a token when not.
fn over_call_rate(state: &State, service: &str, account: &str) -> bool {
    let mut call_rate = state.call_rate.lock().unwrap();
    let Some((rate, buckets)) = call_rate.as_mut().filter(|(rate, _)| rate.service == service) else { return false };
    let per_second = rate.calls_per_second;
    let now = Instant::now();
    let (tokens, at) = buckets.entry(account.to_string()).or_insert((per_second, now));
    *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(per_second);
    *at = now;
    if *tokens < 1.0 {
        return true;
    }
    *tokens -= 1.0;
    false
}
