//! Webhooks to the approval portal: endpoints, the events they are sent, the
//! rules for where jit-iam may send them, and Standard Webhooks signing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use uuid::Uuid;

use super::grant::Grant;
use super::{text_enum, FieldError};

/// What happened. Stable names: receivers switch on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    /// The grant's access is in IAM.
    #[serde(rename = "grant.activated")]
    GrantActivated,
    /// The grant could not be applied; whatever was done is undone (`last_error` says why).
    #[serde(rename = "grant.failed")]
    GrantFailed,
    /// The grant's access is gone (`revoke_reason`: expired, revoked, integration_deleted).
    #[serde(rename = "grant.revoked")]
    GrantRevoked,
    /// A revocation failed for the first time; it is retried until it succeeds.
    #[serde(rename = "grant.revoke_failing")]
    GrantRevokeFailing,
    /// A revocation that had failed succeeded (`grant.revoked` or `grant.failed` follows too).
    #[serde(rename = "grant.revoke_recovered")]
    GrantRevokeRecovered,
    /// The expiry moved (`expires_at` is the new one).
    #[serde(rename = "grant.extended")]
    GrantExtended,
    /// The grant expires within `JIT_IAM_EXPIRY_NOTICE` (once per expiry).
    #[serde(rename = "grant.expiring")]
    GrantExpiring,
    /// Reconciliation found the grant's access differs from IAM.
    #[serde(rename = "grant.drift_detected")]
    GrantDriftDetected,
    /// Reconciliation put the grant's access back.
    #[serde(rename = "grant.drift_repaired")]
    GrantDriftRepaired,
    /// An account of an inventory sync failed.
    #[serde(rename = "sync.failed")]
    SyncFailed,
    /// Sent by `POST /v1/webhooks/{id}/test`, whatever the endpoint's event types.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

text_enum!(EventType {
    GrantActivated = "grant.activated",
    GrantFailed = "grant.failed",
    GrantRevoked = "grant.revoked",
    GrantRevokeFailing = "grant.revoke_failing",
    GrantRevokeRecovered = "grant.revoke_recovered",
    GrantExtended = "grant.extended",
    GrantExpiring = "grant.expiring",
    GrantDriftDetected = "grant.drift_detected",
    GrantDriftRepaired = "grant.drift_repaired",
    SyncFailed = "sync.failed",
    WebhookTest = "webhook.test",
});

/// Why an endpoint receives nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// Disabled through the API (`"enabled": false`).
    Manual,
    /// The receiver answered 410 Gone.
    Gone,
    /// Every attempt failed for `JIT_IAM_WEBHOOK_DISABLE_AFTER`.
    Failing,
}

text_enum!(DisabledReason { Manual = "manual", Gone = "gone", Failing = "failing" });

/// A receiver of events.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    #[schema(example = "https://portal.example.com/hooks/jit-iam")]
    pub url: String,
    #[schema(required = true)]
    pub description: Option<String>,
    /// The event types sent to it; null: all of them.
    #[schema(required = true)]
    pub event_types: Option<Vec<EventType>>,
    /// False: nothing is sent (`disabled_reason` says why); deliveries waiting stay pending.
    pub enabled: bool,
    #[schema(required = true)]
    pub disabled_reason: Option<DisabledReason>,
    /// Since when every attempt has failed; null after a success.
    #[schema(required = true)]
    pub failing_since: Option<DateTime<Utc>>,
    /// Until then deliveries also carry a signature made with the secret before the last rotation.
    #[schema(required = true)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint with its signing secret: answered only at creation and rotation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookEndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_` + base64), for a Standard Webhooks verifier. Shown only now.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or its endpoint to be enabled again).
    Pending,
    Succeeded,
    /// Every attempt of the retry schedule failed, or the endpoint answered 410.
    Failed,
}

text_enum!(DeliveryStatus { Pending = "pending", Succeeded = "succeeded", Failed = "failed" });

/// One event sent to one endpoint, with every attempt.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// Sent as `webhook-id`, the same on every attempt: the receiver's idempotency key.
    pub message_id: Uuid,
    pub event_type: EventType,
    /// The grant the event is about, for grant events.
    #[schema(required = true)]
    pub grant_id: Option<Uuid>,
    pub status: DeliveryStatus,
    /// When the event happened.
    pub occurred_at: DateTime<Utc>,
    /// When the next attempt is due (pending deliveries).
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    pub duration_ms: i32,
    /// The receiver's HTTP status; null when no answer came.
    #[schema(required = true)]
    pub http_status: Option<i32>,
    /// Why no answer came (network error, timeout, refused address).
    #[schema(required = true)]
    pub error: Option<String>,
    /// At most 1 KB of the receiver's answer.
    #[schema(required = true)]
    pub response_body: Option<String>,
}

/// The body of every webhook (Standard Webhooks payload structure).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventBody<D> {
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the event happened (not when it is sent).
    pub timestamp: DateTime<Utc>,
    pub data: D,
}

/// `data` of the grant events: the grant exactly as `GET /v1/grants/{id}`
/// returned it at that moment, and the event's place among the grant's events.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GrantEventData {
    #[serde(flatten)]
    pub grant: Grant,
    /// Grows with each event of one grant: order a grant's events by it (they may arrive in any order).
    pub event_sequence: i64,
}

/// A webhook signing secret: random bytes, shown as `whsec_` + base64.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(pub Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// 32 random bytes (the specification asks for 24 to 64).
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn encoded(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(secrets: &[WebhookSecret], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|secret| secret.sign(message_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// Where webhooks may go, beyond `https` to public addresses.
#[derive(Clone, Copy, Debug, Default)]
pub struct DestinationRules {
    /// `JIT_IAM_WEBHOOK_ALLOW_HTTP`
    pub allow_http: bool,
    /// `JIT_IAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS`
    pub allow_private_networks: bool,
}

pub const MAX_URL_LENGTH: usize = 2048;

/// Checks what can be checked of a webhook URL without DNS: its form, and an
/// address literal's reach. A host name's addresses are checked after
/// resolution, on every attempt.
pub fn check_url(raw: &str, rules: DestinationRules) -> Result<url::Url, FieldError> {
    let refuse = |message: String| FieldError::new("url", message);
    check_form(raw, rules).map_err(refuse)?;
    let url = url::Url::parse(raw).map_err(|e| refuse(format!("not a URL: {e}")))?;
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) | None => None,
    };
    if let Some(ip) = literal {
        check_address(ip, rules).map_err(refuse)?;
    }
    Ok(url)
}

/// The form of a webhook URL, exactly as the document's pattern for `url` states it:
/// `https://<host>[:<port>][/<path>]`, the host a DNS name or an IPv4 address, the
/// path without spaces, control characters or a fragment. (No credentials, no IPv6
/// literal: portals have names.)
fn check_form(raw: &str, rules: DestinationRules) -> Result<(), String> {
    if raw.chars().count() > MAX_URL_LENGTH {
        return Err(format!("a webhook URL has at most {MAX_URL_LENGTH} characters"));
    }
    let rest = match raw.split_once("://") {
        Some(("https", rest)) => rest,
        Some(("http", rest)) if rules.allow_http => rest,
        Some(("http", _)) => return Err("webhooks go over https (JIT_IAM_WEBHOOK_ALLOW_HTTP=true allows http)".into()),
        _ => return Err("the URL must start with https://".into()),
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.contains('@') {
        return Err("a webhook URL may not carry credentials; the signature authenticates jit-iam".into());
    }
    if path.contains('#') {
        return Err("a webhook URL has no fragment (#...)".into());
    }
    if path.chars().any(|c| c <= ' ' || c == '\u{7f}') {
        return Err("the path may not contain spaces or control characters (percent-encode them)".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if !(is_dns_name(host) || is_ipv4(host)) {
        return Err("the host must be a DNS name or an IPv4 address (then an optional :port and /path)".into());
    }
    // 1-4 digits, or 10000-65535.
    let valid_port = |p: &str| {
        p.bytes().all(|b| b.is_ascii_digit())
            && (p.len() <= 4 || (p.len() == 5 && !p.starts_with('0') && p.parse::<u32>().is_ok_and(|n| n <= 65535)))
            && !p.is_empty()
    };
    if port.is_some_and(|p| !valid_port(p)) {
        return Err("the port must be a number up to 65535".into());
    }
    Ok(())
}

/// Labels of letters, digits and inner hyphens (1-63 characters), the last starting with a letter.
fn is_dns_name(host: &str) -> bool {
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label)
        && host.rsplit('.').next().is_some_and(|top| top.starts_with(|c: char| c.is_ascii_alphabetic()))
}

/// Four decimal octets, without leading zeros.
fn is_ipv4(host: &str) -> bool {
    let octet = |o: &str| {
        (1..=3).contains(&o.len())
            && o.bytes().all(|b| b.is_ascii_digit())
            && (o == "0" || !o.starts_with('0'))
            && o.parse::<u16>().is_ok_and(|n| n <= 255)
    };
    let octets: Vec<&str> = host.split('.').collect();
    octets.len() == 4 && octets.into_iter().all(octet)
}

/// Refuses an address webhooks may not reach under `rules`.
pub fn check_address(ip: IpAddr, rules: DestinationRules) -> Result<(), String> {
    if rules.allow_private_networks || is_public(ip) {
        Ok(())
    } else {
        Err(format!(
            "{ip} is not a public address (loopback, private, link-local, unique-local, multicast or reserved); \
             JIT_IAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true allows it"
        ))
    }
}

/// True for addresses on the public internet; false for loopback, private,
/// shared, link-local (the instance metadata service among them),
/// unique-local, multicast, documentation and reserved ranges, and for
/// IPv6 forms that embed such an IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier-grade NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240; // reserved
    !reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let embedded_v4 = |high: u16, low: u16| Ipv4Addr::from(((high as u32) << 16) | low as u32);
    match segments {
        // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => return is_public_v4(embedded_v4(high, low)),
        // 6to4 (2002::/16) embeds an IPv4 address after the prefix.
        [0x2002, high, low, ..] => return is_public_v4(embedded_v4(high, low)),
        _ => {}
    }
    let first = segments[0];
    let reserved = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || segments[..6] == [0; 6] // IPv4-compatible (deprecated)
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (first == 0x2001 && segments[1] == 0x0db8) // documentation
        || (first == 0x2001 && segments[1] < 0x0200) // Teredo and other IETF assignments
        || first == 0x0100; // discard-only
    !reserved
}

/// When to try again after a failed attempt: the next step of the schedule
/// (`attempt` counts attempts made, from 1), or None when it is used up.
pub fn retry_delay(schedule: &[std::time::Duration], attempt: i32) -> Option<std::time::Duration> {
    usize::try_from(attempt - 1).ok().and_then(|step| schedule.get(step)).copied()
}

/// `JIT_IAM_WEBHOOK_RETRY_SCHEDULE`: delays after each failed attempt, e.g. `5s,5m,30m`.
pub fn parse_retry_schedule(value: &str) -> Result<Vec<std::time::Duration>, String> {
    let delays = value
        .split(',')
        .map(str::trim)
        .filter(|step| !step.is_empty())
        .map(|step| humantime::parse_duration(step).map_err(|e| format!("`{step}` is not a duration ({e})")))
        .collect::<Result<Vec<_>, _>>()?;
    if delays.len() > 50 {
        return Err("at most 50 retries".into());
    }
    Ok(delays)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks reference libraries.
    #[test]
    fn signatures_match_the_specification_test_vector() {
        let secret = WebhookSecret(STANDARD.decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap());
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            secret.sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        let other = WebhookSecret(vec![7; 24]);
        let header = signature_header(&[secret.clone(), other.clone()], "m", 1, b"{}");
        assert_eq!(header, format!("{} {}", secret.sign("m", 1, b"{}"), other.sign("m", 1, b"{}")));
    }

    #[test]
    fn secrets_are_whsec_base64_of_random_bytes_and_never_printed() {
        let a = WebhookSecret::generate();
        let encoded = a.encoded();
        let decoded = STANDARD.decode(encoded.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(decoded, a.0);
        assert!((24..=64).contains(&decoded.len()));
        assert_ne!(a, WebhookSecret::generate());
        assert!(!format!("{a:?}").contains(&encoded[6..]));
    }

    #[test]
    fn only_public_addresses_are_reached() {
        let refused = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2001:db8::1",
            "::127.0.0.1",
        ];
        for address in refused {
            assert!(!is_public(address.parse().unwrap()), "{address} must be refused");
        }
        for address in ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert!(is_public(address.parse().unwrap()), "{address} is public");
        }
    }

    #[test]
    fn urls_need_https_a_host_and_a_reachable_literal() {
        let strict = DestinationRules::default();
        let open = DestinationRules { allow_http: true, allow_private_networks: true };
        assert!(check_url("https://portal.example.com/hooks", strict).is_ok());
        for bad in [
            "http://portal.example.com/hooks",
            "ftp://portal.example.com",
            "https://user:pass@portal.example.com/",
            "https://127.0.0.1/hooks",
            "https://[::1]:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://portal.example.com/#x",
            "not a url",
        ] {
            let error = check_url(bad, strict).unwrap_err();
            assert_eq!(error.field, "url", "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/hooks", open).is_ok());
        assert!(check_url(&format!("https://x.example/{}", "a".repeat(MAX_URL_LENGTH)), open).is_err());
    }

    /// What the `url` pattern of the document accepts, and nothing else.
    #[test]
    fn url_forms_are_those_of_the_documents_pattern() {
        let open = DestinationRules { allow_http: false, allow_private_networks: true };
        for good in [
            "https://a",
            "https://portal.example.com",
            "https://x-1.example.com:8443/hooks/jit?x=1&y=%20",
            "https://203.0.113.9:65535/",
            "https://0.0.0.0:1/",
            "https://a.b0c/ü",
        ] {
            assert!(check_url(good, open).is_ok(), "{good}");
        }
        for bad in [
            "HTTPS://a.example",
            "https://a.example?x",
            "https://a.example.",
            "https://a.example/a b",
            "https://a.example/\u{7f}",
            "https://-a.example",
            "https://a.0",
            "https://0",
            "https://01.1.1.1",
            "https://256.1.1.1",
            "https://[2001:db8::1]/",
            "https://a.example:65536",
            "https://a.example:01234",
            "https://a.example:",
            "https://IrT.TrT.b.Zrr0*",
        ] {
            assert!(check_url(bad, open).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        let schedule = parse_retry_schedule("5s, 5m,30m").unwrap();
        assert_eq!(retry_delay(&schedule, 1), Some(std::time::Duration::from_secs(5)));
        assert_eq!(retry_delay(&schedule, 3), Some(std::time::Duration::from_secs(1800)));
        assert_eq!(retry_delay(&schedule, 4), None);
        assert_eq!(retry_delay(&[], 1), None);
        assert!(parse_retry_schedule("5s,soon").is_err());
    }
}
