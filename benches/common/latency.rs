//! The benchmarks' stand-in for AWS's latency and throttling, in front of
//! moto: every call waits a fixed delay plus a random jitter before it is
//! forwarded (each on its own task: the delay is never serialized), and one
//! service's write calls can be throttled per account at a rate, answered as
//! AWS answers (`Throttling`) without reaching moto. jit-iam and the direct
//! baseline both go through it. Tested in `tests/it/latency_proxy.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Request;

use super::aws_proxy::{self, Accounts, Answer, AwsCall, Rate};

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
    /// The throttle, and its accounts' buckets.
    throttle: Mutex<Option<(Throttle, Rate)>>,
    /// [`LatencyProxy::set_call_rate`]'s rate and its accounts' buckets.
    call_rate: Mutex<Option<(CallRate, Rate)>>,
    accounts: Accounts,
    client: reqwest::Client,
    forwarded: AtomicU64,
    throttled: AtomicU64,
    /// Writes of a throttled service and account let through.
    admitted: AtomicU64,
    /// Every call forwarded: when it arrived, when its answer left, its action.
    log: Mutex<Vec<Call>>,
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
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            throttle: Mutex::new(None),
            call_rate: Mutex::new(None),
            latency: latency.clone(),
            accounts: Accounts::default(),
            client: reqwest::Client::new(),
            forwarded: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        let endpoint = aws_proxy::serve(move |request| handle(shared.clone(), request)).await;
        let proxy = LatencyProxy { endpoint, state };
        proxy.set_throttle(latency.throttle);
        proxy
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
        *self.state.throttle.lock().unwrap() = throttle.map(|t| {
            let rate = Rate::new(t.writes_per_second);
            (t, rate)
        });
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Answer {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let call = AwsCall::read(&parts, &body);

    let jitter = state.latency.jitter.mul_f64(rand::random::<f64>());
    tokio::time::sleep(state.latency.delay + jitter).await;

    let account = state.accounts.of(&call.key).unwrap_or_else(|| call.key.clone());
    if over_call_rate(&state, &call, &account) || over_rate(&state, &call, &account) {
        state.throttled.fetch_add(1, Ordering::Relaxed);
        return Ok(aws_proxy::throttling(&call));
    }
    let Some((reply, answer)) = aws_proxy::forward(&state.client, &state.upstream, &parts, body).await else {
        return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "moto did not answer"));
    };
    state.forwarded.fetch_add(1, Ordering::Relaxed);
    state.accounts.learn(&call, &answer);
    state.log.lock().unwrap().push(Call { arrived, answered: Instant::now(), action: call.action });
    Ok(reply)
}

/// Whether the call is a write of the throttled service and account over its rate; takes a token when not.
fn over_rate(state: &State, call: &AwsCall, account: &str) -> bool {
    let mut throttle = state.throttle.lock().unwrap();
    let Some((throttle, rate)) = throttle.as_mut() else { return false };
    let named = throttle.accounts.is_empty() || throttle.accounts.iter().any(|a| a == account);
    if throttle.service != call.service || call.is_read() || !named {
        return false;
    }
    if !rate.take(account) {
        return true;
    }
    state.admitted.fetch_add(1, Ordering::Relaxed);
    false
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
        *self.state.call_rate.lock().unwrap() = rate.map(|rate| {
            let buckets = Rate::new(rate.calls_per_second);
            (rate, buckets)
        });
    }
}

/// Whether the call is over its service's [`CallRate`] for its account; takes a token when not.
fn over_call_rate(state: &State, call: &AwsCall, account: &str) -> bool {
    let mut call_rate = state.call_rate.lock().unwrap();
    match call_rate.as_mut() {
        Some((rate, buckets)) if rate.service == call.service => !buckets.take(account),
        _ => false,
    }
}
