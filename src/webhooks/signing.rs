//! Standard Webhooks signing: the secrets endpoints are given and the
//! `webhook-signature` header every attempt carries.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

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
}
