//! Where webhooks may go: the form of a URL, the addresses it may reach, and
//! the resolver that checks a host name's addresses on every connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::FieldError;

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

/// Resolves with the system resolver and refuses the name unless every address is allowed.
pub(super) struct CheckedResolver {
    pub(super) rules: DestinationRules,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules;
        Box::pin(async move {
            let addresses = resolve_checked(name.as_str(), rules).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// A name with one address that is not allowed is refused whole: a name mixing
/// public and private records is how rebinding attacks start.
pub(super) async fn resolve_checked(
    host: &str,
    rules: DestinationRules,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let addresses: Vec<SocketAddr> =
        tokio::net::lookup_host((host, 0)).await.map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
    if addresses.is_empty() {
        return Err(format!("{host} resolves to no address").into());
    }
    for address in &addresses {
        check_address(address.ip(), rules).map_err(|e| format!("{host} resolves to {e}"))?;
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
