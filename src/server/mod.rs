//! `serve`: start-up, the HTTP server, the workers, and shutdown.

mod keep_alive;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use uuid::Uuid;

use crate::app::{App, AppState, Wakeups};
use crate::aws::AwsPool;
use crate::config::ServeConfig;
use crate::storage::page_cache::PageCache;
use crate::webhooks::destination::DestinationRules;
use crate::webhooks::sender::Sender;
use crate::{api, storage, telemetry, worker};
use keep_alive::HttpTimeouts;

/// Prepares the database, then serves the API and runs the workers until SIGINT or SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    if !config.skip_migrations {
        storage::create_database_if_missing(&config.database).await?;
    }
    let db = storage::connect(&config.database).await?;
    if !config.skip_migrations {
        storage::migrate(&db).await?;
    }
    let installation_id = storage::installation_id(&db).await.context("cannot read the installation id")?;
    let worker_db = storage::connect_pool(&config.database, worker_pool_size(&config), WORKER_ACQUIRE_TIMEOUT).await?;
    let webhook_db = storage::connect_pool(&config.database, WEBHOOK_DB_CONNECTIONS, WORKER_ACQUIRE_TIMEOUT).await?;
    let webhook_sender = Sender::new(DestinationRules {
        allow_http: config.webhooks.webhook_allow_http,
        allow_private_networks: config.webhooks.webhook_allow_private_networks,
    });
    let aws = AwsPool::load(config.aws.clone()).await;
    let tokens = config.api_tokens.clone().context("JIT_IAM_API_TOKENS is required")?;
    for token in tokens.0.iter().filter(|t| !t.role_given) {
        tracing::warn!(token = %token.name, "API token without a role: it is an admin (give `name:token:role`)");
    }
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    let metrics = telemetry::install_metrics()?;
    let instance_id = instance_id();
    let (grant_updates, _) = broadcast::channel(1024);
    let grant_slots = Arc::new(Semaphore::new(config.worker.worker_concurrency as usize));
    let browse_cache = PageCache::new(config.browse_cache_mb as usize * 1024 * 1024);
    let state = AppState::new(App {
        config,
        db,
        worker_db,
        webhook_db,
        aws,
        webhook_sender,
        tokens,
        instance_id,
        installation_id,
        wake: Wakeups::default(),
        grant_slots,
        grant_updates,
        browse_cache,
        metrics,
    });

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    // The first scrape already shows the database's gauges.
    worker::gauges::refresh(&state).await;
    let mut workers = worker::spawn(state.clone(), shutdown.clone());
    tracing::info!(address = %listener.local_addr()?, instance = %state.instance_id, "listening");
    let timeouts = HttpTimeouts { header: HEADER_READ_TIMEOUT, idle: state.config.http_idle_timeout };
    let served = serve_http(listener, api::router(state.clone()), timeouts, shutdown.clone()).await;
    shutdown.cancel();
    while workers.join_next().await.is_some() {}
    served.context("the HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// A client must send its request head within this time (slow-header attacks).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight at shutdown get this long to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves HTTP/1.1 until `shutdown`, then lets requests in flight finish.
/// (axum::serve has no header read timeout; hyper's needs a timer. HTTP/2 is
/// left to the load balancer in front: it has no header timeout of its own.)
async fn serve_http(
    listener: TcpListener,
    router: Router,
    timeouts: HttpTimeouts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().header_read_timeout(timeouts.header);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // e.g. too many open files: back off instead of spinning
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service =
            TowerToHyperService::new(router.clone().map_request(|r: hyper::Request<Incoming>| r.map(Body::new)));
        let (stream, timer) = keep_alive::watch(stream, timeouts);
        let mut builder = builder.clone();
        builder.http1().timer(timer);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    Ok(())
}

/// Workers wait for a connection rather than fail: their work is not in a hurry.
const WORKER_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection per grant in flight, one per account being synced, two
/// per account being reconciled (a repair holds its grant's row lock), and a
/// few for the LISTEN connection, lease renewals and claims.
fn worker_pool_size(config: &ServeConfig) -> u32 {
    config.worker.worker_concurrency
        + config.sync.sync_account_concurrency
        + 2 * config.reconcile.reconcile_account_concurrency
        + 4
}

/// Recording attempts and claiming deliveries: short statements, a handful of
/// connections carry thousands of deliveries a second.
const WEBHOOK_DB_CONNECTIONS: u32 = 4;

/// `<host>:<pid>:<random>`: unique per process, readable in the database.
fn instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "jit-iam".into());
    let random = Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = ctrl_c.await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    shutdown.cancel();
}
