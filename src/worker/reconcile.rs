//! Reconciliation: runs that read each account's IAM once and compare it with
//! jit-iam's grants, then put drift back (or only report it). Scheduled every
//! `JIT_IAM_RECONCILE_INTERVAL` and run on demand; one run per integration at
//! a time across replicas, claimed with a lease like syncs.
//!
//! A repair of an active grant holds the grant's row lock while it changes
//! IAM, and skips a grant a worker holds: a revocation waits for the repair,
//! then removes what it put back.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::grants::call_events;
use super::{idle, pause, with_lease, LeaseEnd, Renewal};
use crate::app::AppState;
use crate::aws::iam_changes::{IamChanges, SdkIam};
use crate::aws::inventory::CallLimiter;
use crate::aws::reconcile::{IamSnapshot, PolicyState, PrincipalState};
use crate::aws::AwsError;
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::grant::Grantee;
use crate::domain::integration::Integration;
use crate::domain::policy::{GeneratedPolicy, INSTALLATION_ID_TAG};
use crate::domain::reconcile::{Finding, FindingAction, FindingKind, ReconcileRun, ReconcileStatus};
use crate::grants::{attachment_key, mechanism_of, sessions, Mechanism};
use crate::storage;
use crate::storage::grants::{GrantRow, NewEvent};

/// The name grant events and logs give reconciliation as an actor.
const ACTOR: &str = "reconcile";

/// Queues scheduled runs. Every replica runs it; the database keeps it to one run per integration.
pub async fn schedule(state: AppState, shutdown: CancellationToken) {
    let every = state.config.reconcile.reconcile_interval;
    if every.is_zero() {
        return;
    }
    let tick = (every / 10).clamp(Duration::from_secs(1), Duration::from_secs(30));
    while !shutdown.is_cancelled() {
        let repair = state.config.reconcile.reconcile_repair;
        match storage::reconciles::enqueue_due(&state.worker_db, every, repair).await {
            Ok(0) => {}
            Ok(queued) => {
                tracing::info!(queued, "scheduled reconciliations");
                state.wake.reconciles.notify_one();
            }
            Err(e) => tracing::warn!(error = %e, "cannot schedule reconciliations"),
        }
        pause(&shutdown, tick).await;
    }
}

/// Claims queued runs (and runs whose replica died) one at a time and carries them out.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let lease = state.config.worker.worker_lease;
    while !shutdown.is_cancelled() {
        match storage::reconciles::claim(&state.worker_db, &state.instance_id, lease).await {
            Ok(Some(run)) => run_with_lease(&state, run).await,
            Ok(None) => idle(&shutdown, &state.wake.reconciles, lease / 2).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim reconciliations");
                pause(&shutdown, Duration::from_secs(1)).await;
            }
        }
    }
}

async fn run_with_lease(state: &AppState, run: ReconcileRun) {
    let lease = state.config.worker.worker_lease;
    let renew = || async {
        match storage::reconciles::extend_lease(&state.worker_db, run.id, &state.instance_id, lease).await {
            Ok(true) => Renewal::Renewed,
            Ok(false) => Renewal::Lost,
            Err(e) => {
                tracing::warn!(run_id = %run.id, error = %e, "cannot extend the reconciliation lease");
                Renewal::Unknown
            }
        }
    };
    match with_lease(lease, reconcile(state, &run), renew).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(run_id = %run.id, error = %e, "reconciliation failed"),
        Err(LeaseEnd::Lost) => tracing::warn!(run_id = %run.id, "reconciliation lease lost"),
        Err(LeaseEnd::Unconfirmed) => {
            tracing::warn!(run_id = %run.id, "reconciliation lease not renewed in time; stopped before it could run out")
        }
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
    let (mut findings, mut aws_calls, mut error) = (Vec::new(), 0, None);
    for account in &accounts {
        let mut checked = Account { state, run, integration: &integration, account, findings: Vec::new(), calls: 0 };
        if let Err(e) = checked.reconcile().await? {
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

/// One account of a run.
struct Account<'a> {
    state: &'a AppState,
    run: &'a ReconcileRun,
    integration: &'a Integration,
    account: &'a str,
    findings: Vec<Finding>,
    calls: i64,
}

/// A finding before its action is known.
struct Drift {
    kind: FindingKind,
    target: String,
    evidence: String,
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
        for grant in storage::grants::active_in_account(db, self.integration.id, self.account).await? {
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
            self.given_again(&snapshot, &grant).await?;
        }
        self.denies_left_behind(&clients.iam, &snapshot).await?;
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
        grant: &GrantRow,
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
        grant: GrantRow,
    ) -> Result<(), sqlx::Error> {
        let grantee = grant.grantee();
        let principal = match &grant.principal_id {
            Some(id) => snapshot.by_id(grantee.principal_type, id),
            None => snapshot.by_name(grantee.principal_type, &grantee.name),
        };
        let Some(principal) = principal else {
            let holder = snapshot.by_name(grantee.principal_type, &grantee.name).map(|p| p.id.as_str());
            let evidence = match holder {
                Some(other) => format!("{grantee} was deleted; the name now belongs to another principal (id {other}), which is not the grantee"),
                None => format!("{grantee} was deleted: its access went with it"),
            };
            let drift = Drift { kind: FindingKind::PrincipalChanged, target: grantee.name.clone(), evidence };
            return self.report(&grant, drift, FindingAction::Reported).await;
        };
        if principal.name != grantee.name {
            let evidence = format!("{grantee} was renamed to {}; the access went with it", principal.name);
            let drift = Drift { kind: FindingKind::PrincipalChanged, target: grantee.name.clone(), evidence };
            self.report(&grant, drift, FindingAction::Reported).await?;
        }
        let mut drifts = Vec::new();
        let mechanism = mechanism_of(&grant);
        match mechanism {
            Mechanism::GeneratedPolicy => {
                let arn = grant.policy_arn.clone().unwrap_or_default();
                let written = grant.policy_document.as_ref().map(|d| serde_json::to_value(&d.0).unwrap_or_default());
                match snapshot.policies.get(&arn) {
                    None => drifts.push(Drift {
                        kind: FindingKind::AccessMissing,
                        target: arn.clone(),
                        evidence: "the grant's policy was deleted".into(),
                    }),
                    Some(policy) => {
                        let current = policy.default_document().and_then(|d| serde_json::from_str::<Value>(d).ok());
                        if current != written {
                            drifts.push(Drift {
                                kind: FindingKind::PolicyModified,
                                target: arn.clone(),
                                evidence: format!(
                                    "default version {} is not the document jit-iam wrote",
                                    policy.default_version
                                ),
                            });
                        }
                        if !principal.attached.contains(&arn) {
                            drifts.push(Drift {
                                kind: FindingKind::AccessMissing,
                                target: arn.clone(),
                                evidence: format!("the policy is not attached to {}", principal.name),
                            });
                        }
                    }
                }
            }
            Mechanism::AttachPolicy | Mechanism::GroupMembership if grant.holds_attachment => {
                let (held, target, what) = match mechanism {
                    Mechanism::GroupMembership => {
                        (principal.groups.contains(&grant.resource_name), &grant.resource_name, "membership")
                    }
                    _ => (principal.attached.contains(&grant.resource_arn), &grant.resource_arn, "policy"),
                };
                if !held {
                    let grantee = grant.grantee();
                    let key = attachment_key(&grant, &grantee, mechanism);
                    let attachment = storage::grants::shared_attachment(&self.state.worker_db, &key).await?;
                    // Access the grantee had before the grant, taken away by an admin
                    // since: put back for the grant, it is the grant's own from then on.
                    let drift = if attachment.is_some_and(|a| a.preexisting) {
                        Drift {
                            kind: FindingKind::PreexistingAccessRemoved,
                            target: target.clone(),
                            evidence: format!(
                                "{} no longer has the {what} it had before the grant, which the grant still needs",
                                principal.name
                            ),
                        }
                    } else {
                        Drift {
                            kind: FindingKind::AccessMissing,
                            target: target.clone(),
                            evidence: match mechanism {
                                Mechanism::GroupMembership => format!("{} is not in the group", principal.name),
                                _ => format!("the policy is not attached to {}", principal.name),
                            },
                        }
                    };
                    drifts.push(drift);
                }
            }
            _ => {}
        }
        if drifts.is_empty() {
            return Ok(());
        }
        if !self.run.repair {
            for drift in drifts {
                self.report(&grant, drift, FindingAction::Reported).await?;
            }
            return Ok(());
        }
        self.repair_grant(iam, snapshot, &grant, principal, mechanism, drifts).await
    }

    /// Puts an active grant's access back, holding its row lock.
    async fn repair_grant(
        &mut self,
        iam: &aws_sdk_iam::Client,
        snapshot: &IamSnapshot,
        grant: &GrantRow,
        principal: &PrincipalState,
        mechanism: Mechanism,
        drifts: Vec<Drift>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.state.worker_db.begin().await?;
        if storage::grants::lock_active_for_repair(&mut *tx, grant.grant_id).await?.is_none() {
            drop(tx);
            for drift in drifts {
                self.report(grant, drift, FindingAction::Skipped).await?;
            }
            return Ok(());
        }
        let sdk = SdkIam::new(iam);
        let holder = Grantee { name: principal.name.clone(), ..grant.grantee() };
        let mut events = Vec::new();
        let mut outcomes = Vec::new();
        for drift in drifts {
            let repaired = match (drift.kind, mechanism) {
                (FindingKind::PolicyModified, _) => match snapshot.policies.get(&drift.target) {
                    Some(policy) => restore(&sdk, policy, grant).await,
                    None => Ok(()),
                },
                (_, Mechanism::GeneratedPolicy) => {
                    recreate_and_attach(&sdk, snapshot, grant, &holder, self.state.installation_id).await
                }
                (_, Mechanism::AttachPolicy) => sdk.attach_policy(&holder, &grant.resource_arn).await,
                (_, Mechanism::GroupMembership) => sdk.add_to_group(&holder.name, &grant.resource_name).await,
            };
            events.push(NewEvent::drift(false, format!("{}: {}", drift.kind.as_str(), drift.evidence)));
            if repaired.is_ok() && mechanism.is_shared() {
                // jit-iam put it there: the last grant holding it removes it.
                let grantee = grant.grantee();
                let key = attachment_key(grant, &grantee, mechanism);
                storage::grants::put_shared_attachment(&mut *tx, &key, false, "attached").await?;
                if drift.kind == FindingKind::PreexistingAccessRemoved {
                    events.push(NewEvent::drift(
                        true,
                        "put back by jit-iam, so no longer pre-existing: removed when the last grant holding it ends",
                    ));
                }
            }
            outcomes.push((drift, repaired));
        }
        events.extend(call_events(&sdk.records()));
        self.calls += sdk.records().len() as i64;
        for (drift, repaired) in outcomes {
            let (action, detail) = match &repaired {
                Ok(()) => {
                    events.push(NewEvent::drift(true, format!("{} repaired", drift.kind.as_str())));
                    let record = self.repair_record(grant.grant_id, &drift);
                    storage::audit::record(&mut *tx, &record).await?;
                    (FindingAction::Repaired, None)
                }
                Err(e) => (FindingAction::Failed, Some(e.to_string())),
            };
            self.push(Some(grant.grant_id), drift, action, detail);
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
        let drift = Drift {
            kind: FindingKind::AccessLeftAfterEnd,
            target: policy.arn.clone(),
            evidence: "the policy of a grant that ended exists".into(),
        };
        if !self.run.repair {
            self.push(Some(grant_id), drift, FindingAction::Reported, None);
            return Ok(());
        }
        let sdk = SdkIam::new(iam);
        let removed = remove_policy(&sdk, snapshot, &policy.arn, self.account).await;
        let mut events = vec![NewEvent::drift(false, format!("{}: {}", drift.kind.as_str(), drift.evidence))];
        events.extend(call_events(&sdk.records()));
        self.calls += sdk.records().len() as i64;
        let mut tx = self.state.worker_db.begin().await?;
        let (action, detail) = match removed {
            Ok(()) => {
                events.push(NewEvent::drift(true, "the leftover policy was detached and deleted"));
                storage::audit::record(&mut *tx, &self.repair_record(grant_id, &drift)).await?;
                (FindingAction::Repaired, None)
            }
            Err(e) => (FindingAction::Failed, Some(e.to_string())),
        };
        storage::grants::insert_events(&mut *tx, grant_id, ACTOR, &events).await?;
        tx.commit().await?;
        self.push(Some(grant_id), drift, action, detail);
        Ok(())
    }

    /// A shared policy or membership jit-iam removed when the grant ended is
    /// there again: someone gave it since, so it is not jit-iam's to remove.
    async fn given_again(&mut self, snapshot: &IamSnapshot, grant: &GrantRow) -> Result<(), sqlx::Error> {
        let grantee = grant.grantee();
        let principal = match &grant.principal_id {
            Some(id) => snapshot.by_id(grantee.principal_type, id),
            None => snapshot.by_name(grantee.principal_type, &grantee.name),
        };
        let Some(principal) = principal else { return Ok(()) };
        let (holds, target) = match mechanism_of(grant) {
            Mechanism::GroupMembership => (principal.groups.contains(&grant.resource_name), &grant.resource_name),
            _ => (principal.attached.contains(&grant.resource_arn), &grant.resource_arn),
        };
        if !holds {
            return Ok(());
        }
        let evidence = format!(
            "{} has it again after jit-iam removed it at the grant's end: given since by someone else, not jit-iam's to remove",
            principal.name
        );
        let drift = Drift { kind: FindingKind::AccessLeftAfterEnd, target: target.clone(), evidence };
        self.report(grant, drift, FindingAction::Reported).await
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
                let drift = Drift {
                    kind: FindingKind::OrphanedPolicy,
                    target: policy.arn.clone(),
                    evidence: "its tags could not be read".into(),
                };
                self.push(None, drift, FindingAction::Failed, Some(e.to_string()));
                return Ok(());
            }
        };
        // Only this installation's own: another installation's policy (its
        // live grants, in its database) and a policy from before installation
        // ids, which no grant here knows, are left alone and not reported.
        let installation = self.state.installation_id.to_string();
        let ours = tags.iter().any(|(k, v)| k == "managed-by" && v == "jit-iam")
            && tags.iter().any(|(k, v)| k == INSTALLATION_ID_TAG && *v == installation);
        if !ours {
            return Ok(());
        }
        let named = tags.iter().find(|(k, _)| k == crate::domain::policy::GRANT_ID_TAG).map(|(_, v)| v.as_str());
        let evidence = match named {
            Some(id) => format!("tagged for grant {id}, which jit-iam does not know"),
            None => "tagged as this installation's, for no grant".into(),
        };
        let drift = Drift { kind: FindingKind::OrphanedPolicy, target: policy.arn.clone(), evidence };
        let first_seen = storage::reconciles::orphan_seen(&self.state.worker_db, self.account, &policy.arn).await?;
        let grace =
            chrono::Duration::from_std(self.state.config.reconcile.orphan_grace).unwrap_or(chrono::Duration::MAX);
        let due = self.run.delete_orphans || first_seen + grace <= Utc::now();
        if !due {
            let detail =
                format!("first seen {}; deleted after the grace period or when a run asks", first_seen.to_rfc3339());
            self.push(None, drift, FindingAction::Kept, Some(detail));
            return Ok(());
        }
        let removed = remove_policy(&sdk, snapshot, &policy.arn, self.account).await;
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
                self.push(None, drift, FindingAction::Repaired, Some("detached from every holder and deleted".into()));
            }
            Err(e) => self.push(None, drift, FindingAction::Failed, Some(e.to_string())),
        }
        Ok(())
    }

    /// The audit trail's record of a change a run made to a grant's access.
    fn repair_record(&self, grant_id: Uuid, drift: &Drift) -> AuditRecord {
        AuditRecord::service(AuditAction::GrantDriftRepaired, grant_id)
            .change("reconciliation_id", Value::Null, self.run.id)
            .change("finding", Value::Null, drift.kind.as_str())
            .change("target", Value::Null, &drift.target)
    }

    /// The deny of an ended grant's sessions that the worker already removed
    /// (or never recorded) and that is on its role all the same: removed, in
    /// the audit trail and not as drift (it takes access away, gives none).
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
        let over = storage::grants::sessions_deny_over(&self.state.worker_db, &ids).await?;
        for (grant_id, role) in denies.into_iter().filter(|(id, _)| over.contains(id)) {
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
    async fn report(&mut self, grant: &GrantRow, drift: Drift, action: FindingAction) -> Result<(), sqlx::Error> {
        let event = NewEvent::drift(false, format!("{}: {}", drift.kind.as_str(), drift.evidence));
        storage::grants::insert_events(&self.state.worker_db, grant.grant_id, ACTOR, &[event]).await?;
        self.push(Some(grant.grant_id), drift, action, None);
        Ok(())
    }

    fn push(&mut self, grant_id: Option<Uuid>, drift: Drift, action: FindingAction, detail: Option<String>) {
        self.findings.push(Finding {
            kind: drift.kind,
            grant_id,
            account_id: self.account.to_string(),
            target: drift.target,
            evidence: drift.evidence,
            action,
            detail,
        });
    }
}

/// Makes the document jit-iam wrote the policy's only version: the other
/// versions go first (IAM keeps at most five), then the written document
/// becomes a new default, then the modified default goes.
async fn restore(sdk: &SdkIam<'_>, policy: &PolicyState, grant: &GrantRow) -> Result<(), AwsError> {
    let document = grant.policy_document.as_ref().map(|d| d.0.to_json()).unwrap_or_default();
    for (version, _) in policy.versions.iter().filter(|(v, _)| *v != policy.default_version) {
        sdk.delete_policy_version(&policy.arn, version).await?;
    }
    sdk.create_policy_version(&policy.arn, &document).await?;
    sdk.delete_policy_version(&policy.arn, &policy.default_version).await
}

/// The grant's policy made again if it was deleted, and attached to the grantee (under its name now).
async fn recreate_and_attach(
    sdk: &SdkIam<'_>,
    snapshot: &IamSnapshot,
    grant: &GrantRow,
    holder: &Grantee,
    installation_id: Uuid,
) -> Result<(), AwsError> {
    let (Some(name), Some(arn), Some(document)) = (&grant.policy_name, &grant.policy_arn, &grant.policy_document)
    else {
        return Ok(());
    };
    if !snapshot.policies.contains_key(arn) {
        let policy = GeneratedPolicy { name: name.clone(), arn: arn.clone() };
        sdk.create_policy(
            &policy,
            &document.0.to_json(),
            &GeneratedPolicy::tags(Some(installation_id), grant.grant_id, &grant.resource_arn),
        )
        .await?;
    }
    sdk.attach_policy(holder, arn).await
}

/// Detaches a policy from every user, role and group holding it, then deletes it.
async fn remove_policy(sdk: &SdkIam<'_>, snapshot: &IamSnapshot, arn: &str, account: &str) -> Result<(), AwsError> {
    let (principals, groups) = snapshot.holders(arn);
    for (principal_type, name) in principals {
        let holder = Grantee { principal_type, name, account_id: account.to_string() };
        sdk.detach_policy(&holder, arn).await?;
    }
    for group in groups {
        sdk.detach_group_policy(&group, arn).await?;
    }
    // The non-default versions go first: IAM deletes a policy only without them.
    if let Some(policy) = snapshot.policies.get(arn) {
        for (version, _) in policy.versions.iter().filter(|(v, _)| *v != policy.default_version) {
            sdk.delete_policy_version(arn, version).await?;
        }
    }
    sdk.delete_policy(arn).await
}
