//! A webhook receiver on loopback: records every request and answers as the
//! test says (a status, a status with `Retry-After`, or no answer at all).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    /// A status with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// The request is read and never answered.
    Hang,
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    pub answer: Answer,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }

    pub fn webhook_id(&self) -> String {
        self.header("webhook-id")
    }

    /// Checks the signature with the Standard Webhooks reference library (not jit-iam's own code).
    pub fn verify(&self, secret: &str) -> Result<(), String> {
        let webhook = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
        webhook.verify(&self.body, &self.headers).map_err(|e| e.to_string())
    }
}

#[derive(Default)]
struct Script {
    next: VecDeque<Answer>,
    otherwise: Option<Answer>,
}

pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    /// Answers 200 until told otherwise.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/jit-iam", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(Script::default()));
        let (sink, answers) = (received.clone(), script.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (sink, answers) = (sink.clone(), answers.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let (sink, answers) = (sink.clone(), answers.clone());
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let answer = {
                                let mut script = answers.lock().unwrap();
                                script.next.pop_front().or(script.otherwise).unwrap_or(Answer::Status(200))
                            };
                            let at = Instant::now();
                            sink.lock().unwrap().push(Received { headers: parts.headers, body, at, answer });
                            let response = match answer {
                                Answer::Hang => std::future::pending().await,
                                Answer::Status(status) => Response::builder().status(status),
                                Answer::RetryAfter(status, seconds) => {
                                    Response::builder().status(status).header("retry-after", seconds.to_string())
                                }
                            };
                            Ok::<_, hyper::Error>(response.body(Full::new(Bytes::from_static(b"received"))).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { url, received, script }
    }

    /// Answers these to the next requests, in order, then as before.
    pub fn answer_next(&self, answers: &[Answer]) {
        self.script.lock().unwrap().next.extend(answers.iter().copied());
    }

    /// Answers this to every request from now on (after the queued ones).
    pub fn answer_always(&self, answer: Answer) {
        self.script.lock().unwrap().otherwise = Some(answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The requests whose body has this event type.
    pub fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.json()["type"] == event_type).collect()
    }

    /// Waits until `count` requests have arrived; fails the test after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let what = format!("{count} webhook requests at {}", self.url);
        super::eventually(timeout, &what, || async {
            let received = self.received();
            (received.len() >= count).then_some(received)
        })
        .await
    }
}
