//! Large and slow requests: a body over the limit is refused, a stalled body
//! is answered with a JSON error, and a client that never finishes its request
//! head is disconnected. Raw TCP, to control every byte and every pause.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error_code;
use crate::support::{Moto, TestServer};

/// The server's default body limit (JIT_IAM_MAX_BODY_BYTES).
const BODY_LIMIT: usize = 64 * 1024;
/// tower-http's RequestBodyTimeoutLayer in src/api/mod.rs: longest pause between two body frames.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The header read timeout in src/server/mod.rs: a request head must arrive within it.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect(server: &TestServer) -> TcpStream {
    let stream = TcpStream::connect(server.url.trim_start_matches("http://")).await.expect("connect to jit-iam");
    stream.set_nodelay(true).unwrap();
    stream
}

/// A parsed HTTP/1.1 response.
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {}", self.status, self.headers, String::from_utf8_lossy(&self.body))
    }
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into()))
    }
}

/// Reads until the server closes the connection (every request here says
/// `Connection: close`, or is an error the server ends the connection on),
/// or `limit` passes. Returns the bytes, and whether the connection ended.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (received, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => {
                received.extend_from_slice(&buf[..n]);
                // A complete response with a body of known length: done.
                if let Some(response) = parse(&received) {
                    if response.header("content-length").and_then(|l| l.parse::<usize>().ok())
                        == Some(response.body.len())
                    {
                        return (received, false);
                    }
                }
            }
        }
    }
}

fn parse(bytes: &[u8]) -> Option<RawResponse> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Some(RawResponse { status, headers, body: bytes[end + 4..].to_vec() })
}

/// A request head for `path` with the test token and a JSON content type.
fn head(server: &TestServer, method: &str, path: &str, framing: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: jit-iam\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n",
        server.token
    )
}

/// A well-formed integration whose name pads the body to about `size` bytes.
fn padded_integration(size: usize) -> Vec<u8> {
    let body = json!({
        "name": "x".repeat(size.saturating_sub(300)),
        "connection": "single_account",
        "root_account": {
            "account_id": "123456789012",
            "access_role_arn": "arn:aws:iam::123456789012:role/jit-iam-access",
            "external_id": "external-id-123",
            "region": "us-east-1"
        },
        "options": {"regions": ["us-east-1"]}
    });
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let server = TestServer::start().await;
    let id = uuid::Uuid::new_v4();
    let big = padded_integration(BODY_LIMIT + 4096);
    assert!(big.len() > BODY_LIMIT);
    // Every operation with a body, with the size in Content-Length.
    for (method, path) in [
        ("POST", "/v1/integrations".to_string()),
        ("PATCH", format!("/v1/integrations/{id}")),
        ("POST", "/v1/grants".to_string()),
        ("POST", "/v1/grants/preview".to_string()),
        ("POST", format!("/v1/grants/{id}/extend")),
    ] {
        let request = server
            .client
            .request(method.parse().unwrap(), format!("{}{path}", server.url))
            .bearer_auth(&server.token)
            .header("content-type", "application/json")
            .body(big.clone());
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!((status, error_code(&body)), (413, Some("payload_too_large")), "{method} {path}: {body}");
    }

    // Chunked: no length announced, the limit still holds.
    let mut stream = connect(&server).await;
    stream.write_all(head(&server, "POST", "/v1/integrations", "Transfer-Encoding: chunked").as_bytes()).await.unwrap();
    for chunk in big.chunks(8192) {
        if stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.is_err()
            || stream.write_all(chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break; // the server may answer and close before the whole body is sent
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let (bytes, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    let response = parse(&bytes)
        .unwrap_or_else(|| panic!("no response to a chunked oversized body: {:?}", String::from_utf8_lossy(&bytes)));
    assert_eq!((response.status, error_code(&response.json())), (413, Some("payload_too_large")), "{response:?}");

    // Control: just under the limit, the body is read and judged on its content.
    let under = padded_integration(BODY_LIMIT - 1024);
    assert!(under.len() < BODY_LIMIT);
    let response = server
        .client
        .post(format!("{}/v1/integrations", server.url))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(under)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!((status, error_code(&body)), (422, Some("validation_failed")), "{body}");
}

/// A Content-Length far over the limit is refused at once, before any byte of the
/// body: the server neither waits for the body nor reads 64 KiB of it first.
#[tokio::test]
async fn an_announced_length_over_the_limit_is_refused_at_once() {
    let server = TestServer::start().await;
    let started = Instant::now();
    let mut stream = connect(&server).await;
    stream.write_all(head(&server, "POST", "/v1/grants", "Content-Length: 10000000000").as_bytes()).await.unwrap();
    let (bytes, _) = read_until_closed(&mut stream, BODY_TIMEOUT + Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    let response = parse(&bytes).unwrap_or_else(|| panic!("no answer to a huge Content-Length after {elapsed:?}"));
    assert_eq!(
        (response.status, error_code(&response.json())),
        (413, Some("payload_too_large")),
        "after {elapsed:?}: {response:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "answered after {elapsed:?}");
}

/// The head, then one byte of the body, then nothing: after the body timeout
/// the client gets 408 and the connection ends.
#[tokio::test]
async fn a_stalled_body_is_answered_with_a_json_error_after_the_body_timeout() {
    let server = TestServer::start().await;
    let mut stream = connect(&server).await;
    stream.write_all(head(&server, "POST", "/v1/integrations", "Content-Length: 200").as_bytes()).await.unwrap();
    stream.write_all(b"{").await.unwrap();
    let stalled = Instant::now();
    let (bytes, _) = read_until_closed(&mut stream, BODY_TIMEOUT + Duration::from_secs(5)).await;
    let waited = stalled.elapsed();
    let response = parse(&bytes).unwrap_or_else(|| {
        panic!("no answer {waited:?} after the body stalled: {:?}", String::from_utf8_lossy(&bytes))
    });
    assert_eq!((response.status, error_code(&response.json())), (408, Some("request_timeout")), "{response:?}");
    assert!(
        waited >= BODY_TIMEOUT - Duration::from_secs(1) && waited < BODY_TIMEOUT + Duration::from_secs(3),
        "answered {waited:?} after the body stalled; the body timeout is {BODY_TIMEOUT:?}"
    );
}

/// A body trickled faster than the body timeout, never finishing, is cut off by
/// the whole-request timeout (JIT_IAM_REQUEST_TIMEOUT) with 408.
#[tokio::test]
async fn a_trickled_body_is_cut_off_by_the_request_timeout() {
    let server = TestServer::builder(Moto::shared()).env("JIT_IAM_REQUEST_TIMEOUT", "3s").start().await;
    let mut stream = connect(&server).await;
    // Under the body limit, so that only the time is at fault.
    stream.write_all(head(&server, "POST", "/v1/grants", "Content-Length: 60000").as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut sent = 0;
    let mut answer = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        if stream.write_all(b" ").await.is_err() {
            break;
        }
        sent += 1;
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                let (rest, _) = read_until_closed(&mut stream, Duration::from_secs(2)).await;
                answer.extend_from_slice(&rest);
                break;
            }
            Err(_) => {}
        }
    }
    let elapsed = started.elapsed();
    let response = parse(&answer).unwrap_or_else(|| panic!("no answer after {elapsed:?} and {sent} bytes trickled"));
    assert_eq!((response.status, error_code(&response.json())), (408, Some("request_timeout")), "{response:?}");
    assert!(elapsed < Duration::from_secs(6), "cut off after {elapsed:?}, the request timeout is 3s");
}

/// Slow-header clients (slowloris): part of a head, or a head trickled byte by
/// byte, are disconnected once the header read timeout has passed.
#[tokio::test]
async fn an_unfinished_request_head_is_disconnected_after_the_header_timeout() {
    let server = TestServer::start().await;
    let partial = async {
        let mut stream = connect(&server).await;
        stream.write_all(b"POST /v1/grants HTTP/1.1\r\nHost: jit-iam\r\nContent-Type: appl").await.unwrap();
        let started = Instant::now();
        let (bytes, closed) = read_until_closed(&mut stream, HEADER_READ_TIMEOUT + Duration::from_secs(5)).await;
        (started.elapsed(), closed, bytes)
    };
    let trickled = async {
        let mut stream = connect(&server).await;
        let started = Instant::now();
        let head = format!(
            "GET /v1/integrations HTTP/1.1\r\nHost: jit-iam\r\nAuthorization: Bearer {}\r\nX-Padding: {}",
            server.token,
            "p".repeat(200)
        );
        let mut closed = false;
        for byte in head.as_bytes().iter().cycle() {
            if started.elapsed() > HEADER_READ_TIMEOUT + Duration::from_secs(5) {
                break;
            }
            if stream.write_all(&[*byte]).await.is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 1024];
            match tokio::time::timeout(Duration::from_millis(250), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        (started.elapsed(), closed)
    };
    let ((partial_after, partial_closed, partial_bytes), (trickled_after, trickled_closed)) =
        tokio::join!(partial, trickled);
    println!("partial head: closed={partial_closed} after {partial_after:?}; trickled head: closed={trickled_closed} after {trickled_after:?}");
    assert!(partial_closed, "a partial head was still open after {partial_after:?}");
    let window = HEADER_READ_TIMEOUT - Duration::from_secs(1)..HEADER_READ_TIMEOUT + Duration::from_secs(2);
    assert!(window.contains(&partial_after), "a partial head was closed after {partial_after:?}");
    // Whatever the server says on the way out is never a success.
    if let Some(response) = parse(&partial_bytes) {
        assert!(response.status >= 400, "{response:?}");
    }
    assert!(trickled_closed, "a trickled head was still open after {trickled_after:?}");
    assert!(window.contains(&trickled_after), "a trickled head was closed after {trickled_after:?}");

    // The server still serves.
    let (status, _) = server.get("/v1/integrations").await;
    assert_eq!(status, 200);
}

/// A connection that sends nothing, or only the start of the HTTP/2 preface,
/// or the HTTP/2 preface and then nothing, must not be held open for ever:
/// each one costs a task and a file descriptor, and enough of them stop
/// `accept`.
#[tokio::test]
async fn idle_and_http2_connections_are_disconnected_after_the_header_timeout() {
    let server = TestServer::start().await;
    let limit = HEADER_READ_TIMEOUT + Duration::from_secs(5);
    let idle = async {
        let mut stream = connect(&server).await;
        let started = Instant::now();
        let (_, closed) = read_until_closed_ignoring_data(&mut stream, limit).await;
        ("nothing sent", closed, started.elapsed())
    };
    let preface_start = async {
        let mut stream = connect(&server).await;
        stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        let started = Instant::now();
        let (_, closed) = read_until_closed_ignoring_data(&mut stream, limit).await;
        ("part of the HTTP/2 preface", closed, started.elapsed())
    };
    let http2 = async {
        let mut stream = connect(&server).await;
        // The preface and an empty SETTINGS frame, then no request.
        stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
        let started = Instant::now();
        let (_, closed) = read_until_closed_ignoring_data(&mut stream, limit).await;
        ("the HTTP/2 preface", closed, started.elapsed())
    };
    let results = tokio::join!(idle, preface_start, http2);
    let results = [results.0, results.1, results.2];
    println!("{results:?}");
    let open: Vec<_> = results
        .iter()
        .filter(|(_, closed, _)| !closed)
        .map(|(what, _, after)| format!("{what}: still open after {after:?}"))
        .collect();
    assert!(open.is_empty(), "connections held open past the header read timeout:\n{}", open.join("\n"));
}

/// A kept-alive connection idle for longer than the header timeout is still
/// served (a client or load balancer reusing it must not race the server
/// closing it), and is closed after JIT_IAM_HTTP_IDLE_TIMEOUT; a head started
/// on it must still arrive within the header timeout of its first byte.
#[tokio::test]
async fn a_kept_alive_connection_outlives_the_header_timeout_but_not_the_idle_timeout() {
    const IDLE_TIMEOUT: Duration = Duration::from_secs(16);
    let server = TestServer::builder(Moto::shared()).env("JIT_IAM_HTTP_IDLE_TIMEOUT", "16s").start().await;
    let reused = async {
        let mut stream = connect(&server).await;
        served_on(&mut stream, &server).await;
        tokio::time::sleep(HEADER_READ_TIMEOUT + Duration::from_secs(2)).await;
        served_on(&mut stream, &server).await;
        let started = Instant::now();
        let (_, closed) = read_until_closed_ignoring_data(&mut stream, IDLE_TIMEOUT + Duration::from_secs(5)).await;
        (closed, started.elapsed())
    };
    let slow_second_head = async {
        let mut stream = connect(&server).await;
        served_on(&mut stream, &server).await;
        stream.write_all(b"GET /v1/integrations HTTP/1.1\r\nHost: jit").await.unwrap();
        let started = Instant::now();
        let (_, closed) = read_until_closed_ignoring_data(&mut stream, IDLE_TIMEOUT + Duration::from_secs(5)).await;
        (closed, started.elapsed())
    };
    let ((idle_closed, idle_after), (head_closed, head_after)) = tokio::join!(reused, slow_second_head);
    println!(
        "idle: closed={idle_closed} after {idle_after:?}; slow second head: closed={head_closed} after {head_after:?}"
    );
    let idle_window = IDLE_TIMEOUT - Duration::from_secs(1)..IDLE_TIMEOUT + Duration::from_secs(3);
    assert!(
        idle_closed && idle_window.contains(&idle_after),
        "idle connection closed={idle_closed} after {idle_after:?}"
    );
    let head_window = HEADER_READ_TIMEOUT - Duration::from_secs(1)..HEADER_READ_TIMEOUT + Duration::from_secs(2);
    assert!(head_closed && head_window.contains(&head_after), "slow head closed={head_closed} after {head_after:?}");
}

/// Sends a request on a kept-alive connection and checks it is answered 200.
async fn served_on(stream: &mut TcpStream, server: &TestServer) {
    let request =
        format!("GET /v1/integrations HTTP/1.1\r\nHost: jit-iam\r\nAuthorization: Bearer {}\r\n\r\n", server.token);
    stream.write_all(request.as_bytes()).await.unwrap();
    let (bytes, closed) = read_until_closed(stream, Duration::from_secs(5)).await;
    assert!(!closed, "the kept-alive connection was closed: {}", String::from_utf8_lossy(&bytes));
    assert_eq!(parse(&bytes).map(|r| r.status), Some(200), "{}", String::from_utf8_lossy(&bytes));
}

/// Reads whatever comes (HTTP/1 or HTTP/2 frames) until the server closes the connection or `limit` passes.
async fn read_until_closed_ignoring_data(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (received, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}
