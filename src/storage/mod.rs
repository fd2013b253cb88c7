//! Postgres: connecting, creating the database, migrations, and one module of
//! queries per table family. Query helpers take `impl PgExecutor` so they run
//! on the pool or inside a transaction alike.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::config::DatabaseConfig;

pub mod accounts;
pub mod audit;
pub mod grants;
pub mod integrations;
pub mod page_cache;
pub mod reconciles;
pub mod resources;
pub mod retention;
pub mod run_queue;
pub mod syncs;
pub mod webhooks;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Why the database could not be prepared, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("DATABASE_URL is not a valid Postgres URL: {0}")]
    BadUrl(sqlx::Error),
    #[error("cannot connect to Postgres at {target}: {source}")]
    Unreachable { target: String, source: sqlx::Error },
    /// TLS was asked for (`sslmode`) and could not be set up: a configuration
    /// problem (wrong `sslrootcert`, a server without TLS), never retried.
    #[error("cannot connect to Postgres at {target} over TLS as DATABASE_URL asks (sslmode, sslrootcert): {source}")]
    Tls { target: String, source: sqlx::Error },
    #[error("cannot create database {name}: {source}")]
    Create { name: String, source: sqlx::Error },
    #[error("cannot apply migrations: {0}")]
    Migrate(sqlx::migrate::MigrateError),
}

impl StartupError {
    /// Whether fixing the configuration, not waiting, is what helps (exit code 2).
    pub fn is_configuration(&self) -> bool {
        matches!(self, StartupError::BadUrl(_) | StartupError::Tls { .. })
    }

    fn connecting(options: &PgConnectOptions, source: sqlx::Error) -> Self {
        let target = describe(options);
        // sqlx reports a failed handshake (an unknown issuer, a wrong name) as
        // I/O carrying rustls' error as invalid data.
        let tls_required = !matches!(options.get_ssl_mode(), PgSslMode::Disable | PgSslMode::Allow | PgSslMode::Prefer);
        let tls_failed = match &source {
            sqlx::Error::Tls(_) => true,
            sqlx::Error::Io(io) => tls_required && io.kind() == std::io::ErrorKind::InvalidData,
            _ => false,
        };
        if tls_failed {
            StartupError::Tls { target, source }
        } else {
            StartupError::Unreachable { target, source }
        }
    }
}

/// `DATABASE_URL` as sqlx reads it (`sslmode`, `sslrootcert` included; the
/// default `prefer` uses TLS when the server offers it), named `jit-iam` in
/// `pg_stat_activity` unless the URL names it otherwise.
fn options(config: &DatabaseConfig) -> Result<PgConnectOptions, StartupError> {
    let options = PgConnectOptions::from_str(&config.database_url).map_err(StartupError::BadUrl)?;
    let options = match options.get_application_name() {
        Some(_) => options,
        None => options.application_name("jit-iam"),
    };
    Ok(options.log_statements(tracing::log::LevelFilter::Trace))
}

fn describe(options: &PgConnectOptions) -> String {
    format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or("postgres"))
}

/// Creates the database named in the URL when it does not exist yet.
pub async fn create_database_if_missing(config: &DatabaseConfig) -> Result<(), StartupError> {
    let target = options(config)?;
    let Some(name) = target.get_database().map(str::to_string) else {
        return Ok(());
    };
    let maintenance = target.clone().database("postgres");
    let mut conn = PgConnection::connect_with(&maintenance)
        .await
        .map_err(|source| StartupError::connecting(&maintenance, source))?;
    let exists: bool = sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
        .bind(&name)
        .fetch_one(&mut conn)
        .await
        .map_err(|source| StartupError::Create { name: name.clone(), source })?;
    if !exists {
        let statement = format!("create database \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&statement).execute(&mut conn).await {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another replica created it at the same moment.
            Err(e) if sql_state(&e).as_deref() == Some("42P04") => {}
            Err(source) => return Err(StartupError::Create { name, source }),
        }
    }
    let _ = conn.close().await;
    Ok(())
}

/// The pool of the HTTP API. Connections are not pinged before each use: the
/// ping is a round trip to Postgres that cost browsing about a tenth of its
/// throughput. A connection that died with a database restart fails its one
/// request with 503 `database_unavailable` and is dropped.
pub async fn connect(config: &DatabaseConfig) -> Result<PgPool, StartupError> {
    let pool = PgPoolOptions::new().max_connections(config.db_max_connections).test_before_acquire(false);
    connect_with(config, pool.acquire_timeout(config.db_acquire_timeout)).await
}

/// A pool of `size` connections, each checked before use; `acquire_timeout`
/// bounds the wait for a free one.
pub async fn connect_pool(
    config: &DatabaseConfig,
    size: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, StartupError> {
    connect_with(config, PgPoolOptions::new().max_connections(size).acquire_timeout(acquire_timeout)).await
}

async fn connect_with(config: &DatabaseConfig, pool: PgPoolOptions) -> Result<PgPool, StartupError> {
    let options = options(config)?;
    pool.connect_with(options.clone()).await.map_err(|source| StartupError::connecting(&options, source))
}

pub async fn migrate(pool: &PgPool) -> Result<(), StartupError> {
    MIGRATOR.run(pool).await.map_err(StartupError::Migrate)
}

/// This installation's id, made by the first migration.
pub async fn installation_id(db: impl sqlx::PgExecutor<'_>) -> Result<uuid::Uuid, sqlx::Error> {
    sqlx::query_scalar("select installation_id()").fetch_one(db).await
}

/// Postgres's clock: the one clock grant expiry is decided by, whatever the
/// clocks of the replicas say.
pub async fn now(db: impl sqlx::PgExecutor<'_>) -> Result<chrono::DateTime<chrono::Utc>, sqlx::Error> {
    sqlx::query_scalar("select now()").fetch_one(db).await
}

pub fn sql_state(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// A unique violation of the named constraint.
pub fn violates(error: &sqlx::Error, constraint: &str) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.constraint() == Some(constraint))
}

/// Errors that mean "Postgres is not there right now", as opposed to a bad query.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        // A connection cut off mid-handshake (TLS, or the SSLRequest that
        // precedes it: "unexpected response from SSLRequest") is an outage too.
        sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        // admin_shutdown, crash_shutdown, cannot_connect_now
        sqlx::Error::Database(e) => matches!(e.code().as_deref(), Some("57P01" | "57P02" | "57P03")),
        _ => false,
    }
}
