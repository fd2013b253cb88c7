//! Reconciliation: runs that read each account's IAM once and compare it with
//! jit-iam's grants, then put finding back (or only report it). Scheduled every
//! `JIT_IAM_RECONCILE_INTERVAL` and run on demand; one run per integration at
//! a time across replicas, claimed with a lease like syncs.
//!
//! A repair of an active grant holds the grant's row lock while it changes
//! IAM, and skips a grant a worker holds: a revocation waits for the repair,
//! then removes what it put back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use super::grants::call_events;
use super::jobs::{IdField, Job};
use crate::app::AppState;
use crate::aws::iam_changes::IdentityCenterAccess;
use crate::aws::iam_changes::{IamChanges, SdkIam};
use crate::aws::identity_center;
use crate::aws::inventory::CallLimiter;
use crate::aws::reconcile::{IamSnapshot, PolicyState, PrincipalState};
use crate::aws::{AwsClients, AwsError};
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::grant::Grant;
use crate::domain::integration::Integration;
use crate::domain::policy::INSTALLATION_ID_TAG;
use crate::domain::reconcile::{Finding, FindingAction, FindingKind, ReconcileRun, ReconcileStatus};
use crate::grants::drift::{self, Drift, Repaired};
use crate::grants::{sessions, PgLedger};
use crate::storage;
use crate::storage::grants::NewEvent;
use crate::storage::run_queue::RunQueue;

/// The name grant events and logs give reconciliation as an actor.
const ACTOR: &str = "reconcile";

/// Reconciliations, for the [job runner](super::jobs::run): one at a time.
pub struct Reconciliations;

impl Job for Reconciliations {
    const NAME: &'static str = "reconciliation";
    const LEASE_LOST: &'static str = "reconciliation lease lost";
    const ID_FIELD: IdField = IdField::RunId;
    const SLOTS: usize = 1;
    const QUEUE: RunQueue<Self::Run> = storage::reconciles::QUEUE;
    type Run = ReconcileRun;

    fn id(run: &ReconcileRun) -> Uuid {
        run.id
    }

    fn wake(state: &AppState) -> &Notify {
        &state.wake.reconciles
    }

    /// Scheduled every `JIT_IAM_RECONCILE_INTERVAL`, unless zero.
    fn every(state: &AppState) -> Option<Duration> {
        Some(state.config.reconcile.reconcile_interval).filter(|every| !every.is_zero())
    }

    async fn enqueue_due(state: &AppState, every: Duration) -> Result<u64, sqlx::Error> {
        let repair = state.config.reconcile.reconcile_repair;
        storage::reconciles::enqueue_due(&state.worker_db, every, repair).await
    }

    async fn execute(state: &AppState, run: &ReconcileRun) -> Result<(), sqlx::Error> {
        reconcile(state, run).await
    }
}

async fn reconcile(state: &AppState, run: &ReconcileRun) -> Result<(), sqlx::Error> {
    let Some(integration) = storage::integrations::get(&state.worker_db, run.integration_id).await? else {
        return Ok(()); // deleted meanwhile; its runs went with it
    };
    let mut accounts: Vec<String> = storage::accounts::list(&state.worker_db, integration.id, None, i64::MAX)
        .await?
        .into_iter()
        .filter(|a| a.is_root || a.status == "ACTIVE")
        .map(|a| a.account_id)
        .collect();
    if accounts.is_empty() {
        accounts.push(integration.root_account.account_id.clone());
    }
    // Accounts side by side (each one's calls one after the other); findings in the accounts' order.
    let concurrency = state.config.reconcile.reconcile_account_concurrency as usize;
    let checks: Vec<_> = accounts.iter().map(|account| check(state, run, &integration, account)).collect();
    let checked: Vec<_> = futures::stream::iter(checks).buffered(concurrency).collect().await;
    let (mut findings, mut aws_calls, mut error) = (Vec::new(), 0, None);
    for (account, mut checked, outcome) in checked {
        if let Err(e) = outcome? {
            tracing::warn!(run_id = %run.id, account_id = %account, error = %e, "cannot reconcile an account");
            error.get_or_insert(e.body());
        }
        aws_calls += checked.calls;
        findings.append(&mut checked.findings);
    }
    for finding in &findings {
        metrics::counter!("jit_iam_drift_findings_total", "kind" => finding.kind.as_str(), "action" => finding.action.as_str())
            .increment(1);
    }
    let failed = findings.iter().any(|f| f.action == FindingAction::Failed);
    let status = if error.is_some() || failed { ReconcileStatus::Partial } else { ReconcileStatus::Succeeded };
    tracing::info!(run_id = %run.id, findings = findings.len(), aws_calls, status = status.as_str(), "reconciliation finished");
    storage::reconciles::finish(
        &state.worker_db,
        run.id,
        &state.instance_id,
        status,
        &findings,
        aws_calls,
        error.as_ref(),
    )
    .await?;
    Ok(())
}

/// Reconciles one account of a run; answers the account, what it found and how that ended.
async fn check<'a>(
    state: &'a AppState,
    run: &'a ReconcileRun,
    integration: &'a Integration,
    account: &'a str,
) -> (&'a str, Account<'a>, Result<Result<(), AwsError>, sqlx::Error>) {
    let mut checked = Account { state, run, integration, account, findings: Vec::new(), calls: 0 };
    let outcome = checked.reconcile().await;
    (account, checked, outcome)
}

/// One account of a run.
struct Account<'a> {
    state: &'a AppState,
    run: &'a ReconcileRun,
    integration: &'a Integration,
    account: &'a str,
    findings: Vec<Finding>,
    calls: i64,
}

impl Account<'_> {
    /// Reads the account's IAM once, then checks every active grant, the
    /// policies of ended grants, and jit-iam's policies no grant knows.
    async fn reconcile(&mut self) -> Result<Result<(), AwsError>, sqlx::Error> {
        let clients = self.state.aws.clients(self.integration, self.account).await;
        let limiter = CallLimiter::new(1);
        let snapshot = IamSnapshot::read(&clients, &limiter).await;
        self.calls += limiter.calls() as i64;
        let snapshot = match snapshot {
            Ok(snapshot) => snapshot,
            Err(e) => return Ok(Err(e)),
        };
        let db = &self.state.worker_db;
        // Identity Center grants go through the root account, the instance's: found once, when needed.
        let mut identity_center = None;
        for grant in storage::grants::active_in_account(db, self.integration.id, self.account).await? {
            if !drift::covers(&grant) {
                let (root_clients, instance) =
                    self.root_identity_center(&mut identity_center, &clients, &limiter).await;
                self.check_identity_center_grant(&root_clients, instance, grant).await?;
                continue;
            }
            self.adopt(&clients.iam, &snapshot, &grant).await?;
            self.check_grant(&clients.iam, &snapshot, grant).await?;
        }
        let known = storage::grants::generated_policies_in_account(db, self.account).await?;
        for (grant_id, arn, status) in &known {
            let ended = status == "revoked" || status == "failed";
            if let (true, Some(policy)) = (ended, snapshot.policies.get(arn)) {
                self.left_after_end(&clients.iam, &snapshot, *grant_id, policy).await?;
            }
        }
        let grace = self.state.config.reconcile.orphan_grace;
        for grant in storage::grants::shared_removed_at_end(db, self.integration.id, self.account, grace).await? {
            let given_again = match drift::covers(&grant) {
                true => drift::given_again(&snapshot, &grant),
                false => {
                    let (root_clients, instance) =
                        self.root_identity_center(&mut identity_center, &clients, &limiter).await;
                    let sdk = self.identity_center_calls(&root_clients, instance);
                    let read = drift::given_again_in_identity_center(&sdk, &grant).await;
                    self.calls += sdk.records().len() as i64;
                    match read {
                        Ok(found) => found,
                        Err(e) => {
                            let finding = Drift {
                                kind: FindingKind::AccessLeftAfterEnd,
                                target: grant.resource_arn.clone(),
                                evidence: "the membership or assignment could not be read".into(),
                            };
                            self.push(Some(grant.grant_id), finding, FindingAction::Failed, Some(e.to_string()));
                            continue;
                        }
                    }
                }
            };
            if let Some(finding) = given_again {
                self.report(&grant, finding, FindingAction::Reported).await?;
            }
        }
        self.denies_left_behind(&clients.iam, &snapshot).await?;
        if self.account == self.integration.root_account.account_id
            && self.integration.options.identity_center.is_some()
        {
            let (root_clients, instance) = self.root_identity_center(&mut identity_center, &clients, &limiter).await;
            self.orphaned_permission_sets(&root_clients, instance).await?;
        }
        let known: HashSet<&str> = known.iter().map(|(_, arn, _)| arn.as_str()).collect();
        let unknown = snapshot.policies.values().filter(|p| p.path == "/jit-iam/" && !known.contains(p.arn.as_str()));
        for policy in unknown {
            self.orphan(&clients.iam, &snapshot, policy).await?;
        }
        Ok(Ok(()))
    }

    /// The policy of a grant from before installation ids is tagged as this
    /// installation's (the one whose database knows the grant), once.
    async fn adopt(
        &mut self,
        iam: &aws_sdk_iam::Client,
        snapshot: &IamSnapshot,
        grant: &Grant,
    ) -> Result<(), sqlx::Error> {
        let Some(arn) = grant.policy_arn.as_ref().filter(|arn| snapshot.policies.contains_key(*arn)) else {
            return Ok(());
        };
        if grant.installation_id.is_some() {
            return Ok(());
        }
        let sdk = SdkIam::new(iam);
        let installation = self.state.installation_id;
        let tagged = sdk.tag_policy(arn, &[(INSTALLATION_ID_TAG, installation.to_string())]).await;
        self.calls += 1;
        match tagged {
            Ok(()) => storage::grants::adopt(&self.state.worker_db, grant.grant_id, installation).await,
            Err(e) => {
                tracing::warn!(grant_id = %grant.grant_id, error = %e, "cannot tag a policy from before installation ids");
                Ok(())
            }
        }
    }

    /// What IAM should hold for an active grant, and what it holds.
    async fn check_grant(
        &mut self,
        iam: &aws_sdk_iam::Client,
        snapshot: &IamSnapshot,
        grant: Grant,
    ) -> Result<(), sqlx::Error> {
        let principal = match drift::principal(snapshot, &grant) {
            Ok(principal) => principal,
            Err(gone) => return self.report(&grant, gone, FindingAction::Reported).await,
        };
        if let Some(renamed) = drift::renamed(&grant, principal) {
            self.report(&grant, renamed, FindingAction::Reported).await?;
        }
        let mut ledger = PgLedger::new(&self.state.worker_db, None);
        let drifts = drift::of_active_grant(&mut ledger, snapshot, &grant, principal).await?;
        self.report_or_repair(&SdkIam::new(iam), snapshot, &grant, Some(principal), drifts).await
    }

    /// Reports an active grant's drift, or repairs it when the run repairs.
    async fn report_or_repair(
        &mut self,
        sdk: &SdkIam<'_>,
        snapshot: &IamSnapshot,
        grant: &Grant,
        principal: Option<&PrincipalState>,
        drifts: Vec<Drift>,
    ) -> Result<(), sqlx::Error> {
        if drifts.is_empty() {
            return Ok(());
        }
        if !self.run.repair {
            for finding in drifts {
                self.report(grant, finding, FindingAction::Reported).await?;
            }
            return Ok(());
        }
        self.repair_grant(sdk, snapshot, grant, principal, drifts).await
    }

    /// The root account's clients and the integration's Identity Center
    /// instance, found the first time a run needs them (`found` keeps them).
    async fn root_identity_center(
        &mut self,
        found: &mut Option<(Arc<AwsClients>, Result<identity_center::Instance, AwsError>)>,
        clients: &Arc<AwsClients>,
        limiter: &CallLimiter,
    ) -> (Arc<AwsClients>, Result<identity_center::Instance, AwsError>) {
        if let Some(found) = found {
            return found.clone();
        }
        let root = &self.integration.root_account.account_id;
        let root_clients = match root == self.account {
            true => clients.clone(),
            false => self.state.aws.clients(self.integration, root).await,
        };
        let instance = self.identity_center_instance(&root_clients, limiter).await;
        found.insert((root_clients, instance)).clone()
    }

    /// The integration's Identity Center instance (as configured, or found
    /// with sso:ListInstances), for its grants' memberships and assignments.
    async fn identity_center_instance(
        &mut self,
        clients: &AwsClients,
        limiter: &CallLimiter,
    ) -> Result<identity_center::Instance, AwsError> {
        let before = limiter.calls();
        let found = match &self.integration.options.identity_center {
            Some(options) => identity_center::instance(clients, options, limiter).await,
            None => Err(AwsError::new(
                crate::aws::AwsErrorKind::Rejected,
                "sso",
                "the integration no longer has options.identity_center: its Identity Center instance is unknown",
            )),
        };
        self.calls += (limiter.calls() - before) as i64;
        found
    }

    /// The calls of an Identity Center grant's check or repair.
    fn identity_center_calls<'a>(
        &self,
        clients: &'a AwsClients,
        instance: Result<identity_center::Instance, AwsError>,
    ) -> SdkIam<'a> {
        SdkIam::new(&clients.iam).with_identity_center(IdentityCenterAccess {
            sso_admin: &clients.sso_admin,
            identity_store: &clients.identity_store,
            instance,
            provisioning_wait: self.state.config.grants.identity_center_provisioning_wait,
            assignment_creations: clients.identity_center_limits().assignment_creations(),
        })
    }

    /// What Identity Center holds for an active Identity Center grant
    /// (membership or assignment), and what it should (not in the IAM
    /// snapshot: read per grant).
    async fn check_identity_center_grant(
        &mut self,
        clients: &AwsClients,
        instance: Result<identity_center::Instance, AwsError>,
        grant: Grant,
    ) -> Result<(), sqlx::Error> {
        let sdk = self.identity_center_calls(clients, instance.clone());
        let mut ledger = PgLedger::new(&self.state.worker_db, None);
        let read = drift::of_identity_center_grant(&sdk, &mut ledger, &grant).await?;
        self.calls += sdk.records().len() as i64;
        let drifts = match read {
            Ok(drifts) => drifts,
            Err(e) => {
                let finding = Drift {
                    kind: FindingKind::AccessMissing,
                    target: grant.resource_arn.clone(),
                    evidence: "the group membership or assignment could not be read".into(),
                };
                self.push(Some(grant.grant_id), finding, FindingAction::Failed, Some(e.to_string()));
                return Ok(());
            }
        };
        let (changed, drifts): (Vec<Drift>, Vec<Drift>) =
            drifts.into_iter().partition(|d| d.kind == FindingKind::PrincipalChanged);
        for finding in changed {
            self.report(&grant, finding, FindingAction::Reported).await?;
        }
        let repairing = self.identity_center_calls(clients, instance);
        self.report_or_repair(&repairing, &IamSnapshot::default(), &grant, None, drifts).await
    }

    /// Puts an active grant's access back, holding its row lock.
    async fn repair_grant(
        &mut self,
        sdk: &SdkIam<'_>,
        snapshot: &IamSnapshot,
        grant: &Grant,
        principal: Option<&PrincipalState>,
        drifts: Vec<Drift>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.state.worker_db.begin().await?;
        if storage::grants::lock_active_for_repair(&mut *tx, grant.grant_id).await?.is_none() {
            drop(tx);
            for finding in drifts {
                self.report(grant, finding, FindingAction::Skipped).await?;
            }
            return Ok(());
        }
        let installation = self.state.installation_id;
        let mut events = Vec::new();
        let mut outcomes = Vec::new();
        for finding in drifts {
            let mut ledger = PgLedger::new(&self.state.worker_db, Some(&mut *tx));
            let repaired = drift::repair(sdk, &mut ledger, snapshot, grant, principal, &finding, installation).await?;
            events.push(NewEvent::drift(false, format!("{}: {}", finding.kind.as_str(), finding.evidence)));
            if matches!(repaired, Ok(Repaired::NowTheGrantsOwn)) {
                let message =
                    "put back by jit-iam, so no longer pre-existing: removed when the last grant holding it ends";
                events.push(NewEvent::drift(true, message));
            }
            outcomes.push((finding, repaired));
        }
        events.extend(call_events(&sdk.records()));
        self.calls += sdk.records().len() as i64;
        for (finding, repaired) in outcomes {
            let (action, detail) = match &repaired {
                Ok(_) => {
                    events.push(NewEvent::drift(true, format!("{} repaired", finding.kind.as_str())));
                    let record = self.repair_record(grant.grant_id, &finding);
                    storage::audit::record(&mut *tx, &record).await?;
                    (FindingAction::Repaired, None)
                }
                Err(e) => (FindingAction::Failed, Some(e.to_string())),
            };
            self.push(Some(grant.grant_id), finding, action, detail);
        }
        storage::grants::insert_events(&mut *tx, grant.grant_id, ACTOR, &events).await?;
        tx.commit().await
    }

    /// The policy of a grant that ended is still in IAM: detached from
    /// everyone and deleted.
    async fn left_after_end(
        &mut self,
        iam: &aws_sdk_iam::Client,
        snapshot: &IamSnapshot,
        grant_id: Uuid,
        policy: &PolicyState,
    ) -> Result<(), sqlx::Error> {
        let finding = Drift {
            kind: FindingKind::AccessLeftAfterEnd,
            target: policy.arn.clone(),
            evidence: "the policy of a grant that ended exists".into(),
        };
        if !self.run.repair {
            self.push(Some(grant_id), finding, FindingAction::Reported, None);
            return Ok(());
        }
        let sdk = SdkIam::new(iam);
        let removed = drift::remove_policy(&sdk, snapshot, &policy.arn, self.account).await;
        let mut events = vec![NewEvent::drift(false, format!("{}: {}", finding.kind.as_str(), finding.evidence))];
        events.extend(call_events(&sdk.records()));
        self.calls += sdk.records().len() as i64;
        let mut tx = self.state.worker_db.begin().await?;
        let (action, detail) = match removed {
            Ok(()) => {
                events.push(NewEvent::drift(true, "the leftover policy was detached and deleted"));
                storage::audit::record(&mut *tx, &self.repair_record(grant_id, &finding)).await?;
                (FindingAction::Repaired, None)
            }
            Err(e) => (FindingAction::Failed, Some(e.to_string())),
        };
        storage::grants::insert_events(&mut *tx, grant_id, ACTOR, &events).await?;
        tx.commit().await?;
        self.push(Some(grant_id), finding, action, detail);
        Ok(())
    }

    /// A policy under jit-iam's path that no grant knows: jit-iam's (tagged
    /// `managed-by=jit-iam`) is reported the first time and deleted once asked
    /// or past the grace period; anyone else's is left alone.
    async fn orphan(
        &mut self,
        iam: &aws_sdk_iam::Client,
        snapshot: &IamSnapshot,
        policy: &PolicyState,
    ) -> Result<(), sqlx::Error> {
        let sdk = SdkIam::new(iam);
        let tags = sdk.policy_tags(&policy.arn).await;
        self.calls += 1;
        let tags = match tags {
            Ok(tags) => tags,
            Err(e) => {
                let finding = Drift {
                    kind: FindingKind::OrphanedPolicy,
                    target: policy.arn.clone(),
                    evidence: "its tags could not be read".into(),
                };
                self.push(None, finding, FindingAction::Failed, Some(e.to_string()));
                return Ok(());
            }
        };
        let Some(finding) = drift::orphan(&policy.arn, &tags, self.state.installation_id) else {
            return Ok(());
        };
        let first_seen = storage::reconciles::orphan_seen(&self.state.worker_db, self.account, &policy.arn).await?;
        let grace =
            chrono::Duration::from_std(self.state.config.reconcile.orphan_grace).unwrap_or(chrono::Duration::MAX);
        let due = self.run.delete_orphans || first_seen + grace <= Utc::now();
        if !due {
            let detail =
                format!("first seen {}; deleted after the grace period or when a run asks", first_seen.to_rfc3339());
            self.push(None, finding, FindingAction::Kept, Some(detail));
            return Ok(());
        }
        let removed = drift::remove_policy(&sdk, snapshot, &policy.arn, self.account).await;
        self.calls += sdk.records().len() as i64 - 1;
        match removed {
            Ok(()) => {
                let mut tx = self.state.worker_db.begin().await?;
                storage::reconciles::forget_orphan(&mut *tx, self.account, &policy.arn).await?;
                let record = AuditRecord::service(AuditAction::OrphanDeleted, self.run.id)
                    .change("account_id", Value::Null, self.account)
                    .change("policy_arn", &policy.arn, Value::Null);
                storage::audit::record(&mut *tx, &record).await?;
                tx.commit().await?;
                self.push(
                    None,
                    finding,
                    FindingAction::Repaired,
                    Some("detached from every holder and deleted".into()),
                );
            }
            Err(e) => self.push(None, finding, FindingAction::Failed, Some(e.to_string())),
        }
        Ok(())
    }

    /// This installation's temporary permission sets (as the inventory last
    /// saw them) that no live grant holds: made by a try that died before
    /// recording them, or left by an ended grant. Deleted after the grace
    /// period (or when the run asks), as orphaned policies are.
    async fn orphaned_permission_sets(
        &mut self,
        clients: &AwsClients,
        instance: Result<identity_center::Instance, AwsError>,
    ) -> Result<(), sqlx::Error> {
        let db = &self.state.worker_db;
        let installation = self.state.installation_id;
        let candidates = storage::grants::orphaned_permission_sets(db, self.integration.id, installation).await?;
        if candidates.is_empty() {
            return Ok(());
        }
        let sdk = self.identity_center_calls(clients, instance);
        let grace =
            chrono::Duration::from_std(self.state.config.reconcile.orphan_grace).unwrap_or(chrono::Duration::MAX);
        for arn in candidates {
            let finding = Drift {
                kind: FindingKind::OrphanedPolicy,
                target: arn.clone(),
                evidence: "a temporary permission set of this installation that no live grant holds".into(),
            };
            // Gone since the inventory saw it: nothing to do.
            match sdk.inline_policy(&arn).await {
                Ok(None) => continue,
                Ok(Some(_)) => {}
                Err(e) => {
                    self.push(None, finding, FindingAction::Failed, Some(e.to_string()));
                    continue;
                }
            }
            let first_seen = storage::reconciles::orphan_seen(db, self.account, &arn).await?;
            if !(self.run.delete_orphans || first_seen + grace <= Utc::now()) {
                let detail = format!(
                    "first seen {}; deleted after the grace period or when a run asks",
                    first_seen.to_rfc3339()
                );
                self.push(None, finding, FindingAction::Kept, Some(detail));
                continue;
            }
            match sdk.delete_permission_set(&arn).await {
                Ok(()) => {
                    let mut tx = db.begin().await?;
                    storage::reconciles::forget_orphan(&mut *tx, self.account, &arn).await?;
                    let record = AuditRecord::service(AuditAction::OrphanDeleted, self.run.id)
                        .change("account_id", Value::Null, self.account)
                        .change("permission_set_arn", &arn, Value::Null);
                    storage::audit::record(&mut *tx, &record).await?;
                    tx.commit().await?;
                    self.push(None, finding, FindingAction::Repaired, Some("deleted".into()));
                }
                Err(e) => self.push(None, finding, FindingAction::Failed, Some(e.to_string())),
            }
        }
        self.calls += sdk.records().len() as i64;
        Ok(())
    }

    /// The audit trail's record of a change a run made to a grant's access.
    fn repair_record(&self, grant_id: Uuid, finding: &Drift) -> AuditRecord {
        AuditRecord::service(AuditAction::GrantDriftRepaired, grant_id)
            .change("reconciliation_id", Value::Null, self.run.id)
            .change("finding", Value::Null, finding.kind.as_str())
            .change("target", Value::Null, &finding.target)
    }

    /// The deny of an ended grant's sessions that the worker already removed
    /// (or never recorded) and that is on its role all the same: removed, in
    /// the audit trail and not as finding (it takes access away, gives none).
    /// A deny of a grant this installation does not know is left alone.
    async fn denies_left_behind(
        &mut self,
        iam: &aws_sdk_iam::Client,
        snapshot: &IamSnapshot,
    ) -> Result<(), sqlx::Error> {
        let denies: Vec<(Uuid, &str)> = snapshot
            .roles
            .iter()
            .flat_map(|role| {
                role.inline.iter().filter_map(|name| Some((sessions::grant_of_deny(name)?, role.name.as_str())))
            })
            .collect();
        if denies.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = denies.iter().map(|(id, _)| *id).collect();
        let over = storage::grants::sessions_deny_over(&self.state.worker_db, self.account, &ids).await?;
        // Only on the role the grant's deny belongs on: an inline policy of that
        // name elsewhere is not jit-iam's to remove.
        let ours = |(id, role): &(Uuid, &str)| over.iter().any(|(grant, target)| grant == id && target == role);
        for (grant_id, role) in denies.into_iter().filter(ours) {
            let sdk = SdkIam::new(iam);
            let policy = sessions::deny_policy_name(grant_id);
            let removed = sdk.delete_role_policy(role, &policy).await;
            self.calls += 1;
            let mut tx = self.state.worker_db.begin().await?;
            storage::grants::insert_events(&mut *tx, grant_id, ACTOR, &call_events(&sdk.records())).await?;
            if removed.is_ok() {
                let record = AuditRecord::service(AuditAction::GrantSessionsDenyRemoved, grant_id)
                    .change("role", role, Value::Null)
                    .change("inline_policy", &policy, Value::Null)
                    .change("reconciliation_id", Value::Null, self.run.id);
                storage::audit::record(&mut *tx, &record).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// A finding with nothing changed, also recorded on the grant.
    async fn report(&mut self, grant: &Grant, finding: Drift, action: FindingAction) -> Result<(), sqlx::Error> {
        let event = NewEvent::drift(false, format!("{}: {}", finding.kind.as_str(), finding.evidence));
        storage::grants::insert_events(&self.state.worker_db, grant.grant_id, ACTOR, &[event]).await?;
        self.push(Some(grant.grant_id), finding, action, None);
        Ok(())
    }

    fn push(&mut self, grant_id: Option<Uuid>, finding: Drift, action: FindingAction, detail: Option<String>) {
        self.findings.push(Finding {
            kind: finding.kind,
            grant_id,
            account_id: self.account.to_string(),
            target: finding.target,
            evidence: finding.evidence,
            action,
            detail,
        });
    }
}
