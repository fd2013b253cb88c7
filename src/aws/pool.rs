//! The assumed-role client pool.
//!
//! jit-iam's own identity comes from the default AWS credential chain
//! (environment, profile, web identity / IRSA, EKS Pod Identity, ECS, instance
//! metadata). For each (integration, account) the pool keeps one assumed-role
//! credentials provider whose credentials are cached and refreshed before they
//! expire; every client of that account shares it, so concurrent users of one
//! integration share one sts:AssumeRole call.
//!
//! Each account also has its own SDK retry quota: the SDK's default quota is
//! one per service for the whole process, so one customer's throttled account
//! would stop the retries of every other customer's calls. The retry mode is
//! adaptive, so that a throttled account is also paced, at a rate of its own.
//!
//! The Identity Center clients go through the limits of their instance
//! (`throttle`), shared by every integration reaching it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_iam::config::retry::{RetryPartition, TokenBucket};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder as HttpClientBuilder, Connector};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::error::AwsError;
use super::identity_center::Instance;
use super::metrics::CallMetrics;
use super::throttle::{IdentityCenterHomes, IdentityCenterLimits};
use crate::config::AwsConfig;
use crate::domain::arn::{PrincipalArn, RoleArn};
use crate::domain::integration::Integration;

/// Builds a client of `$sdk` from an `SdkConfig`, with call metrics attached.
macro_rules! client {
    ($sdk:ident, $config:expr) => {
        client!($sdk, $config, |builder| builder)
    };
    ($sdk:ident, $config:expr, |$builder:ident| $customize:expr) => {{
        let $builder = $sdk::config::Builder::from($config).interceptor(CallMetrics);
        $sdk::Client::from_conf($customize.build())
    }};
}
pub(crate) use client;

/// Refresh assumed credentials this long before they expire, so that no call
/// ever starts with credentials about to lapse.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// Retry-quota tokens an account regains per second (a retry costs 5, one
/// after a timeout 10), besides the one each first-try success returns: a
/// quota drained by a burst of faults comes back within a minute or two, while
/// a lasting outage still gets no more than about one SDK retry a second.
const RETRY_QUOTA_REFILL_PER_SECOND: f32 = 5.0;

pub struct AwsPool {
    base: SdkConfig,
    settings: AwsConfig,
    identity: OnceCell<PrincipalArn>,
    entries: Mutex<HashMap<(Uuid, String), Arc<AwsClients>>>,
    identity_center_homes: IdentityCenterHomes,
    /// The HTTP client of every client; the Identity Center clients' pacing wraps it.
    https: SharedHttpClient,
}

impl fmt::Debug for AwsPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsPool").finish_non_exhaustive()
    }
}

impl AwsPool {
    /// Loads the service's own AWS configuration (nothing is called yet).
    pub async fn load(settings: AwsConfig) -> Self {
        let region = RegionProviderChain::default_provider().or_else(Region::from_static("us-east-1"));
        let https = default_https_client();
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            // One HTTP client for every client of every account: left unset,
            // each client builds its own (connection pool, TLS roots): 0.6 MB
            // per account of an organization, measured (benches/organization.rs).
            .http_client(https.clone())
            // Adaptive: after a throttling answer the SDK paces the account's
            // calls (one rate per retry partition: per account, see below)
            // instead of spending attempts; IAM's write rates are not published.
            .retry_config(
                RetryConfig::adaptive()
                    .with_max_attempts(settings.max_attempts)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(10)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(settings.attempt_timeout)
                    .build(),
            )
            .load()
            .await;
        let identity_center_homes = IdentityCenterHomes::new(
            settings.identity_center_requests_per_second,
            settings.identity_center_max_assignment_creations,
        );
        Self {
            base,
            settings,
            identity: OnceCell::new(),
            entries: Mutex::new(HashMap::new()),
            identity_center_homes,
            https,
        }
    }

    /// The principal customers trust in their access role: configured, or
    /// derived from sts:GetCallerIdentity (asked once, then remembered).
    pub async fn service_principal(&self) -> Result<PrincipalArn, AwsError> {
        if let Some(arn) = &self.settings.service_principal_arn {
            return Ok(PrincipalArn::parse(arn).expect("validated at start"));
        }
        self.identity
            .get_or_try_init(|| async {
                let caller = client!(aws_sdk_sts, &self.base)
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| without_identity(AwsError::from_sdk("sts:GetCallerIdentity", &e)))?;
                let arn = caller.arn().unwrap_or_default();
                PrincipalArn::parse(arn)
                    .map_err(|e| AwsError::new(super::AwsErrorKind::Rejected, "sts:GetCallerIdentity", e))
            })
            .await
            .cloned()
    }

    /// An STS client with the service's own identity, in `region`.
    pub fn service_sts(&self, region: &str) -> aws_sdk_sts::Client {
        client!(aws_sdk_sts, &self.base, |b| b.region(Region::new(region.to_string())))
    }

    /// A configuration using fixed credentials (the connection check's fresh session).
    pub fn config_with_credentials(&self, credentials: Credentials, region: &str) -> SdkConfig {
        self.base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .region(Region::new(region.to_string()))
            .build()
    }

    /// The clients for `account_id` of `integration`, assuming its role.
    pub async fn clients(&self, integration: &Integration, account_id: &str) -> Arc<AwsClients> {
        let key = (integration.id, account_id.to_string());
        if let Some(entry) = self.entries.lock().expect("pool lock").get(&key) {
            if entry.revision == integration.revision {
                return entry.clone();
            }
        }
        let built = Arc::new(self.build(integration, account_id).await);
        let mut entries = self.entries.lock().expect("pool lock");
        // Whoever stored first wins, so that one credentials cache serves everyone.
        let entry = entries
            .entry(key)
            .and_modify(|existing| {
                if existing.revision < built.revision {
                    *existing = built.clone();
                }
            })
            .or_insert_with(|| built.clone());
        entry.clone()
    }

    /// The cached clients of an account, if built for this revision of the integration.
    pub fn cached(&self, integration_id: Uuid, account_id: &str, revision: i64) -> Option<Arc<AwsClients>> {
        let entries = self.entries.lock().expect("pool lock");
        entries.get(&(integration_id, account_id.to_string())).filter(|e| e.revision == revision).cloned()
    }

    /// Drops the cached clients of an integration that changed or was deleted.
    pub fn forget(&self, integration_id: Uuid) {
        self.entries.lock().expect("pool lock").retain(|(id, _), _| *id != integration_id);
    }

    async fn build(&self, integration: &Integration, account_id: &str) -> AwsClients {
        let role = integration.role_arn_for(account_id);
        let region = Region::new(integration.root_account.region.clone());
        let provider = AssumeRoleProvider::builder(role.to_string())
            .external_id(integration.root_account.external_id.clone())
            .session_name(session_name(integration.id))
            .session_length(self.settings.session_duration)
            .region(region.clone())
            .configure(&self.base)
            .build()
            .await;
        let credentials = CountedAssumeRole { inner: provider, role: role.clone() };
        let config = self
            .base
            .to_builder()
            .region(region)
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .identity_cache(IdentityCache::lazy().buffer_time(REFRESH_BEFORE_EXPIRY).build())
            .build();
        let retry_partition = RetryPartition::custom(format!("jit-iam-{}-{account_id}", integration.id))
            .token_bucket(TokenBucket::builder().refill_rate(RETRY_QUOTA_REFILL_PER_SECOND).build())
            .build();
        let identity_center = self.identity_center_homes.of(account_id, &integration.root_account.region);
        AwsClients::new(
            config,
            retry_partition,
            role,
            integration.revision,
            self.settings.s3_force_path_style,
            identity_center,
            self.https.clone(),
        )
    }
}

/// The SDK's own default HTTPS client (hyper 1, rustls with aws-lc, proxy
/// from the environment), built here because the SDK only makes it inside
/// each client, where nothing can wrap it.
fn default_https_client() -> SharedHttpClient {
    HttpClientBuilder::new().build_with_connector_fn(|settings, components| {
        let mut connector = Connector::builder().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// `jit-iam-<integration id>`: recognisable in CloudTrail.
pub fn session_name(integration_id: Uuid) -> String {
    format!("jit-iam-{integration_id}")
}

/// Counts the sts:AssumeRole calls behind the credentials cache.
#[derive(Debug)]
struct CountedAssumeRole {
    inner: AssumeRoleProvider,
    role: RoleArn,
}

impl ProvideCredentials for CountedAssumeRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let result = self.inner.provide_credentials().await;
            let outcome = if result.is_ok() { "success" } else { "failure" };
            tracing::info!(role = %self.role, outcome, "assumed role");
            metrics::counter!("jit_iam_assume_role_total", "outcome" => outcome).increment(1);
            result
        })
    }
}

/// The clients of one account, all sharing one assumed-role credentials cache.
pub struct AwsClients {
    pub role: RoleArn,
    revision: i64,
    config: SdkConfig,
    retry_partition: RetryPartition,
    pub iam: aws_sdk_iam::Client,
    pub organizations: aws_sdk_organizations::Client,
    pub s3: aws_sdk_s3::Client,
    pub sts: aws_sdk_sts::Client,
    /// IAM Identity Center, in the integration's region (the instance's).
    pub sso_admin: aws_sdk_ssoadmin::Client,
    pub identity_store: aws_sdk_identitystore::Client,
    identity_center: Arc<IdentityCenterLimits>,
    /// The instance `options.identity_center: {}` discovered (`identity_center::instance`).
    pub(super) identity_center_instance: OnceCell<Instance>,
    s3_force_path_style: bool,
    ec2: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
    regional_s3: Mutex<HashMap<String, aws_sdk_s3::Client>>,
}

impl AwsClients {
    fn new(
        config: SdkConfig,
        retry_partition: RetryPartition,
        role: RoleArn,
        revision: i64,
        s3_force_path_style: bool,
        identity_center: Arc<IdentityCenterLimits>,
        https: SharedHttpClient,
    ) -> Self {
        let quota = || retry_partition.clone();
        let paced = identity_center.paced(https);
        Self {
            role,
            revision,
            iam: client!(aws_sdk_iam, &config, |b| b.retry_partition(quota())),
            organizations: client!(aws_sdk_organizations, &config, |b| b.retry_partition(quota())),
            s3: client!(aws_sdk_s3, &config, |b| b.force_path_style(s3_force_path_style).retry_partition(quota())),
            sts: client!(aws_sdk_sts, &config, |b| b.retry_partition(quota())),
            sso_admin: client!(aws_sdk_ssoadmin, &config, |b| b.retry_partition(quota()).http_client(paced.clone())),
            identity_store: client!(aws_sdk_identitystore, &config, |b| b.retry_partition(quota()).http_client(paced)),
            identity_center,
            identity_center_instance: OnceCell::new(),
            s3_force_path_style,
            ec2: Mutex::new(HashMap::new()),
            regional_s3: Mutex::new(HashMap::new()),
            config,
            retry_partition,
        }
    }

    /// The limits of the Identity Center instance these clients reach.
    pub fn identity_center_limits(&self) -> &IdentityCenterLimits {
        &self.identity_center
    }

    /// The region the integration's calls go to by default.
    pub fn home_region(&self) -> String {
        self.config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into())
    }

    /// An S3 client for buckets living in `region`.
    pub fn s3_in(&self, region: &str) -> aws_sdk_s3::Client {
        if region == self.home_region() {
            return self.s3.clone();
        }
        self.regional_s3
            .lock()
            .expect("s3 clients lock")
            .entry(region.to_string())
            .or_insert_with(|| {
                client!(aws_sdk_s3, &self.config, |b| b
                    .region(Region::new(region.to_string()))
                    .force_path_style(self.s3_force_path_style)
                    .retry_partition(self.retry_partition.clone()))
            })
            .clone()
    }

    /// The EC2 client of one region (EC2 is regional; IAM, S3 listing and STS are not).
    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        self.ec2
            .lock()
            .expect("ec2 clients lock")
            .entry(region.to_string())
            .or_insert_with(|| {
                client!(aws_sdk_ec2, &self.config, |b| b
                    .region(Region::new(region.to_string()))
                    .retry_partition(self.retry_partition.clone()))
            })
            .clone()
    }
}

/// No answer to sts:GetCallerIdentity (no credentials, no endpoint): say in
/// one sentence what to set, before the SDK's own words.
fn without_identity(mut error: AwsError) -> AwsError {
    if error.http_status.is_none() {
        error.message = format!(
            "jit-iam has no AWS identity to write into the trust policy: give it AWS credentials (the default \
             credential chain: IRSA, Pod Identity, AWS_PROFILE, ...) or set JIT_IAM_SERVICE_PRINCIPAL_ARN ({})",
            error.message
        );
    }
    error
}
