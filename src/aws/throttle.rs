//! Client-side limits of IAM Identity Center, so that a burst of grants
//! (many expiring together) waits in jit-iam instead of being throttled or
//! refused by AWS: its APIs allow about 20 requests a second per instance
//! (sso-admin and identitystore together), and 10 account-assignment
//! creations in progress at once.
//!
//! The limits are per process: N replicas may send N times the rate.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_types::config_bag::ConfigBag;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Requests paced to a rate, with a small burst; `acquire` waits for its
/// turn and never fails. Callers are served in the order they asked.
#[derive(Debug)]
pub struct TokenBucket {
    /// Time between two requests at the steady rate.
    interval: Duration,
    /// How far ahead of the steady pace a request may start: `burst - 1` intervals.
    tolerance: Duration,
    /// When the next request would start at the steady pace (GCRA's
    /// "theoretical arrival time"); reserving a turn moves it one interval on.
    next: Mutex<Instant>,
}

impl TokenBucket {
    /// `burst` requests may go at once after a quiet spell; then `per_second`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let interval = Duration::from_secs_f64(1.0 / f64::from(per_second.max(1)));
        Self { interval, tolerance: interval * (burst.max(1) - 1), next: Mutex::new(Instant::now()) }
    }

    /// Waits until this request may go. A caller dropped while waiting gives
    /// its turn up unused: the rate is then undershot, never exceeded.
    pub async fn acquire(&self) {
        tokio::time::sleep_until(self.reserve(Instant::now())).await;
    }

    /// Reserves the next turn for a request asking at `now`: when it may go.
    fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().expect("token bucket lock");
        *next = (*next).max(now);
        let start = next.checked_sub(self.tolerance).map_or(now, |earliest| earliest.max(now));
        *next += self.interval;
        start
    }
}

/// The limits of one Identity Center instance in this process.
pub struct IdentityCenterLimits {
    requests: TokenBucket,
    assignment_creations: Arc<Semaphore>,
}

impl fmt::Debug for IdentityCenterLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityCenterLimits")
            .field("requests", &self.requests)
            .field("assignment_creations_available", &self.assignment_creations.available_permits())
            .finish()
    }
}

impl IdentityCenterLimits {
    /// A burst of a quarter second's requests (at least one): any one second
    /// then holds at most 1.25 times the rate (18.75 at the default 15, under
    /// AWS's 20).
    pub fn new(requests_per_second: u32, max_assignment_creations: u32) -> Self {
        Self {
            requests: TokenBucket::new(requests_per_second, requests_per_second / 4),
            assignment_creations: Arc::new(Semaphore::new(max_assignment_creations as usize)),
        }
    }

    /// Permits for account-assignment creations in progress: hold one from
    /// `CreateAccountAssignment` until its creation status is final.
    pub fn assignment_creations(&self) -> Arc<Semaphore> {
        self.assignment_creations.clone()
    }

    /// `inner`, with every HTTP attempt (retries included) paced by this
    /// instance's rate. The wait counts towards the attempt's timeout
    /// (`JIT_IAM_AWS_ATTEMPT_TIMEOUT`); the worker's and the sync's bounded
    /// concurrency keep the queue far shorter than that.
    pub fn paced(self: &Arc<Self>, inner: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(PacedClient { inner, limits: self.clone() })
    }
}

/// The limits of every Identity Center home this process reaches, keyed by
/// the account id and region of the clients: where the instance is (one
/// instance per account and region; the instance is what AWS limits).
#[derive(Debug)]
pub struct IdentityCenterHomes {
    requests_per_second: u32,
    max_assignment_creations: u32,
    homes: Mutex<HashMap<(String, String), Arc<IdentityCenterLimits>>>,
}

impl IdentityCenterHomes {
    pub fn new(requests_per_second: u32, max_assignment_creations: u32) -> Self {
        Self { requests_per_second, max_assignment_creations, homes: Mutex::new(HashMap::new()) }
    }

    /// The limits of the instance in `account_id` and `region`, shared by
    /// every integration reaching it.
    pub fn of(&self, account_id: &str, region: &str) -> Arc<IdentityCenterLimits> {
        let mut homes = self.homes.lock().expect("identity center homes lock");
        homes
            .entry((account_id.to_string(), region.to_string()))
            .or_insert_with(|| {
                Arc::new(IdentityCenterLimits::new(self.requests_per_second, self.max_assignment_creations))
            })
            .clone()
    }
}

#[derive(Debug)]
struct PacedClient {
    inner: SharedHttpClient,
    limits: Arc<IdentityCenterLimits>,
}

impl HttpClient for PacedClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(PacedConnector { inner, limits: self.limits.clone() })
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        config: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_base_client_config(components, config)
    }

    fn validate_final_config(&self, components: &RuntimeComponents, config: &ConfigBag) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, config)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    limits: Arc<IdentityCenterLimits>,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, limits) = (self.inner.clone(), self.limits.clone());
        HttpConnectorFuture::new(async move {
            limits.requests.acquire().await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(milliseconds: u64) -> Duration {
        Duration::from_millis(milliseconds)
    }

    #[test]
    fn turns_come_at_the_rate_after_the_burst_and_the_burst_returns_after_a_quiet_spell() {
        let bucket = TokenBucket::new(20, 5);
        let t0 = Instant::now();
        // 25 callers at once: 5 go at once, then one every 50 ms.
        let turns: Vec<Duration> = (0..25).map(|_| bucket.reserve(t0) - t0).collect();
        let expected: Vec<Duration> = (0..25u64).map(|i| ms(50 * i.saturating_sub(4))).collect();
        assert_eq!(turns, expected);
        // A late caller waits only for the queue left.
        assert_eq!(bucket.reserve(t0 + ms(900)) - t0, ms(1050));
        // Quiet until the queue is long gone: a whole burst again, then the pace.
        let later = t0 + Duration::from_secs(5);
        let turns: Vec<Duration> = (0..7).map(|_| bucket.reserve(later) - later).collect();
        assert_eq!(turns, [ms(0), ms(0), ms(0), ms(0), ms(0), ms(50), ms(100)]);
        // Callers spread below the rate never wait.
        let spread = Instant::now() + Duration::from_secs(10);
        for i in 0..10 {
            let at = spread + ms(60 * i);
            assert_eq!(bucket.reserve(at), at);
        }
    }

    #[test]
    fn a_burst_is_a_quarter_second_of_requests_and_at_least_one() {
        let requests = IdentityCenterLimits::new(15, 10).requests;
        assert_eq!(requests.tolerance, requests.interval * 2);
        assert_eq!(IdentityCenterLimits::new(3, 10).requests.tolerance, Duration::ZERO);
    }

    /// Real time (tokio's paused clock needs its `test-util` feature, which
    /// would rebuild every dependency for tests): half a second.
    #[tokio::test]
    async fn concurrent_callers_all_wait_their_turn_and_none_fails() {
        let bucket = Arc::new(TokenBucket::new(40, 1));
        let began = Instant::now();
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move { bucket.acquire().await })
            })
            .collect();
        for caller in callers {
            caller.await.expect("no caller fails");
        }
        // 19 intervals of 25 ms after the first, at the least.
        assert!(began.elapsed() >= ms(475), "{:?}", began.elapsed());
    }

    #[tokio::test]
    async fn one_home_shares_its_limits_and_assignment_creations_are_bounded() {
        let homes = IdentityCenterHomes::new(15, 2);
        let home = homes.of("123456789012", "us-east-1");
        assert!(Arc::ptr_eq(&home, &homes.of("123456789012", "us-east-1")), "one instance, one set of limits");
        assert!(!Arc::ptr_eq(&home, &homes.of("123456789012", "eu-west-1")));
        assert!(!Arc::ptr_eq(&home, &homes.of("210987654321", "us-east-1")));

        let creations = home.assignment_creations();
        let first = creations.clone().acquire_owned().await.unwrap();
        let _second = homes.of("123456789012", "us-east-1").assignment_creations().acquire_owned().await.unwrap();
        assert!(creations.clone().try_acquire_owned().is_err(), "a third waits");
        let waiting = tokio::spawn(async move { creations.acquire_owned().await.map(drop) });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap().expect("served once one is released");
    }
}
