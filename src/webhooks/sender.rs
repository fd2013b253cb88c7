//! Sending an attempt: one HTTP client that reaches only the addresses the
//! rules allow. A host name's addresses are checked after resolution, on
//! every connection, and the connection goes to exactly those addresses (no
//! second lookup a rebinding DNS server could answer differently); address
//! literals are checked before each attempt; redirects are never followed and
//! no proxy from the environment is used.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use tokio::time::Instant;

use super::destination::{check_url, resolve_checked, CheckedResolver, DestinationRules};
use super::signing::{signature_header, WebhookSecret};

/// No answer within this time is a failure.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// What is kept of a receiver's answer.
pub const MAX_RESPONSE_BYTES: usize = 1024;

/// What one attempt learnt.
#[derive(Debug)]
pub struct Attempt {
    /// Unix seconds sent as `webhook-timestamp`.
    pub timestamp: i64,
    pub duration: Duration,
    pub outcome: AttemptOutcome,
}

#[derive(Debug)]
pub enum AttemptOutcome {
    Answered {
        status: u16,
        /// At most `MAX_RESPONSE_BYTES` of the body.
        body: String,
        /// `Retry-After` of a 429 or 503.
        retry_after: Option<Duration>,
    },
    /// No answer: refused address, network error, timeout.
    NoAnswer { error: String },
}

impl AttemptOutcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, AttemptOutcome::Answered { status: 200..=299, .. })
    }
}

/// The one client every delivery goes through.
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
    rules: DestinationRules,
}

impl Sender {
    pub fn new(rules: DestinationRules) -> Self {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver { rules }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("jit-iam-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the webhook HTTP client builds");
        Self { client, rules }
    }

    pub fn rules(&self) -> DestinationRules {
        self.rules
    }

    /// Checks a URL as a delivery would, DNS included (at registration).
    pub async fn check_destination(&self, url: &str) -> Result<(), String> {
        let url = check_url(url, self.rules).map_err(|e| e.message)?;
        // Resolving only tells public addresses from others.
        if self.rules.allow_private_networks {
            return Ok(());
        }
        if let Some(url::Host::Domain(host)) = url.host() {
            resolve_checked(host, self.rules).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// POSTs `body` to `url`, signed with each of `secrets`.
    pub async fn send(&self, url: &str, message_id: &str, body: &[u8], secrets: &[WebhookSecret]) -> Attempt {
        let timestamp = chrono::Utc::now().timestamp();
        let started = Instant::now();
        let outcome = match self.post(url, message_id, timestamp, body, secrets).await {
            Ok(outcome) => outcome,
            Err(error) => AttemptOutcome::NoAnswer { error },
        };
        Attempt { timestamp, duration: started.elapsed(), outcome }
    }

    async fn post(
        &self,
        url: &str,
        message_id: &str,
        timestamp: i64,
        body: &[u8],
        secrets: &[WebhookSecret],
    ) -> Result<AttemptOutcome, String> {
        // The rules may have changed since the URL was registered.
        let url = check_url(url, self.rules).map_err(|e| e.message)?;
        let mut response = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature_header(secrets, message_id, timestamp, body))
            .body(body.to_vec())
            .send()
            .await
            .map_err(describe)?;
        let status = response.status().as_u16();
        let retry_after = matches!(status, 429 | 503).then(|| retry_after(response.headers())).flatten();
        let mut kept = Vec::new();
        while kept.len() < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                // The status is what counts; a body cut short does not change it.
                Ok(None) | Err(_) => break,
            }
        }
        kept.truncate(MAX_RESPONSE_BYTES);
        Ok(AttemptOutcome::Answered { status, body: String::from_utf8_lossy(&kept).into_owned(), retry_after })
    }
}

/// An error with its causes ("error sending request: ...: 127.0.0.1 is not a public address").
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs());
    }
    // The URL may carry a token in its query: the attempt log never shows it.
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `Retry-After` in seconds or as an HTTP date, at most a day.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or_default()
        }
    };
    Some(delay.min(Duration::from_secs(86_400)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_unless_allowed() {
        let strict = Sender::new(DestinationRules { allow_http: true, allow_private_networks: false });
        let error = strict.check_destination("http://localhost:9/hooks").await.unwrap_err();
        assert!(error.contains("is not a public address"), "{error}");
        let open = Sender::new(DestinationRules { allow_http: true, allow_private_networks: true });
        assert_eq!(open.check_destination("http://localhost:9/hooks").await, Ok(()));
        assert_eq!(open.check_destination("https://no-such-host.invalid/hooks").await, Ok(()));
        // At delivery too, after resolution: the attempt fails without a connection.
        let attempt = strict.send("http://localhost:9/hooks", "m", b"{}", &[WebhookSecret(vec![1; 32])]).await;
        match attempt.outcome {
            AttemptOutcome::NoAnswer { error } => assert!(error.contains("is not a public address"), "{error}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc2822();
        headers.insert(RETRY_AFTER, soon.parse().unwrap());
        assert!(retry_after(&headers).is_some_and(|d| d > Duration::from_secs(50)));
        headers.insert(RETRY_AFTER, "later".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
