//! The connection check: can jit-iam assume the integration's role, is it
//! the account the integration names, and (with `options.identity_center`)
//! does the root account see the Identity Center instance? Each step reports pass or fail with
//! AWS's own error, so the customer sees exactly what to fix.

use aws_credential_types::Credentials;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::AwsError;
use super::identity_center;
use super::inventory::CallLimiter;
use super::metrics::CallMetrics;
use super::pool::{client, session_name, AwsPool};
use crate::domain::integration::{Connection, Integration};
use crate::domain::{wire_enum, AwsErrorBody};

#[derive(Debug, Clone)]
pub struct AccessCheck {
    pub integration_id: Uuid,
    /// The account whose role was assumed (the root account, or a member of an organization).
    pub account_id: String,
    /// True when every step passed.
    pub ok: bool,
    pub role_arn: String,
    pub checked_at: DateTime<Utc>,
    pub steps: Vec<CheckStep>,
}

#[derive(Debug, Clone)]
pub struct CheckStep {
    pub name: CheckStepName,
    pub status: StepStatus,
    /// What was found, in a sentence.
    pub detail: String,
    /// AWS's answer when the step failed on an AWS error.
    pub error: Option<AwsErrorBody>,
}

wire_enum! {
    pub enum CheckStepName {
        /// sts:AssumeRole of the access role with the external id.
        AssumeRole = "assume_role",
        /// sts:GetCallerIdentity with the assumed credentials.
        GetCallerIdentity = "get_caller_identity",
        /// The assumed identity belongs to the integration's account.
        AccountMatches = "account_matches",
        /// organizations:ListAccounts works (organizations only).
        ListAccounts = "list_accounts",
        /// The IAM Identity Center instance is visible to the root account in the
        /// integration's region (sso:ListInstances; with `options.identity_center` only).
        IdentityCenter = "identity_center",
    }
}

wire_enum! {
    pub enum StepStatus {
        Passed = "passed",
        Failed = "failed",
        /// Not run because an earlier step failed.
        Skipped = "skipped",
    }
}

impl CheckStep {
    fn passed(name: CheckStepName, detail: String) -> Self {
        Self { name, status: StepStatus::Passed, detail, error: None }
    }

    fn failed(name: CheckStepName, error: &AwsError) -> Self {
        Self { name, status: StepStatus::Failed, detail: error.to_string(), error: Some(error.body()) }
    }

    fn skipped(name: CheckStepName) -> Self {
        Self { name, status: StepStatus::Skipped, detail: "not run: an earlier step failed".into(), error: None }
    }
}

/// Runs the check of the root account with fresh credentials (never the
/// pool's cached ones), so it tells the truth about the role as it is now.
pub async fn check_access(pool: &AwsPool, integration: &Integration) -> AccessCheck {
    check_account(pool, integration, &integration.root_account.account_id).await
}

/// The checks a connection change must pass while grants are live: the root
/// account, and each member account in `accounts` (those holding live grants).
pub async fn check_connection(pool: &AwsPool, integration: &Integration, accounts: &[String]) -> Vec<AccessCheck> {
    let root = &integration.root_account.account_id;
    let members = accounts.iter().filter(|account| *account != root);
    let checks = std::iter::once(root).chain(members).map(|account| check_account(pool, integration, account));
    futures::future::join_all(checks).await
}

/// Assumes the integration's role in `account_id` (the access role in the
/// root account, the member role in a member) and confirms the account.
async fn check_account(pool: &AwsPool, integration: &Integration, account_id: &str) -> AccessCheck {
    let root = &integration.root_account;
    let role_arn = integration.role_arn_for(account_id).to_string();
    let is_root = account_id == root.account_id;
    let lists_accounts = integration.connection == Connection::Organization && is_root;
    let identity_center = integration.options.identity_center.as_ref().filter(|_| is_root);
    let plan = Plan { lists_accounts, identity_center: identity_center.is_some() };
    let finish = |role_arn: String, steps: Vec<CheckStep>| finish(integration, account_id, plan, role_arn, steps);
    let mut steps = Vec::new();

    let assumed = pool
        .service_sts(&root.region)
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name(session_name(integration.id))
        .external_id(&root.external_id)
        .duration_seconds(900)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("sts:AssumeRole", &e));
    let credentials = match assumed {
        Ok(output) => match output.credentials {
            Some(c) => {
                steps.push(CheckStep::passed(
                    CheckStepName::AssumeRole,
                    format!("assumed {role_arn} with the external id"),
                ));
                Credentials::new(c.access_key_id, c.secret_access_key, Some(c.session_token), None, "jit-iam-check")
            }
            None => {
                let error =
                    AwsError::new(super::AwsErrorKind::Rejected, "sts:AssumeRole", "the answer carried no credentials");
                steps.push(CheckStep::failed(CheckStepName::AssumeRole, &error));
                return finish(role_arn, steps);
            }
        },
        Err(error) => {
            steps.push(CheckStep::failed(CheckStepName::AssumeRole, &error));
            return finish(role_arn, steps);
        }
    };

    let config = pool.config_with_credentials(credentials, &root.region);
    let identity = client!(aws_sdk_sts, &config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("sts:GetCallerIdentity", &e));
    let account = match identity {
        Ok(identity) => {
            let arn = identity.arn().unwrap_or_default();
            steps.push(CheckStep::passed(CheckStepName::GetCallerIdentity, format!("jit-iam acts as {arn}")));
            identity.account().unwrap_or_default().to_string()
        }
        Err(error) => {
            steps.push(CheckStep::failed(CheckStepName::GetCallerIdentity, &error));
            return finish(role_arn, steps);
        }
    };

    if account != account_id {
        steps.push(CheckStep {
            name: CheckStepName::AccountMatches,
            status: StepStatus::Failed,
            detail: format!("the role belongs to account {account}, not to {account_id}"),
            error: None,
        });
        return finish(role_arn, steps);
    }
    steps.push(CheckStep::passed(CheckStepName::AccountMatches, format!("account {account}")));

    if lists_accounts {
        let listed = client!(aws_sdk_organizations, &config)
            .list_accounts()
            .max_results(1)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("organizations:ListAccounts", &e));
        steps.push(match listed {
            Ok(_) => CheckStep::passed(CheckStepName::ListAccounts, "the organization's accounts can be listed".into()),
            Err(error) => CheckStep::failed(CheckStepName::ListAccounts, &error),
        });
    }
    if let Some(options) = identity_center {
        let listed = identity_center::list_instances(&client!(aws_sdk_ssoadmin, &config), &CallLimiter::new(1)).await;
        steps.push(match listed.and_then(|listed| identity_center::choose(&listed, options)) {
            Ok(instance) => CheckStep::passed(
                CheckStepName::IdentityCenter,
                format!(
                    "IAM Identity Center instance {} (identity store {}) in {}",
                    instance.instance_arn, instance.identity_store_id, root.region
                ),
            ),
            Err(error) => CheckStep::failed(CheckStepName::IdentityCenter, &error),
        });
    }
    finish(role_arn, steps)
}

/// The steps after the account's: which apply to this account.
#[derive(Clone, Copy)]
struct Plan {
    lists_accounts: bool,
    identity_center: bool,
}

/// Completes the report: the steps not reached are listed as skipped.
fn finish(
    integration: &Integration,
    account_id: &str,
    plan: Plan,
    role_arn: String,
    mut steps: Vec<CheckStep>,
) -> AccessCheck {
    let mut names = vec![CheckStepName::AssumeRole, CheckStepName::GetCallerIdentity, CheckStepName::AccountMatches];
    if plan.lists_accounts {
        names.push(CheckStepName::ListAccounts);
    }
    if plan.identity_center {
        names.push(CheckStepName::IdentityCenter);
    }
    let reached = steps.len();
    steps.extend(names[reached..].iter().copied().map(CheckStep::skipped));
    AccessCheck {
        integration_id: integration.id,
        account_id: account_id.to_string(),
        ok: steps.iter().all(|s| s.status == StepStatus::Passed),
        role_arn,
        checked_at: Utc::now(),
        steps,
    }
}
