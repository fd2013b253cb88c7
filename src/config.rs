//! Configuration, read once at start from flags and the environment.
//!
//! Every value is validated before anything else happens, so a bad setting
//! stops the process with one clear line instead of failing later.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};
use sha2::{Digest, Sha256};

use crate::domain::caller::Role;

/// Where the database is.
#[derive(Clone, Args)]
pub struct DatabaseConfig {
    /// Postgres connection URL. `serve` and `migrate` create the database when it is missing.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/jit_iam",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Postgres connections of the HTTP API. The workers have their own: worker
    /// concurrency + sync account concurrency + 2 x reconcile account concurrency + 4.
    #[arg(long, env = "JIT_IAM_DB_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub db_max_connections: u32,

    /// How long a request waits for a free connection before answering 503.
    #[arg(long, env = "JIT_IAM_DB_ACQUIRE_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub db_acquire_timeout: Duration,
}

impl fmt::Debug for DatabaseConfig {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig").field("db_max_connections", &self.db_max_connections).finish_non_exhaustive()
    }
}

/// Everything `serve` needs.
#[derive(Clone, Debug, Args)]
pub struct ServeConfig {
    #[command(flatten)]
    pub database: DatabaseConfig,

    /// Address the HTTP API listens on.
    #[arg(long, env = "JIT_IAM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Named API tokens, `name:token[:role]` separated by commas, role `admin`
    /// (the default), `portal` or `auditor`. Callers send
    /// `Authorization: Bearer <token>`; the name appears in logs and audit events.
    #[arg(long, env = "JIT_IAM_API_TOKENS", hide_env_values = true, value_parser = ApiTokens::from_str)]
    pub api_tokens: Option<ApiTokens>,

    /// Log format.
    #[arg(long, env = "JIT_IAM_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Do not create the database or apply migrations at start (run `jit-iam migrate` instead).
    #[arg(long, env = "JIT_IAM_SKIP_MIGRATIONS", action = ArgAction::SetTrue)]
    pub skip_migrations: bool,

    /// Longest time one HTTP request may take.
    #[arg(long, env = "JIT_IAM_REQUEST_TIMEOUT", default_value = "40s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// How long an idle keep-alive connection is kept: longer than the idle
    /// timeout of the load balancer or client pool in front (AWS ALB: 60 s).
    #[arg(long, env = "JIT_IAM_HTTP_IDLE_TIMEOUT", default_value = "75s", value_parser = parse_duration)]
    pub http_idle_timeout: Duration,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "JIT_IAM_MAX_BODY_BYTES", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=16 * 1024 * 1024))]
    pub max_body_bytes: u32,

    /// Memory for cached browse pages, in MiB (0 turns the cache off).
    #[arg(long, env = "JIT_IAM_BROWSE_CACHE_MB", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(0..=4096))]
    pub browse_cache_mb: u32,

    #[command(flatten)]
    pub metrics: MetricsConfig,

    #[command(flatten)]
    pub aws: AwsConfig,

    #[command(flatten)]
    pub sync: SyncConfig,

    #[command(flatten)]
    pub grants: GrantConfig,

    #[command(flatten)]
    pub reconcile: ReconcileConfig,

    #[command(flatten)]
    pub worker: WorkerConfig,

    #[command(flatten)]
    pub webhooks: WebhookConfig,

    #[command(flatten)]
    pub retention: RetentionConfig,
}

/// How jit-iam reaches AWS. The endpoint, region and the service's own
/// credentials come from the AWS SDK's standard configuration
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`, the default credential chain).
#[derive(Clone, Debug, Args)]
pub struct AwsConfig {
    /// The service's own identity, written into the trust policy of the setup documents.
    /// Default: derived from sts:GetCallerIdentity (set it when the role has a path).
    #[arg(long, env = "JIT_IAM_SERVICE_PRINCIPAL_ARN")]
    pub service_principal_arn: Option<String>,

    /// Length of the sessions jit-iam assumes in customer accounts (15 min to 12 h).
    #[arg(long, env = "JIT_IAM_SESSION_DURATION", default_value = "1h", value_parser = parse_duration)]
    pub session_duration: Duration,

    /// Attempts per AWS call, retries of throttling and transient errors included.
    #[arg(long = "aws-max-attempts", env = "JIT_IAM_AWS_MAX_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,

    /// Timeout of one attempt of an AWS call (generous: a page of 1,000 IAM
    /// entities can take a while on a busy endpoint).
    #[arg(long = "aws-attempt-timeout", env = "JIT_IAM_AWS_ATTEMPT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub attempt_timeout: Duration,

    /// Use path-style S3 addressing (for S3-compatible endpoints reached by host name).
    #[arg(long, env = "JIT_IAM_S3_FORCE_PATH_STYLE", action = ArgAction::SetTrue)]
    pub s3_force_path_style: bool,

    /// Requests per second this process sends to one IAM Identity Center
    /// instance, sso-admin and identitystore together (AWS allows about 20; per replica).
    #[arg(long, env = "JIT_IAM_IDENTITY_CENTER_REQUESTS_PER_SECOND", default_value_t = 15,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub identity_center_requests_per_second: u32,

    /// Account-assignment creations this process keeps in progress at once on
    /// one Identity Center instance (AWS allows 10; per replica).
    #[arg(long, env = "JIT_IAM_IDENTITY_CENTER_MAX_ASSIGNMENT_CREATIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub identity_center_max_assignment_creations: u32,
}

/// How the inventory is kept.
#[derive(Clone, Debug, Args)]
pub struct SyncConfig {
    /// Time between two scheduled syncs of one integration.
    #[arg(long, env = "JIT_IAM_SYNC_INTERVAL", default_value = "15m", value_parser = parse_duration)]
    pub sync_interval: Duration,

    /// AWS calls in flight at once while syncing one account.
    #[arg(long, env = "JIT_IAM_SYNC_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sync_concurrency: u32,

    /// Accounts of one organization synced at once (each is a chain of dependent
    /// calls: AssumeRole, the lists, the per-bucket reads; docs/performance.md).
    #[arg(long, env = "JIT_IAM_SYNC_ACCOUNT_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sync_account_concurrency: u32,
}

/// How grants are reconciled with IAM.
#[derive(Clone, Debug, Args)]
pub struct ReconcileConfig {
    /// Time between two scheduled reconciliations of one integration (0 turns them off).
    #[arg(long, env = "JIT_IAM_RECONCILE_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub reconcile_interval: Duration,

    /// Put drift back (scheduled runs; a run asked for says so itself); false only reports it.
    #[arg(long, env = "JIT_IAM_RECONCILE_REPAIR", default_value_t = true, action = ArgAction::Set)]
    pub reconcile_repair: bool,

    /// An orphaned policy is deleted once it has been seen this long (or when a run asks).
    #[arg(long, env = "JIT_IAM_ORPHAN_GRACE", default_value = "24h", value_parser = parse_duration)]
    pub orphan_grace: Duration,

    /// Accounts of one organization reconciled at once.
    #[arg(long, env = "JIT_IAM_RECONCILE_ACCOUNT_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub reconcile_account_concurrency: u32,
}

/// Limits on grants.
#[derive(Clone, Debug, Args)]
pub struct GrantConfig {
    /// Shortest grant accepted.
    #[arg(long, env = "JIT_IAM_MIN_GRANT", default_value = "60s", value_parser = parse_duration)]
    pub min_grant: Duration,

    /// Longest grant accepted (at most 730 days).
    #[arg(long, env = "JIT_IAM_MAX_GRANT", default_value = "7days", value_parser = parse_duration)]
    pub max_grant: Duration,

    /// IAM quota of managed policies attached to one user (AWS default 10, at most 20 when raised).
    #[arg(long, env = "JIT_IAM_MAX_POLICIES_PER_USER", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_policies_per_user: u32,

    /// IAM quota of managed policies attached to one role (AWS default 10, at most 20 when raised).
    #[arg(long, env = "JIT_IAM_MAX_POLICIES_PER_ROLE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_policies_per_role: u32,

    /// How long one step waits for Identity Center to provision an account
    /// assignment (creation or deletion) before handing the grant back to
    /// the worker, which keeps polling with backoff: never `active` before
    /// the assignment succeeded.
    #[arg(long, env = "JIT_IAM_IDENTITY_CENTER_PROVISIONING_WAIT", default_value = "2min",
          value_parser = parse_duration)]
    pub identity_center_provisioning_wait: Duration,

    /// Identity Center quota of permission sets provisioned to one account (AWS default 50).
    #[arg(long, env = "JIT_IAM_MAX_PERMISSION_SETS_PER_ACCOUNT", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_permission_sets_per_account: u32,

    /// Identity Center quota of permission sets in one instance (AWS default 2,000).
    #[arg(long, env = "JIT_IAM_MAX_PERMISSION_SETS_PER_INSTANCE", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_permission_sets_per_instance: u32,

    /// Identity Center's limit on a permission set's inline policy, in characters (AWS: 32,768).
    #[arg(long, env = "JIT_IAM_MAX_PERMISSION_SET_INLINE_POLICY", default_value_t = 32768,
          value_parser = clap::value_parser!(u32).range(1..=32768))]
    pub max_permission_set_inline_policy: u32,
}

/// The background worker that applies and revokes grants and runs syncs.
#[derive(Clone, Debug, Args)]
pub struct WorkerConfig {
    /// Grants worked on at once by one process.
    #[arg(long, env = "JIT_IAM_WORKER_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=512))]
    pub worker_concurrency: u32,

    /// Grants of one AWS account worked on at once, across replicas: an account
    /// AWS throttles (or that answers slowly) never takes every slot from the others.
    #[arg(long, env = "JIT_IAM_WORKER_ACCOUNT_CONCURRENCY", default_value_t = 12,
          value_parser = clap::value_parser!(u32).range(1..=512))]
    pub worker_account_concurrency: u32,

    /// How long a claim on a grant or sync lasts before another replica may take it over.
    #[arg(long, env = "JIT_IAM_WORKER_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub worker_lease: Duration,
}

/// Webhooks to the approval portal.
#[derive(Clone, Debug, Args)]
pub struct WebhookConfig {
    /// Delays before each retry of a failed delivery, comma-separated; after the last, the delivery has failed.
    #[arg(long, env = "JIT_IAM_WEBHOOK_RETRY_SCHEDULE", default_value = "5s,5m,30m,2h,5h,10h,10h",
          value_parser = parse_retry_schedule)]
    pub webhook_retry_schedule: RetrySchedule,

    /// An endpoint whose every attempt has failed for this long is disabled.
    #[arg(long, env = "JIT_IAM_WEBHOOK_DISABLE_AFTER", default_value = "5days", value_parser = parse_duration)]
    pub webhook_disable_after: Duration,

    /// After a secret rotation, deliveries are signed with the old secret too for this long.
    #[arg(long, env = "JIT_IAM_WEBHOOK_SECRET_OVERLAP", default_value = "24h", value_parser = parse_duration)]
    pub webhook_secret_overlap: Duration,

    /// `grant.expiring` is sent this long before a grant expires.
    #[arg(long, env = "JIT_IAM_EXPIRY_NOTICE", default_value = "15m", value_parser = parse_duration)]
    pub expiry_notice: Duration,

    /// Allow `http://` webhook URLs (on-premises portals, tests).
    #[arg(long, env = "JIT_IAM_WEBHOOK_ALLOW_HTTP", default_value_t = false, action = ArgAction::Set)]
    pub webhook_allow_http: bool,

    /// Allow webhooks to loopback, private, link-local and unique-local addresses (on-premises portals, tests).
    #[arg(long, env = "JIT_IAM_WEBHOOK_ALLOW_PRIVATE_NETWORKS", default_value_t = false, action = ArgAction::Set)]
    pub webhook_allow_private_networks: bool,

    /// Deliveries in flight at once in one process (one endpoint takes at most a quarter of them).
    #[arg(long, env = "JIT_IAM_WEBHOOK_CONCURRENCY", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(4..=1024))]
    pub webhook_concurrency: u32,
}

/// How long what the worker records is kept (0: forever). The audit trail is always kept.
#[derive(Clone, Debug, Args)]
pub struct RetentionConfig {
    /// Events of a grant that ended (revoked or failed) are deleted this long after its end; the grant stays.
    #[arg(long, env = "JIT_IAM_RETAIN_GRANT_EVENTS", default_value = "365days", value_parser = parse_duration)]
    pub retain_grant_events: Duration,

    /// Finished webhook deliveries (with their attempts) are deleted this long after they finished.
    #[arg(long, env = "JIT_IAM_RETAIN_WEBHOOK_DELIVERIES", default_value = "30days", value_parser = parse_duration)]
    pub retain_webhook_deliveries: Duration,

    /// Sync and reconciliation runs are deleted this long after they finished (never an integration's latest).
    #[arg(long, env = "JIT_IAM_RETAIN_RUNS", default_value = "14days", value_parser = parse_duration)]
    pub retain_runs: Duration,

    /// Time between two rounds of pruning.
    #[arg(long, env = "JIT_IAM_PRUNE_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub prune_interval: Duration,
}

/// What `/metrics` serves and who may read it.
#[derive(Clone, Debug, Args)]
pub struct MetricsConfig {
    /// How often the gauges read from Postgres (grants by status, queues) are
    /// refreshed; a scrape only renders the last values.
    #[arg(long, env = "JIT_IAM_METRICS_REFRESH", default_value = "5s", value_parser = parse_duration)]
    pub metrics_refresh: Duration,

    /// When set, `/metrics` needs `Authorization: Bearer <this token>` (at least 16 characters); unset, it is open.
    #[arg(long, env = "JIT_IAM_METRICS_TOKEN", hide_env_values = true, value_parser = MetricsToken::from_str)]
    pub metrics_token: Option<MetricsToken>,
}

/// The SHA-256 of the `/metrics` token: compared in constant time, never printed.
#[derive(Clone)]
pub struct MetricsToken(pub [u8; 32]);

impl fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

impl FromStr for MetricsToken {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.len() < 16 || value.contains(char::is_whitespace) {
            return Err("the metrics token must be at least 16 characters, without spaces".into());
        }
        Ok(MetricsToken(Sha256::digest(value.as_bytes()).into()))
    }
}

/// The delays between the attempts of a delivery.
#[derive(Clone, Debug)]
pub struct RetrySchedule(pub Vec<Duration>);

fn parse_retry_schedule(value: &str) -> Result<RetrySchedule, String> {
    crate::webhooks::retry::parse_retry_schedule(value).map(RetrySchedule)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl ServeConfig {
    /// Checks that values fit together; clap has already checked each one alone.
    pub fn validate(&self) -> Result<(), String> {
        if self.api_tokens.is_none() {
            return Err("JIT_IAM_API_TOKENS is required: give at least one `name:token`".into());
        }
        let session = self.aws.session_duration.as_secs();
        if !(900..=43_200).contains(&session) {
            return Err(format!(
                "JIT_IAM_SESSION_DURATION must lie between 15m and 12h, got {}",
                humantime::format_duration(self.aws.session_duration)
            ));
        }
        if let Some(arn) = &self.aws.service_principal_arn {
            crate::domain::arn::PrincipalArn::parse(arn).map_err(|e| format!("JIT_IAM_SERVICE_PRINCIPAL_ARN: {e}"))?;
        }
        let max_allowed = Duration::from_secs(730 * 24 * 3600);
        if self.grants.max_grant > max_allowed {
            return Err("JIT_IAM_MAX_GRANT may be at most 730 days".into());
        }
        if self.grants.min_grant.is_zero() || self.grants.min_grant > self.grants.max_grant {
            return Err("JIT_IAM_MIN_GRANT must be positive and not above JIT_IAM_MAX_GRANT".into());
        }
        if self.worker.worker_lease < Duration::from_secs(2) {
            return Err("JIT_IAM_WORKER_LEASE must be at least 2s".into());
        }
        if self.sync.sync_interval < Duration::from_secs(10) {
            return Err("JIT_IAM_SYNC_INTERVAL must be at least 10s".into());
        }
        if self.request_timeout < Duration::from_secs(1) {
            return Err("JIT_IAM_REQUEST_TIMEOUT must be at least 1s".into());
        }
        if self.webhooks.expiry_notice.is_zero() {
            return Err("JIT_IAM_EXPIRY_NOTICE must be positive".into());
        }
        if self.metrics.metrics_refresh < Duration::from_millis(100) {
            return Err("JIT_IAM_METRICS_REFRESH must be at least 100ms".into());
        }
        if self.http_idle_timeout < Duration::from_secs(1) {
            return Err("JIT_IAM_HTTP_IDLE_TIMEOUT must be at least 1s".into());
        }
        let retain_events = self.retention.retain_grant_events;
        // Reconciliation reads the events of grants ended within the grace (access given again after the end).
        if !retain_events.is_zero() && retain_events < self.reconcile.orphan_grace {
            return Err(format!(
                "JIT_IAM_RETAIN_GRANT_EVENTS must be 0 (forever) or at least JIT_IAM_ORPHAN_GRACE ({}), got {}",
                humantime::format_duration(self.reconcile.orphan_grace),
                humantime::format_duration(retain_events)
            ));
        }
        if self.retention.prune_interval < Duration::from_secs(1) {
            return Err("JIT_IAM_PRUNE_INTERVAL must be at least 1s".into());
        }
        Ok(())
    }
}

/// Accepts `90` (seconds) or a human duration such as `15m`, `7days`, `1h30m`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(value).map_err(|e| format!("`{value}` is not a duration ({e})"))
}

/// One configured caller: a name for logs and audit, its role, and the SHA-256 of its token.
#[derive(Clone)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    /// False when the entry named no role and `admin` was assumed (logged at start).
    pub role_given: bool,
    pub sha256: [u8; 32],
}

#[derive(Clone)]
pub struct ApiTokens(pub Vec<ApiToken>);

impl fmt::Debug for ApiTokens {
    // Names and roles only: the tokens themselves are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|t| format!("{}:{}", t.name, t.role.as_str()))).finish()
    }
}

impl FromStr for ApiTokens {
    type Err = String;

    /// `name:token[:role]` entries separated by commas. A token may not hold
    /// `:` (a typo in a role must fail, not silently become part of the token).
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut tokens: Vec<ApiToken> = Vec::new();
        for (index, entry) in value.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let (name, rest) =
                entry.split_once(':').ok_or_else(|| format!("entry {} is not `name:token[:role]`", index + 1))?;
            let (token, role) = match rest.split_once(':') {
                None => (rest, None),
                Some((token, role)) => {
                    let parsed = Role::parse(role).filter(|r| *r != Role::Service).ok_or_else(|| {
                        format!("entry {}: the role must be admin, portal or auditor (a token holds no `:`)", index + 1)
                    })?;
                    (token, Some(parsed))
                }
            };
            let valid_name = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !valid_name {
                return Err(format!(
                    "entry {}: the name must be 1-64 characters of letters, digits, '-', '_' or '.'",
                    index + 1
                ));
            }
            if token.len() < 16 {
                return Err(format!("token `{name}` must be at least 16 characters long"));
            }
            let sha256: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if tokens.iter().any(|t| t.name == name) {
                return Err(format!("token name `{name}` is given twice"));
            }
            if tokens.iter().any(|t| t.sha256 == sha256) {
                return Err(format!("token `{name}` is the same as another token"));
            }
            tokens.push(ApiToken {
                name: name.to_string(),
                role: role.unwrap_or(Role::Admin),
                role_given: role.is_some(),
                sha256,
            });
        }
        if tokens.is_empty() {
            return Err("no token given".into());
        }
        Ok(ApiTokens(tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_and_human_forms() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("7days").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn tokens_are_named_hashed_and_checked() {
        let tokens: ApiTokens = "portal:0123456789abcdef, ops:fedcba9876543210".parse().unwrap();
        assert_eq!(tokens.0.len(), 2);
        assert_eq!(tokens.0[1].name, "ops");
        assert!(!format!("{tokens:?}").contains("0123456789abcdef"));
        assert!("portal".parse::<ApiTokens>().is_err());
        assert!("portal:short".parse::<ApiTokens>().is_err());
        assert!("a:0123456789abcdef,a:0123456789abcdeg".parse::<ApiTokens>().is_err());
        assert!("a:0123456789abcdef,b:0123456789abcdef".parse::<ApiTokens>().is_err());
        assert!("bad name:0123456789abcdef".parse::<ApiTokens>().is_err());
    }

    #[test]
    fn the_metrics_token_is_long_enough_hashed_and_never_printed() {
        let token: MetricsToken = "0123456789abcdef".parse().unwrap();
        assert!(token.matches("0123456789abcdef"));
        assert!(!token.matches("0123456789abcdeg"));
        assert!(!format!("{token:?}").contains("0123456789abcdef"));
        assert!("short".parse::<MetricsToken>().is_err());
        assert!("0123456789 abcdef".parse::<MetricsToken>().is_err());
    }

    #[test]
    fn a_token_without_a_role_is_admin_and_a_bad_role_is_refused() {
        let tokens: ApiTokens =
            "root:0123456789abcdef,portal:1123456789abcdef:portal,audit:2123456789abcdef:auditor".parse().unwrap();
        let roles: Vec<_> = tokens.0.iter().map(|t| (t.role, t.role_given)).collect();
        assert_eq!(roles, [(Role::Admin, false), (Role::Portal, true), (Role::Auditor, true)]);
        assert!(tokens.identify("1123456789abcdef").is_some_and(|c| c.role == Role::Portal));
        assert!(tokens.identify("1123456789abcdef:portal").is_none());
        assert!("portal:1123456789abcdef:admn".parse::<ApiTokens>().is_err());
        assert!("portal:1123456789abcdef:".parse::<ApiTokens>().is_err());
    }
}
