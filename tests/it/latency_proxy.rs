//! The benchmarks' latency and throttling proxy (`benches/common/latency.rs`):
//! its delay is applied to each call concurrently, and its throttling counts
//! write calls per account and per service, as AWS does.

use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::support::{unique, Moto};

#[path = "../../benches/common/latency.rs"]
mod latency;

// `latency` reaches the proxy parts it shares with the fault proxy as `super::aws_proxy`.
use crate::support::aws_proxy;

use latency::{Latency, LatencyProxy, Throttle};

/// An SDK configuration reaching moto through `proxy` with the access key
/// `key` (the proxy's account, when no AssumeRole taught it better), without retries.
async fn through(proxy: &LatencyProxy, key: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&proxy.endpoint)
        .credentials_provider(Credentials::new(key, "secret", None, None, "latency-proxy-test"))
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

#[tokio::test]
async fn the_delay_is_added_to_every_call_concurrently() {
    let delay = Duration::from_millis(300);
    let latency = Latency { delay, jitter: Duration::from_millis(50), throttle: None };
    let proxy = LatencyProxy::start(&Moto::shared().endpoint, latency).await;
    let iam = aws_sdk_iam::Client::new(&through(&proxy, "AKIDLATENCYDELAY").await);
    let started = Instant::now();
    iam.list_users().send().await.unwrap();
    assert!(started.elapsed() >= delay, "one call waits the delay: {:?}", started.elapsed());
    let started = Instant::now();
    let calls = (0..10).map(|_| iam.list_users().send());
    for answer in futures::future::join_all(calls).await {
        answer.unwrap();
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= delay, "{elapsed:?}");
    assert!(elapsed < delay * 4, "10 calls waited side by side, not one after the other (3 s): {elapsed:?}");
    assert_eq!(proxy.forwarded(), 11);
    // The log the benchmarks break a request's time down with.
    let calls = proxy.calls_between(started, Instant::now());
    assert_eq!(calls.len(), 10, "{calls:?}");
    assert!(calls.iter().all(|c| c.action == "ListUsers" && c.answered - c.arrived >= delay), "{calls:?}");
}

#[tokio::test]
async fn writes_of_the_throttled_service_are_throttled_per_account() {
    let throttle = Throttle { service: "iam".into(), writes_per_second: 5.0, accounts: vec![] };
    let latency = Latency { throttle: Some(throttle), ..Latency::default() };
    let proxy = LatencyProxy::start(&Moto::shared().endpoint, latency).await;
    let first = aws_sdk_iam::Client::new(&through(&proxy, "AKIDLATENCYFIRST").await);
    let second = aws_sdk_iam::Client::new(&through(&proxy, "AKIDLATENCYSECOND").await);

    let writes = (0..10).map(|_| first.create_user().user_name(unique("latency")).send());
    let answers = futures::future::join_all(writes).await;
    let throttled = answers.iter().filter(|a| a.as_ref().err().and_then(|e| e.code()) == Some("Throttling")).count();
    assert!(answers.iter().all(|a| a.is_ok() || a.as_ref().err().and_then(|e| e.code()) == Some("Throttling")));
    assert!((4..=5).contains(&throttled), "a burst of 10 over 5 per second: {throttled} throttled");

    // Reads of that account, another account's writes, another service's writes: not throttled.
    for answer in futures::future::join_all((0..10).map(|_| first.list_users().send())).await {
        answer.unwrap();
    }
    for answer in
        futures::future::join_all((0..5).map(|_| second.create_user().user_name(unique("latency")).send())).await
    {
        answer.unwrap();
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&through(&proxy, "AKIDLATENCYFIRST").await).force_path_style(true).build(),
    );
    for answer in futures::future::join_all((0..10).map(|_| s3.create_bucket().bucket(unique("latency")).send())).await
    {
        answer.unwrap();
    }
    assert_eq!(proxy.throttled() as usize, throttled);
    // A second later the account has its rate again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    first.create_user().user_name(unique("latency")).send().await.unwrap();
}

#[tokio::test]
async fn a_throttle_set_while_running_applies_to_its_accounts_only() {
    let proxy = LatencyProxy::start(&Moto::shared().endpoint, Latency::default()).await;
    let throttled = aws_sdk_iam::Client::new(&through(&proxy, "AKIDLATENCYTHROTTLED").await);
    let other = aws_sdk_iam::Client::new(&through(&proxy, "AKIDLATENCYOTHER").await);
    assert_eq!(burst(&throttled).await, 0, "no throttle yet");

    let only =
        Throttle { service: "iam".into(), writes_per_second: 5.0, accounts: vec!["AKIDLATENCYTHROTTLED".into()] };
    proxy.set_throttle(Some(only));
    let refused = burst(&throttled).await;
    assert!((4..=5).contains(&refused), "a burst of 10 over 5 per second: {refused} throttled");
    assert_eq!(proxy.admitted() as usize, 10 - refused, "the writes let through are counted");
    assert_eq!(burst(&other).await, 0, "an account the throttle does not name");

    proxy.set_throttle(None);
    assert_eq!(burst(&throttled).await, 0, "throttle lifted");
}

/// Makes 10 IAM writes at once; answers how many were throttled.
async fn burst(iam: &aws_sdk_iam::Client) -> usize {
    let answers =
        futures::future::join_all((0..10).map(|_| iam.create_user().user_name(unique("latency")).send())).await;
    assert!(answers.iter().all(|a| a.is_ok() || a.as_ref().err().and_then(|e| e.code()) == Some("Throttling")));
    answers.iter().filter(|a| a.as_ref().err().and_then(|e| e.code()) == Some("Throttling")).count()
}

#[tokio::test]
async fn a_call_rate_limits_every_call_of_its_service_per_account() {
    let proxy = LatencyProxy::start(&Moto::shared().endpoint, Latency::default()).await;
    proxy.set_call_rate(Some(latency::CallRate { service: "iam".into(), calls_per_second: 5.0 }));
    let limited = aws_sdk_iam::Client::new(&through(&proxy, "AKIDCALLRATEFIRST").await);
    let other = aws_sdk_iam::Client::new(&through(&proxy, "AKIDCALLRATESECOND").await);

    // Reads count too: a burst of 10 over 5 per second.
    let answers = futures::future::join_all((0..10).map(|_| limited.list_users().send())).await;
    assert!(answers.iter().all(|a| a.is_ok() || a.as_ref().err().and_then(|e| e.code()) == Some("Throttling")));
    let refused = answers.iter().filter(|a| a.is_err()).count();
    assert!((4..=5).contains(&refused), "a burst of 10 reads over 5 per second: {refused} throttled");
    assert_eq!(proxy.throttled() as usize, refused);

    // Another account of the service, another service of the account: their own rates.
    for answer in futures::future::join_all((0..5).map(|_| other.list_users().send())).await {
        answer.unwrap();
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&through(&proxy, "AKIDCALLRATEFIRST").await).force_path_style(true).build(),
    );
    for answer in futures::future::join_all((0..10).map(|_| s3.list_buckets().send())).await {
        answer.unwrap();
    }

    // A second later the account has its rate again; lifted, no rate at all.
    tokio::time::sleep(Duration::from_secs(1)).await;
    limited.list_users().send().await.unwrap();
    proxy.set_call_rate(None);
    for answer in futures::future::join_all((0..10).map(|_| limited.list_users().send())).await {
        answer.unwrap();
    }
}
