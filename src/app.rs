//! The one shared state of the service: every handler and worker holds an `AppState`.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::sync::{broadcast, Notify, Semaphore};
use uuid::Uuid;

use crate::aws::AwsPool;
use crate::config::{ApiTokens, ServeConfig};
use crate::domain::grant::Grant;
use crate::storage::page_cache::PageCache;
use crate::webhooks::sender::Sender;

/// A grant changed: its new row when this process made the change, else only its id.
#[derive(Clone, Debug)]
pub struct GrantUpdate {
    pub id: Uuid,
    pub grant: Option<Arc<Grant>>,
}

pub struct App {
    pub config: ServeConfig,
    /// The HTTP API's connections.
    pub db: PgPool,
    /// The workers' own connections: a grant being applied holds one for its
    /// whole step, and must never starve the API (nor the API it).
    pub worker_db: PgPool,
    /// The webhook deliveries' own few connections: a flood of events never
    /// takes the grant worker's.
    pub webhook_db: PgPool,
    pub aws: AwsPool,
    pub webhook_sender: Sender,
    pub tokens: ApiTokens,
    /// Names this process in leases, so a replica knows which claims are its own.
    pub instance_id: String,
    /// Names this installation (its database) in the tags of the policies it creates.
    pub installation_id: Uuid,
    pub wake: Wakeups,
    /// The grant worker's slots (`JIT_IAM_WORKER_CONCURRENCY`), taken by its
    /// claims and by submissions handed straight to it.
    pub grant_slots: Arc<Semaphore>,
    /// Grants that just changed, for requests waiting on them (`?wait=`).
    pub grant_updates: broadcast::Sender<GrantUpdate>,
    pub browse_cache: PageCache,
    pub metrics: PrometheusHandle,
}

/// Cheap to clone; every handler and worker holds one.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl AppState {
    pub fn new(app: App) -> Self {
        Self(Arc::new(app))
    }
}

/// In-process wake-ups, set by the API after a commit and by NOTIFY from other replicas.
#[derive(Debug, Default)]
pub struct Wakeups {
    pub syncs: Notify,
    pub grants: Notify,
    pub reconciles: Notify,
    /// Webhook deliveries were recorded or became due.
    pub webhooks: Notify,
    /// A grant changed: its expiry notice may be due sooner.
    pub expiry_notices: Notify,
}

impl Wakeups {
    pub fn wake_all(&self) {
        self.syncs.notify_one();
        self.grants.notify_one();
        self.reconciles.notify_one();
        self.webhooks.notify_one();
        self.expiry_notices.notify_one();
    }
}
