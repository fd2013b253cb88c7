//! Inventory syncs, a [`Job`] of the job runner: each account is synced in its
//! own transaction.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::Notify;
use uuid::Uuid;

use super::jobs::{IdField, Job};
use crate::app::AppState;
use crate::aws::inventory::{self, CallLimiter};
use crate::aws::AwsError;
use crate::domain::integration::{Connection, Integration};
use crate::domain::sync::{run_error, AccountSyncStatus, SyncAccountResult, SyncRun, SyncStatus, TypeCounts};
use crate::domain::tags::filter_document;
use crate::storage;
use crate::storage::accounts::ListedAccount;
use crate::storage::run_queue::RunQueue;

/// Syncs one replica runs at once; each already runs many AWS calls in parallel.
const CONCURRENT_SYNCS: usize = 2;

/// Inventory syncs, for the [job runner](super::jobs::run).
pub struct Syncs;

impl Job for Syncs {
    const NAME: &'static str = "sync";
    const LEASE_LOST: &'static str = "sync lease lost; another replica took it over";
    const ID_FIELD: IdField = IdField::SyncId;
    const SLOTS: usize = CONCURRENT_SYNCS;
    const QUEUE: RunQueue<Self::Run> = storage::syncs::QUEUE;
    type Run = SyncRun;

    fn id(run: &SyncRun) -> Uuid {
        run.id
    }

    fn wake(state: &AppState) -> &Notify {
        &state.wake.syncs
    }

    fn every(state: &AppState) -> Option<Duration> {
        Some(state.config.sync.sync_interval)
    }

    async fn enqueue_due(state: &AppState, every: Duration) -> Result<u64, sqlx::Error> {
        storage::syncs::enqueue_due(&state.worker_db, every).await
    }

    async fn execute(state: &AppState, run: &SyncRun) -> Result<(), sqlx::Error> {
        sync_integration(state, run).await
    }
}

/// The accounts to sync and, when listing them failed, why.
struct AccountPlan {
    accounts: Vec<ListedAccount>,
    error: Option<AwsError>,
    aws_calls: u64,
}

async fn plan_accounts(state: &AppState, integration: &Integration) -> AccountPlan {
    let root_id = integration.root_account.account_id.clone();
    let root = || ListedAccount { account_id: root_id.clone(), name: None, status: "ACTIVE".into(), is_root: true };
    if integration.connection == Connection::SingleAccount {
        return AccountPlan { accounts: vec![root()], error: None, aws_calls: 0 };
    }
    let clients = state.aws.clients(integration, &root_id).await;
    let limiter = CallLimiter::new(1);
    match inventory::list_organization_accounts(&clients, &limiter).await {
        Ok(listed) => {
            let mut accounts: Vec<ListedAccount> = listed
                .into_iter()
                .map(|a| ListedAccount { is_root: a.id == root_id, account_id: a.id, name: a.name, status: a.status })
                .collect();
            if !accounts.iter().any(|a| a.is_root) {
                accounts.push(root());
            }
            AccountPlan { accounts, error: None, aws_calls: limiter.calls() }
        }
        Err(error) => AccountPlan { accounts: vec![root()], error: Some(error), aws_calls: limiter.calls() },
    }
}

async fn sync_integration(state: &AppState, run: &SyncRun) -> Result<(), sqlx::Error> {
    let started = Instant::now();
    let Some(integration) = storage::integrations::get(&state.worker_db, run.integration_id).await? else {
        return Ok(()); // deleted meanwhile; its runs went with it
    };
    tracing::info!(sync_id = %run.id, integration_id = %integration.id, "sync started");
    let plan = plan_accounts(state, &integration).await;
    {
        let mut tx = state.worker_db.begin().await?;
        // When listing failed, keep the accounts known so far.
        storage::accounts::replace(&mut tx, integration.id, &plan.accounts, plan.error.is_none()).await?;
        tx.commit().await?;
    }

    let concurrency = state.config.sync.sync_account_concurrency as usize;
    let account_syncs: Vec<_> =
        plan.accounts.iter().map(|account| sync_account(state, &integration, run, account)).collect();
    let results: Vec<Result<SyncAccountResult, sqlx::Error>> =
        futures::stream::iter(account_syncs).buffer_unordered(concurrency).collect().await;
    let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;

    let mut counts = TypeCounts::new();
    for result in &results {
        for (kind, n) in &result.counts {
            *counts.entry(kind.clone()).or_default() += n;
        }
    }
    let succeeded = results.iter().filter(|r| r.status == AccountSyncStatus::Succeeded).count();
    let mut failed = results.iter().filter(|r| r.status == AccountSyncStatus::Failed).count();
    failed += usize::from(plan.error.is_some());
    let status = SyncStatus::from_accounts(succeeded, failed);
    let aws_calls = plan.aws_calls as i64 + results.iter().map(|r| r.aws_calls).sum::<i64>();
    let error = run_error(plan.error.as_ref().map(AwsError::body), &results);
    let outcome = storage::syncs::Outcome { status, aws_calls, counts: &counts, error: error.as_ref() };
    storage::syncs::finish(&state.worker_db, run.id, &state.instance_id, outcome).await?;

    metrics::histogram!("jit_iam_sync_duration_seconds").record(started.elapsed().as_secs_f64());
    metrics::counter!("jit_iam_sync_account_failures_total").increment(failed as u64);
    tracing::info!(sync_id = %run.id, integration_id = %integration.id, status = status.as_str(), aws_calls,
                   seconds = started.elapsed().as_secs_f64(), "sync finished");
    Ok(())
}

/// Lists one account and replaces its stored inventory in one transaction.
/// AWS failures are recorded as the account's result; database failures stop the run.
async fn sync_account(
    state: &AppState,
    integration: &Integration,
    run: &SyncRun,
    account: &ListedAccount,
) -> Result<SyncAccountResult, sqlx::Error> {
    let started_at = Utc::now();
    let mut result = SyncAccountResult {
        account_id: account.account_id.clone(),
        status: AccountSyncStatus::Skipped,
        error: None,
        counts: TypeCounts::new(),
        aws_calls: 0,
        started_at,
        finished_at: started_at,
    };
    let mut found = Vec::new();
    if account.status == "ACTIVE" {
        let clients = state.aws.clients(integration, &account.account_id).await;
        let limiter = CallLimiter::new(state.config.sync.sync_concurrency as usize);
        let listed =
            inventory::list_account(&clients, &account.account_id, account.is_root, &integration.options, &limiter)
                .await;
        result.aws_calls = limiter.calls() as i64;
        match listed {
            Ok(resources) => {
                for resource in &resources {
                    *result.counts.entry(resource.resource_type.as_str().to_string()).or_default() += 1;
                }
                found = resources;
                result.status = AccountSyncStatus::Succeeded;
            }
            Err(error) => {
                tracing::warn!(sync_id = %run.id, account_id = %account.account_id, error = %error, "account sync failed");
                result.status = AccountSyncStatus::Failed;
                result.error = Some(error.body());
            }
        }
    }
    result.finished_at = Utc::now();

    let mut tx = state.worker_db.begin().await?;
    if result.status == AccountSyncStatus::Succeeded {
        // What is offered follows the filter as it is now, not as it was when
        // the sync started: a filter changed meanwhile wins.
        let Some(tags) = storage::integrations::tag_filter_for_share(&mut *tx, integration.id).await? else {
            return Ok(result); // deleted meanwhile; its inventory went with it
        };
        let filter = filter_document(&tags);
        storage::resources::replace_account(&mut tx, integration.id, &account.account_id, run.id, &found, &filter)
            .await?;
    }
    storage::accounts::record_sync(
        &mut *tx,
        integration.id,
        &account.account_id,
        run.id,
        result.status,
        result.error.as_ref(),
    )
    .await?;
    storage::syncs::record_account(&mut *tx, run.id, &result).await?;
    tx.commit().await?;
    Ok(result)
}
