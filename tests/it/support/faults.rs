//! Fault injection on the wire: an HTTP proxy in front of moto that throttles,
//! fails, resets and stalls a share of the AWS calls, and a TCP proxy in front
//! of Postgres that can take the database away.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::aws_proxy::{self, Accounts, Answer, AwsCall, Rate};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An AWS `Throttling` error.
    Throttle,
    /// HTTP 500 InternalFailure.
    InternalError,
    /// HTTP 503 ServiceUnavailable.
    Unavailable,
    /// The connection is cut before the call reaches AWS.
    ResetBefore,
    /// The call is carried out, then the connection is cut: the caller cannot know.
    ResetAfter,
    /// The call is carried out, and the answer comes later than the caller waits.
    Slow,
    /// An Identity Center `ConflictException` (HTTP 409): another operation
    /// on the same assignment or permission set is in progress.
    Conflict,
}

const FAULTS: [Fault; 6] =
    [Fault::Throttle, Fault::InternalError, Fault::Unavailable, Fault::ResetBefore, Fault::ResetAfter, Fault::Slow];

/// One call as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub service: String,
    pub action: String,
    pub params: BTreeMap<String, String>,
    pub fault: Option<Fault>,
    /// moto's status, when the call reached it.
    pub upstream_status: Option<u16>,
    /// The account of the caller's credentials, when they came from an
    /// sts:AssumeRole that went through the proxy.
    pub account: Option<String>,
    /// When the call reached the proxy.
    pub at: std::time::Instant,
}

struct ProxyState {
    upstream: String,
    /// Faulted share of IAM and STS calls, in per mille.
    rate: AtomicU32,
    /// Shares for the calls of some accounts, instead of `rate`.
    account_rates: Mutex<HashMap<String, u32>>,
    accounts: Accounts,
    /// How long a `Slow` answer is held back.
    delay: Duration,
    client: reqwest::Client,
    log: Mutex<Vec<Exchange>>,
    /// Faults for the next call of an action, once each.
    next_faults: Mutex<Vec<(String, Fault)>>,
    /// Answers the proxy gives instead of moto's, for calls moto does not implement.
    answers: Mutex<Vec<Canned>>,
    /// Write calls of a service allowed per second per account (AWS's own
    /// throttling, as a rate): the service, and its accounts' buckets.
    write_rate: Mutex<Option<(String, Rate)>>,
    /// The action whose answers are held back, and how many are held now.
    held_action: Mutex<Option<String>>,
    holding: AtomicU32,
    released: tokio::sync::watch::Sender<u64>,
}

pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<ProxyState>,
}

/// A canned JSON answer to calls of `action` about `resource` (any, when None).
struct Canned {
    action: String,
    resource: Option<String>,
    body: serde_json::Value,
}

impl FaultProxy {
    /// A proxy to `upstream`, faulting nothing until `set_rate`.
    pub async fn start(upstream: &str, slow_delay: Duration) -> FaultProxy {
        let state = Arc::new(ProxyState {
            upstream: upstream.to_string(),
            rate: AtomicU32::new(0),
            account_rates: Mutex::new(HashMap::new()),
            accounts: Accounts::default(),
            delay: slow_delay,
            client: reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap(),
            log: Mutex::new(Vec::new()),
            next_faults: Mutex::new(Vec::new()),
            answers: Mutex::new(Vec::new()),
            write_rate: Mutex::new(None),
            held_action: Mutex::new(None),
            holding: AtomicU32::new(0),
            released: tokio::sync::watch::channel(0).0,
        });
        let shared = state.clone();
        let endpoint = aws_proxy::serve(move |request| handle(shared.clone(), request)).await;
        FaultProxy { endpoint, state }
    }

    /// Faults this share (0.0 to 1.0) of IAM and STS calls from now on.
    pub fn set_rate(&self, share: f64) {
        self.state.rate.store((share * 1000.0) as u32, Ordering::Relaxed);
    }

    /// Faults this share of the IAM and STS calls of `account` from now on.
    pub fn set_account_rate(&self, account: &str, share: f64) {
        self.state.account_rates.lock().unwrap().insert(account.to_string(), (share * 1000.0) as u32);
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.log.lock().unwrap().clone()
    }

    /// Throttles the write calls (not Get, List, Describe) of `service` to
    /// `per_second` per account, as AWS does: a call over the rate is
    /// answered `Throttling` without reaching moto. A bucket of one second's calls.
    pub fn throttle_writes(&self, service: &str, per_second: f64) {
        *self.state.write_rate.lock().unwrap() = Some((service.to_string(), Rate::new(per_second)));
    }

    /// Faults the next call of `action` with `fault`, once.
    pub fn fault_next(&self, action: &str, fault: Fault) {
        self.state.next_faults.lock().unwrap().push((action.to_string(), fault));
    }

    /// Answers calls of `action` (a JSON-protocol call, e.g. sso-admin's
    /// `ListTagsForResource`, which moto does not implement) whose parameters
    /// name `resource` (any call of `action` when None) with `body`, instead of
    /// moto's answer. The call still goes to moto first, so that under IAM
    /// enforcement a denial (403) is answered as moto gives it. The latest
    /// answer set for a call wins.
    pub fn answer(&self, action: &str, resource: Option<&str>, body: serde_json::Value) {
        let canned = Canned { action: action.to_string(), resource: resource.map(str::to_string), body };
        self.state.answers.lock().unwrap().push(canned);
    }

    /// A slow AWS: calls of `action` reach moto and are carried out, but their
    /// answers are held back until [`Self::release`].
    pub fn hold_answers(&self, action: &str) {
        *self.state.held_action.lock().unwrap() = Some(action.to_string());
    }

    /// Waits until an answer is being held back.
    pub async fn holding(&self) {
        while self.state.holding.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Answers being held back now.
    pub fn held(&self) -> u32 {
        self.state.holding.load(Ordering::SeqCst)
    }

    /// Lets the held answers go, and holds no more.
    pub fn release(&self) {
        *self.state.held_action.lock().unwrap() = None;
        self.state.released.send_modify(|generation| *generation += 1);
    }
}

async fn handle(state: Arc<ProxyState>, request: Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let call = AwsCall::read(&parts, &body);
    let account = state.accounts.of(&call.key);
    let faultable = call.service == "iam" || call.service == "sts";
    let rate = account
        .as_ref()
        .and_then(|a| state.account_rates.lock().unwrap().get(a).copied())
        .unwrap_or_else(|| state.rate.load(Ordering::Relaxed));
    let planned = {
        let mut next = state.next_faults.lock().unwrap();
        next.iter().position(|(a, _)| *a == call.action).map(|i| next.remove(i).1)
    };
    let over_rate = over_write_rate(&state, &call, account.as_deref().unwrap_or_default());
    let fault = planned.or(over_rate.then_some(Fault::Throttle)).or_else(|| {
        (faultable && rand::random_range(0..1000) < rate).then(|| FAULTS[rand::random_range(0..FAULTS.len())])
    });
    let mut exchange = Exchange {
        service: call.service.clone(),
        action: call.action.clone(),
        params: call.params.clone(),
        fault,
        upstream_status: None,
        account,
        at: std::time::Instant::now(),
    };
    let held = state.held_action.lock().unwrap().as_deref() == Some(exchange.action.as_str());
    // Subscribed before the call goes on, so that a release meanwhile is not missed.
    let mut released = state.released.subscribe();

    let reply = match fault {
        Some(Fault::Throttle) => Some(aws_proxy::query_error(400, "Throttling", "Rate exceeded")),
        Some(Fault::InternalError) => Some(aws_proxy::query_error(500, "InternalFailure", "injected failure")),
        Some(Fault::Unavailable) => Some(aws_proxy::query_error(503, "ServiceUnavailable", "injected outage")),
        Some(Fault::Conflict) => Some(aws_proxy::json_error(409, "ConflictException", "an operation is in progress")),
        Some(Fault::ResetBefore) => None,
        _ => {
            let forwarded = aws_proxy::forward(&state.client, &state.upstream, &parts, body).await;
            exchange.upstream_status = forwarded.as_ref().map(|(r, _)| r.status().as_u16());
            if let Some((_, answer)) = &forwarded {
                state.accounts.learn(&call, answer);
            }
            match (canned(&state, &exchange), exchange.upstream_status) {
                (Some(body), Some(status)) if status != 403 => Some(json_answer(&body)),
                _ => forwarded.map(|(reply, _)| reply),
            }
        }
    };
    state.log.lock().unwrap().push(exchange);
    if held {
        state.holding.fetch_add(1, Ordering::SeqCst);
        let _ = released.changed().await;
        state.holding.fetch_sub(1, Ordering::SeqCst);
    }
    match (fault, reply) {
        (Some(Fault::ResetBefore | Fault::ResetAfter), _) | (_, None) => {
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset"))
        }
        (Some(Fault::Slow), Some(reply)) => {
            tokio::time::sleep(state.delay).await;
            Ok(reply)
        }
        (_, Some(reply)) => Ok(reply),
    }
}

/// Whether this call is a write of the throttled service over its account's rate (taking a token if not).
fn over_write_rate(state: &ProxyState, call: &AwsCall, account: &str) -> bool {
    let mut limit = state.write_rate.lock().unwrap();
    let Some((throttled, rate)) = limit.as_mut() else { return false };
    *throttled == call.service && !call.is_read() && !rate.take(account)
}

/// The canned answer for this call, if one was set.
fn canned(state: &ProxyState, exchange: &Exchange) -> Option<serde_json::Value> {
    let answers = state.answers.lock().unwrap();
    answers
        .iter()
        .rev()
        .find(|c| {
            c.action == exchange.action && c.resource.as_ref().is_none_or(|r| exchange.params.values().any(|v| v == r))
        })
        .map(|c| c.body.clone())
}

/// A JSON-protocol answer (awsJson1_1), as AWS sends it.
fn json_answer(body: &serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(200)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// A TCP proxy to Postgres that can be "stopped": connections are cut and new
/// ones refused, as when the database goes down.
pub struct DatabaseProxy {
    pub port: u16,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<JoinSet<()>>>,
}

impl DatabaseProxy {
    pub async fn start(upstream: &str) -> DatabaseProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let (flag, set, upstream) = (down.clone(), connections.clone(), upstream.to_string());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                if flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                set.lock().unwrap().spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        DatabaseProxy { port, down, connections }
    }

    /// Cuts every connection and refuses new ones, until `up`.
    pub fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.connections.lock().unwrap().abort_all();
    }

    pub fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}
