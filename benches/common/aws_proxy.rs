//! What the benchmarks' latency proxy (`latency.rs`) and the tests' fault
//! proxy (`tests/it/support/faults.rs`) share: an HTTP server in front of
//! moto, each AWS call read (whose keys, which service and action, its
//! parameters), forwarded as the caller signed it, AWS's error answers, the
//! accounts learnt from sts:AssumeRole answers, and per-account write buckets.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub type Answer = Result<Response<Full<Bytes>>, std::io::Error>;

/// Serves every connection on loopback with `handler`; answers the endpoint.
pub async fn serve<H, F>(handler: H) -> String
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Answer> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handler);
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    endpoint
}

/// One AWS call, as read from its request.
#[derive(Clone, Debug)]
pub struct AwsCall {
    /// The access key id that signed it.
    pub key: String,
    /// The SigV4 signing name: `iam`, `sts`, `sso`, ...
    pub service: String,
    pub action: String,
    /// The form's fields (query protocol), or the JSON body's top-level strings.
    pub params: BTreeMap<String, String>,
    pub json_protocol: bool,
}

impl AwsCall {
    pub fn read(parts: &Parts, body: &Bytes) -> AwsCall {
        // Credential=<access key id>/<date>/<region>/<service>/aws4_request
        let credential: Vec<&str> = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("Credential=").nth(1))
            .map(|c| c.split('/').collect())
            .unwrap_or_default();
        // Query protocol (IAM, STS, EC2): a form with `Action`. JSON protocol
        // (sso-admin, identitystore, organizations): `X-Amz-Target: Service.Action`.
        let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
        let params: BTreeMap<String, String> = match target {
            Some(_) => serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
                .collect(),
            None => form_urlencoded::parse(body).into_owned().collect(),
        };
        let action = match target {
            Some(target) => target.rsplit('.').next().unwrap_or_default().to_string(),
            None => params.get("Action").cloned().unwrap_or_default(),
        };
        AwsCall {
            key: credential.first().copied().unwrap_or_default().to_string(),
            service: credential.get(3).copied().unwrap_or_default().to_string(),
            action,
            params,
            json_protocol: target.is_some(),
        }
    }

    /// Get, List, Describe: AWS throttles the other calls, the writes, apart.
    pub fn is_read(&self) -> bool {
        ["Get", "List", "Describe"].iter().any(|read| self.action.starts_with(read))
    }
}

/// moto's answer to the call as the caller signed it (every header, Host
/// included: moto checks signatures under IAM enforcement), and its body.
pub async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    parts: &Parts,
    body: Bytes,
) -> Option<(Response<Full<Bytes>>, Bytes)> {
    let url = format!("{upstream}{}", parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut request = client.request(parts.method.clone(), url).body(body);
    for (name, value) in &parts.headers {
        request = request.header(name, value);
    }
    let answer = request.send().await.ok()?;
    let mut reply = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "connection" {
            reply = reply.header(name, value);
        }
    }
    let body = answer.bytes().await.ok()?;
    Some((reply.body(Full::new(body.clone())).ok()?, body))
}

/// Whose keys are whose: access key id -> account, learnt from sts:AssumeRole answers.
#[derive(Default)]
pub struct Accounts(Mutex<HashMap<String, String>>);

impl Accounts {
    /// Remembers the keys an AssumeRole answer holds as its RoleArn's account.
    pub fn learn(&self, call: &AwsCall, answer: &Bytes) {
        if call.action != "AssumeRole" {
            return;
        }
        let answer = String::from_utf8_lossy(answer);
        let key = answer.split("<AccessKeyId>").nth(1).and_then(|rest| rest.split('<').next());
        let account = call.params.get("RoleArn").and_then(|arn| arn.split(':').nth(4));
        if let (Some(key), Some(account)) = (key, account) {
            self.0.lock().unwrap().insert(key.to_string(), account.to_string());
        }
    }

    pub fn of(&self, key: &str) -> Option<String> {
        self.0.lock().unwrap().get(key).cloned()
    }
}

/// Calls allowed per second per account: a bucket of one second's calls each.
pub struct Rate {
    pub per_second: f64,
    buckets: HashMap<String, (f64, Instant)>,
}

impl Rate {
    pub fn new(per_second: f64) -> Rate {
        Rate { per_second, buckets: HashMap::new() }
    }

    /// Takes a token from the account's bucket; false when it is empty (the call is over the rate).
    pub fn take(&mut self, account: &str) -> bool {
        let now = Instant::now();
        let (tokens, at) = self.buckets.entry(account.to_string()).or_insert((self.per_second, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.per_second);
        *at = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

/// AWS's throttling answer, in the call's protocol.
pub fn throttling(call: &AwsCall) -> Response<Full<Bytes>> {
    match call.json_protocol {
        true => json_error(400, "ThrottlingException", "Rate exceeded"),
        false => query_error(400, "Throttling", "Rate exceeded"),
    }
}

/// A query-protocol error (IAM, STS), as AWS words it.
pub fn query_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        uuid::Uuid::new_v4()
    );
    Response::builder().status(status).header("content-type", "text/xml").body(Full::new(Bytes::from(body))).unwrap()
}

/// A JSON-protocol error (awsJson1_1), as AWS sends it.
pub fn json_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"__type": code, "Message": message});
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-errortype", code)
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}
