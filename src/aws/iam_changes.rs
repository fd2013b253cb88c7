//! The IAM changes grants make (and the Identity Center group memberships),
//! behind a narrow trait: the SDK client
//! implements it for AWS (each call recorded: operation, target, outcome, AWS
//! request id, error code, and how many HTTP attempts the SDK needed), and the
//! grant mechanisms' unit tests implement it in memory.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_iam::operation::get_group::GetGroupOutput;
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
use aws_sdk_iam::operation::list_attached_user_policies::ListAttachedUserPoliciesOutput;
use aws_sdk_iam::operation::list_entities_for_policy::ListEntitiesForPolicyOutput;
use aws_sdk_iam::types::{AttachedPolicy, EntityType, Tag};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;

use aws_sdk_ssoadmin::types::{AccountAssignmentOperationStatus, StatusValues, TargetType};
use tokio::time::Instant;

use super::error::{AwsError, AwsErrorKind};
use super::identity_center::Instance;
use super::inventory::{all_pages, policy_arns, Page};
use crate::domain::grant::{backoff, CallOutcome, Grantee, PrincipalType};
use crate::domain::policy::{GeneratedPolicy, TemporaryPermissionSet, GRANT_ID_TAG, JIT_IAM_POLICY_PATH};

/// Counts the HTTP attempts of one call.
#[derive(Clone, Debug, Default)]
struct AttemptCounter(Arc<Mutex<u32>>);

impl Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "jit-iam-attempt-counter"
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.0.lock().expect("attempt counter") += 1;
        Ok(())
    }
}

/// One IAM call as the grant's events record it.
#[derive(Clone, Debug)]
pub struct CallRecord {
    pub operation: &'static str,
    pub target: String,
    pub outcome: CallOutcome,
    pub request_id: Option<String>,
    pub error: Option<AwsError>,
    pub attempts: u32,
}

/// The IAM operations on a grantee's managed policies, which differ by principal type.
pub struct PolicyOperations {
    pub attach: &'static str,
    pub detach: &'static str,
    pub list_attached: &'static str,
    /// Reads the principal's unique id.
    pub get: &'static str,
}

pub fn policy_operations(principal_type: PrincipalType) -> PolicyOperations {
    match principal_type {
        PrincipalType::IamUser => PolicyOperations {
            attach: "iam:AttachUserPolicy",
            detach: "iam:DetachUserPolicy",
            list_attached: "iam:ListAttachedUserPolicies",
            get: "iam:GetUser",
        },
        PrincipalType::IamRole => PolicyOperations {
            attach: "iam:AttachRolePolicy",
            detach: "iam:DetachRolePolicy",
            list_attached: "iam:ListAttachedRolePolicies",
            get: "iam:GetRole",
        },
        // No IAM policies: what stands in for them is group membership (or an assignment).
        PrincipalType::IdentityCenterUser | PrincipalType::IdentityCenterGroup => PolicyOperations {
            attach: "identitystore:CreateGroupMembership",
            detach: "identitystore:DeleteGroupMembership",
            list_attached: "identitystore:GetGroupMembershipId",
            get: "identitystore:GetUserId",
        },
    }
}

/// A user or role as IAM lists it: its name now, and its unique id for ever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IamPrincipal {
    pub name: String,
    pub id: String,
}

/// The IAM changes of grants, narrowed to what the mechanisms need. Removals
/// are idempotent: what is already gone counts as done (and answers false).
#[allow(async_fn_in_trait)] // used with concrete types only, whose futures are Send
pub trait IamChanges {
    /// Creates a policy at jit-iam's path; false when one of that name exists already.
    async fn create_policy(
        &self,
        policy: &GeneratedPolicy,
        document: &str,
        tags: &[(&'static str, String)],
    ) -> Result<bool, AwsError>;
    /// The `jit-iam:grant-id` tag of a policy, if it has one.
    async fn policy_grant_id(&self, arn: &str) -> Result<Option<String>, AwsError>;
    /// The document of the policy's default version (JSON), if the policy exists.
    async fn policy_document(&self, arn: &str) -> Result<Option<String>, AwsError>;
    async fn delete_policy(&self, arn: &str) -> Result<(), AwsError>;
    async fn attach_policy(&self, grantee: &Grantee, arn: &str) -> Result<(), AwsError>;
    /// False when the policy was not attached to a principal of that name.
    async fn detach_policy(&self, grantee: &Grantee, arn: &str) -> Result<bool, AwsError>;
    /// The managed policies attached to the grantee, as IAM has them now.
    async fn attached_policies(&self, grantee: &Grantee) -> Result<Vec<String>, AwsError>;
    /// The groups a user is in, as IAM has them now.
    async fn groups_of(&self, user: &str) -> Result<Vec<String>, AwsError>;
    async fn add_to_group(&self, user: &str, group: &str) -> Result<(), AwsError>;
    async fn remove_from_group(&self, user: &str, group: &str) -> Result<(), AwsError>;
    /// The unique id of the user or role named `name`; None when there is none.
    async fn principal_id(&self, principal_type: PrincipalType, name: &str) -> Result<Option<String>, AwsError>;
    /// The users (or roles) the managed policy `arn` is attached to.
    async fn policy_holders(&self, arn: &str, principal_type: PrincipalType) -> Result<Vec<IamPrincipal>, AwsError>;
    /// The users in `group`.
    async fn group_members(&self, group: &str) -> Result<Vec<IamPrincipal>, AwsError>;
    /// A new version of the policy, made its default.
    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<(), AwsError>;
    async fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<(), AwsError>;
    async fn detach_group_policy(&self, group: &str, arn: &str) -> Result<(), AwsError>;
    /// The longest session the role allows, in seconds; None when there is no such role.
    async fn max_session_duration(&self, role: &str) -> Result<Option<i32>, AwsError>;
    /// Writes (or overwrites) an inline policy of a role.
    async fn put_role_policy(&self, role: &str, name: &str, document: &str) -> Result<(), AwsError>;
    /// Deletes an inline policy of a role; one already gone (or its role) counts as done.
    async fn delete_role_policy(&self, role: &str, name: &str) -> Result<(), AwsError>;
    /// The id of Identity Center user `user_id`'s membership of group `group_id`; None when not a member.
    async fn identity_center_membership(&self, group_id: &str, user_id: &str) -> Result<Option<String>, AwsError>;
    async fn create_group_membership(&self, group_id: &str, user_id: &str) -> Result<(), AwsError>;
    /// Deletes an Identity Center group membership; one already gone counts as done.
    async fn delete_group_membership(&self, membership_id: &str) -> Result<(), AwsError>;
    /// Whether the assignment exists (sso:ListAccountAssignments).
    async fn assignment_exists(&self, assignment: &Assignment) -> Result<bool, AwsError>;
    /// Creates the assignment and waits for Identity Center to provision it,
    /// up to the configured wait; `ConflictException` is retried meanwhile.
    async fn create_assignment(&self, assignment: &Assignment) -> Result<Provisioning, AwsError>;
    /// Deletes the assignment and waits likewise; one already gone counts as done.
    async fn delete_assignment(&self, assignment: &Assignment) -> Result<Provisioning, AwsError>;
    /// The permission set's session duration in seconds; None when it is gone.
    async fn session_duration(&self, permission_set_arn: &str) -> Result<Option<i32>, AwsError>;
    /// Creates a permission set (`session_duration` in ISO 8601); its ARN.
    async fn create_permission_set(
        &self,
        set: &TemporaryPermissionSet,
        session_duration: &str,
    ) -> Result<String, AwsError>;
    /// The ARN and description of the instance's permission set named `name`,
    /// if there is one (every permission set is listed and described: for the
    /// rare retry whose creation met its own permission set).
    async fn find_permission_set(&self, name: &str) -> Result<Option<(String, String)>, AwsError>;
    /// A permission set's inline policy (empty when it has none); None when the permission set is gone.
    async fn inline_policy(&self, permission_set_arn: &str) -> Result<Option<String>, AwsError>;
    /// Provisions a permission set to an account again: its role there takes the permission set's policy.
    async fn provision_permission_set(&self, permission_set_arn: &str, account_id: &str) -> Result<(), AwsError>;
    /// Writes (or overwrites) a permission set's inline policy.
    async fn put_inline_policy(&self, permission_set_arn: &str, document: &str) -> Result<(), AwsError>;
    /// Deletes a permission set; one already gone counts as done.
    async fn delete_permission_set(&self, permission_set_arn: &str) -> Result<(), AwsError>;
}

/// A permission set assigned to an Identity Center user or group in an account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Assignment {
    pub permission_set_arn: String,
    pub account_id: String,
    /// `identity_center_user` or `identity_center_group`.
    pub principal_type: PrincipalType,
    /// The user's or group's identity store id.
    pub principal_id: String,
}

impl Assignment {
    fn sso_principal_type(&self) -> aws_sdk_ssoadmin::types::PrincipalType {
        match self.principal_type {
            PrincipalType::IdentityCenterGroup => aws_sdk_ssoadmin::types::PrincipalType::Group,
            _ => aws_sdk_ssoadmin::types::PrincipalType::User,
        }
    }

    /// What the grant's events show as the call's target.
    fn target(&self) -> String {
        format!("{} in {} to {}", self.permission_set_arn, self.account_id, self.principal_id)
    }
}

/// Where Identity Center is with an assignment's creation or deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provisioning {
    Succeeded,
    /// Identity Center's reason (e.g. the account's role quota reached).
    Failed(String),
    /// Still in progress when jit-iam stopped waiting: looked at again later.
    InProgress,
}

/// First wait before asking for an assignment's status again; doubles up to [`STATUS_POLL_CAP`].
const STATUS_POLL_FIRST: Duration = Duration::from_millis(250);
const STATUS_POLL_CAP: Duration = Duration::from_secs(5);

/// The Identity Center instance a grant changes, and the clients that reach it.
pub struct IdentityCenterAccess<'a> {
    pub sso_admin: &'a aws_sdk_ssoadmin::Client,
    pub identity_store: &'a aws_sdk_identitystore::Client,
    /// The instance, or why it is not known (each call's answer then).
    pub instance: Result<Instance, AwsError>,
    /// How long one call waits for an assignment's provisioning.
    pub provisioning_wait: Duration,
    /// Assignment creations in progress on the instance: one permit each,
    /// from CreateAccountAssignment until its status is final (or no longer
    /// followed), so that a burst waits here rather than fails at AWS.
    pub assignment_creations: Arc<tokio::sync::Semaphore>,
}

/// The IAM client of one account and the record of the calls made through it.
pub struct SdkIam<'a> {
    iam: &'a aws_sdk_iam::Client,
    /// The integration's Identity Center instance, for the grants that change it.
    identity_center: Option<IdentityCenterAccess<'a>>,
    records: Mutex<Vec<CallRecord>>,
}

impl<'a> SdkIam<'a> {
    pub fn new(iam: &'a aws_sdk_iam::Client) -> Self {
        Self { iam, identity_center: None, records: Mutex::new(Vec::new()) }
    }

    /// With the integration's Identity Center instance.
    pub fn with_identity_center(self, access: IdentityCenterAccess<'a>) -> Self {
        Self { identity_center: Some(access), ..self }
    }

    /// The instance and its clients; an error for a call that needs them without them.
    fn identity_center(&self, operation: &'static str) -> Result<(&IdentityCenterAccess<'a>, &Instance), AwsError> {
        match &self.identity_center {
            Some(access) => match &access.instance {
                Ok(instance) => Ok((access, instance)),
                Err(e) => Err(e.clone()),
            },
            None => {
                let message = "Identity Center is not set up for this integration";
                Err(AwsError::new(AwsErrorKind::Rejected, operation, message))
            }
        }
    }

    /// The identity store client and id.
    fn identity_store(&self, operation: &'static str) -> Result<(&'a aws_sdk_identitystore::Client, &str), AwsError> {
        let (access, instance) = self.identity_center(operation)?;
        Ok((access.identity_store, instance.identity_store_id.as_str()))
    }

    /// The identity store id of the Identity Center user (`UserName`) or group
    /// (`DisplayName`) named `name`: identitystore:GetUserId or GetGroupId. None when there is none.
    async fn identity_center_id(&self, name: &str, attribute_path: &str) -> Result<Option<String>, AwsError> {
        let operation = match attribute_path {
            "UserName" => "identitystore:GetUserId",
            _ => "identitystore:GetGroupId",
        };
        let (client, store) = self.identity_store(operation)?;
        let attribute = aws_sdk_identitystore::types::UniqueAttribute::builder()
            .attribute_path(attribute_path)
            .attribute_value(aws_smithy_types::Document::String(name.to_string()))
            .build()
            .expect("path and value are set");
        let identifier = aws_sdk_identitystore::types::AlternateIdentifier::UniqueAttribute(attribute);
        if operation == "identitystore:GetUserId" {
            let found = self
                .call(operation, name, is_not_found, |counter| {
                    client
                        .get_user_id()
                        .identity_store_id(store)
                        .alternate_identifier(identifier)
                        .customize()
                        .interceptor(counter)
                        .send()
                })
                .await?;
            return Ok(found.map(|f| f.user_id));
        }
        let found = self
            .call(operation, name, is_not_found, |counter| {
                client
                    .get_group_id()
                    .identity_store_id(store)
                    .alternate_identifier(identifier)
                    .customize()
                    .interceptor(counter)
                    .send()
            })
            .await?;
        Ok(found.map(|f| f.group_id))
    }

    /// The calls made so far, in order.
    pub fn records(&self) -> Vec<CallRecord> {
        self.records.lock().expect("call records").clone()
    }

    /// Sends one call with an attempt counter attached, and records it.
    /// `already_done` says which error means the change is already in place.
    async fn call<T, E, F, Fut>(
        &self,
        operation: &'static str,
        target: &str,
        already_done: impl Fn(&AwsError) -> bool,
        send: F,
    ) -> Result<Option<T>, AwsError>
    where
        F: FnOnce(AttemptCounter) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        T: RequestId,
    {
        let counter = AttemptCounter::default();
        let result = send(counter.clone()).await;
        let attempts = *counter.0.lock().expect("attempt counter");
        let (outcome, value, error, request_id) = match result {
            Ok(output) => {
                let request_id = output.request_id().map(str::to_string);
                (CallOutcome::Success, Some(output), None, request_id)
            }
            Err(e) => {
                let error = AwsError::from_sdk(operation, &e);
                let request_id = error.request_id.clone();
                if already_done(&error) {
                    (CallOutcome::AlreadyDone, None, None, request_id)
                } else {
                    (CallOutcome::Failed, None, Some(error), request_id)
                }
            }
        };
        self.records.lock().expect("call records").push(CallRecord {
            operation,
            target: target.to_string(),
            outcome,
            request_id,
            error: error.clone(),
            attempts,
        });
        match error {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }

    /// Every page of an IAM list call, each page recorded; `read` takes the
    /// items and the next marker out of a page.
    async fn list_all<T, O, E, F, Fut>(
        &self,
        operation: &'static str,
        target: &str,
        send: F,
        read: impl Fn(&O) -> Page<T>,
    ) -> Result<Vec<T>, AwsError>
    where
        F: Fn(Option<String>, AttemptCounter) -> Fut,
        Fut: Future<Output = Result<O, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        O: RequestId,
    {
        all_pages(operation, |marker| {
            let (send, read) = (&send, &read);
            async move {
                let page = self.call(operation, target, |_| false, |counter| send(marker, counter)).await?;
                Ok(read(&page.expect("a successful call has output")))
            }
        })
        .await
    }
}

impl SdkIam<'_> {
    /// Sends `send` again, with backoff, while Identity Center answers
    /// `ConflictException` (another operation on the same assignment or
    /// permission set is in progress) and `deadline` is not reached.
    async fn retrying_conflicts<T, F, Fut>(&self, deadline: Instant, send: F) -> Result<T, AwsError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let mut attempt = 0;
        loop {
            match send().await {
                Err(e) if e.code.as_deref() == Some("ConflictException") => {
                    let wait = backoff(attempt, STATUS_POLL_CAP);
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Follows an assignment operation's status until it is final or `deadline` passes.
    async fn provisioned<F, Fut>(
        &self,
        mut status: AccountAssignmentOperationStatus,
        deadline: Instant,
        describe: F,
    ) -> Result<Provisioning, AwsError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<AccountAssignmentOperationStatus, AwsError>>,
    {
        let mut wait = STATUS_POLL_FIRST;
        loop {
            match status.status() {
                Some(StatusValues::Succeeded) => return Ok(Provisioning::Succeeded),
                Some(StatusValues::Failed) => {
                    let reason = status.failure_reason().unwrap_or("Identity Center gave no reason");
                    return Ok(Provisioning::Failed(reason.to_string()));
                }
                _ => {}
            }
            let Some(request_id) = status.request_id().map(str::to_string) else {
                return Ok(Provisioning::InProgress);
            };
            if Instant::now() + wait >= deadline {
                return Ok(Provisioning::InProgress);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(STATUS_POLL_CAP);
            status = describe(request_id).await?;
        }
    }
}

/// An answer without a status: nothing to follow, reported as in progress.
fn no_status() -> AccountAssignmentOperationStatus {
    AccountAssignmentOperationStatus::builder().build()
}

/// Seconds of an ISO 8601 duration of hours, minutes and seconds (`PT1H`,
/// `PT8H30M`), as Identity Center writes session durations.
pub fn iso8601_seconds(duration: &str) -> Option<i32> {
    let mut rest = duration.strip_prefix("PT")?;
    let mut seconds = 0i32;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = rest.split_at(digits);
        let number: i32 = number.parse().ok()?;
        let factor = match unit.chars().next()? {
            'H' => 3600,
            'M' => 60,
            'S' => 1,
            _ => return None,
        };
        seconds = seconds.checked_add(number.checked_mul(factor)?)?;
        rest = &unit[1..];
    }
    (seconds > 0).then_some(seconds)
}

impl SdkIam<'_> {
    /// Every tag of a policy (reconciliation: is an unknown `/jit-iam/` policy jit-iam's?).
    /// Adds (or overwrites) tags of a policy.
    pub async fn tag_policy(&self, arn: &str, tags: &[(&str, String)]) -> Result<(), AwsError> {
        let iam = self.iam;
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(key, value)| Tag::builder().key(*key).value(value).build().expect("key and value are set"))
            .collect();
        self.call(
            "iam:TagPolicy",
            arn,
            |_| false,
            |counter| iam.tag_policy().policy_arn(arn).set_tags(Some(tags)).customize().interceptor(counter).send(),
        )
        .await
        .map(|_| ())
    }

    pub async fn policy_tags(&self, arn: &str) -> Result<Vec<(String, String)>, AwsError> {
        let iam = self.iam;
        let tags = self
            .call("iam:ListPolicyTags", arn, is_not_found, |counter| {
                iam.list_policy_tags().policy_arn(arn).customize().interceptor(counter).send()
            })
            .await?;
        Ok(tags
            .map(|t| t.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
            .unwrap_or_default())
    }
}

impl IamChanges for SdkIam<'_> {
    async fn create_policy(
        &self,
        policy: &GeneratedPolicy,
        document: &str,
        tags: &[(&'static str, String)],
    ) -> Result<bool, AwsError> {
        let iam = self.iam;
        let tags = tags
            .iter()
            .map(|(key, value)| Tag::builder().key(*key).value(value).build().expect("key and value are set"))
            .collect();
        let exists = |e: &AwsError| e.kind == AwsErrorKind::AlreadyExists;
        let created = self
            .call("iam:CreatePolicy", &policy.arn, exists, |counter| {
                iam.create_policy()
                    .policy_name(&policy.name)
                    .path(JIT_IAM_POLICY_PATH)
                    .policy_document(document)
                    .set_tags(Some(tags))
                    .customize()
                    .interceptor(counter)
                    .send()
            })
            .await?;
        Ok(created.is_some())
    }

    async fn policy_grant_id(&self, arn: &str) -> Result<Option<String>, AwsError> {
        let iam = self.iam;
        let tags = self
            .call(
                "iam:ListPolicyTags",
                arn,
                |_| false,
                |counter| iam.list_policy_tags().policy_arn(arn).customize().interceptor(counter).send(),
            )
            .await?;
        Ok(tags.and_then(|out| out.tags().iter().find(|t| t.key() == GRANT_ID_TAG).map(|t| t.value().to_string())))
    }

    async fn delete_policy(&self, arn: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call("iam:DeletePolicy", arn, is_not_found, |counter| {
            iam.delete_policy().policy_arn(arn).customize().interceptor(counter).send()
        })
        .await
        .map(|_| ())
    }

    async fn attach_policy(&self, grantee: &Grantee, arn: &str) -> Result<(), AwsError> {
        let (iam, name, ops) = (self.iam, grantee.name.as_str(), policy_operations(grantee.principal_type));
        match grantee.principal_type {
            PrincipalType::IamUser => self
                .call(
                    ops.attach,
                    arn,
                    |_| false,
                    |counter| {
                        iam.attach_user_policy().user_name(name).policy_arn(arn).customize().interceptor(counter).send()
                    },
                )
                .await
                .map(|_| ()),
            PrincipalType::IamRole => self
                .call(
                    ops.attach,
                    arn,
                    |_| false,
                    |counter| {
                        iam.attach_role_policy().role_name(name).policy_arn(arn).customize().interceptor(counter).send()
                    },
                )
                .await
                .map(|_| ()),
            PrincipalType::IdentityCenterUser | PrincipalType::IdentityCenterGroup => Err(no_iam_policies(ops.attach)),
        }
    }

    async fn detach_policy(&self, grantee: &Grantee, arn: &str) -> Result<bool, AwsError> {
        let (iam, name, ops) = (self.iam, grantee.name.as_str(), policy_operations(grantee.principal_type));
        match grantee.principal_type {
            PrincipalType::IamUser => self
                .call(ops.detach, arn, is_not_found, |counter| {
                    iam.detach_user_policy().user_name(name).policy_arn(arn).customize().interceptor(counter).send()
                })
                .await
                .map(|detached| detached.is_some()),
            PrincipalType::IamRole => self
                .call(ops.detach, arn, is_not_found, |counter| {
                    iam.detach_role_policy().role_name(name).policy_arn(arn).customize().interceptor(counter).send()
                })
                .await
                .map(|detached| detached.is_some()),
            PrincipalType::IdentityCenterUser | PrincipalType::IdentityCenterGroup => Ok(false),
        }
    }

    async fn policy_document(&self, arn: &str) -> Result<Option<String>, AwsError> {
        let iam = self.iam;
        let policy = self
            .call("iam:GetPolicy", arn, is_not_found, |counter| {
                iam.get_policy().policy_arn(arn).customize().interceptor(counter).send()
            })
            .await?;
        let Some(version) = policy.and_then(|p| p.policy).and_then(|p| p.default_version_id) else {
            return Ok(None);
        };
        let document = self
            .call("iam:GetPolicyVersion", arn, is_not_found, |counter| {
                iam.get_policy_version().policy_arn(arn).version_id(&version).customize().interceptor(counter).send()
            })
            .await?;
        Ok(document.and_then(|d| d.policy_version).and_then(|v| v.document).map(|d| decode_document(&d)))
    }

    async fn attached_policies(&self, grantee: &Grantee) -> Result<Vec<String>, AwsError> {
        let (iam, name, ops) = (self.iam, grantee.name.as_str(), policy_operations(grantee.principal_type));
        match grantee.principal_type {
            PrincipalType::IamUser => {
                let send = |marker, counter| {
                    iam.list_attached_user_policies()
                        .user_name(name)
                        .max_items(1000)
                        .set_marker(marker)
                        .customize()
                        .interceptor(counter)
                        .send()
                };
                let read = |page: &ListAttachedUserPoliciesOutput| {
                    attached_page(page.attached_policies(), page.marker(), page.is_truncated())
                };
                self.list_all(ops.list_attached, name, send, read).await
            }
            PrincipalType::IamRole => {
                let send = |marker, counter| {
                    iam.list_attached_role_policies()
                        .role_name(name)
                        .max_items(1000)
                        .set_marker(marker)
                        .customize()
                        .interceptor(counter)
                        .send()
                };
                let read = |page: &ListAttachedRolePoliciesOutput| {
                    attached_page(page.attached_policies(), page.marker(), page.is_truncated())
                };
                self.list_all(ops.list_attached, name, send, read).await
            }
            PrincipalType::IdentityCenterUser | PrincipalType::IdentityCenterGroup => Ok(Vec::new()),
        }
    }

    async fn groups_of(&self, user: &str) -> Result<Vec<String>, AwsError> {
        let iam = self.iam;
        let send = |marker, counter| {
            iam.list_groups_for_user()
                .user_name(user)
                .max_items(1000)
                .set_marker(marker)
                .customize()
                .interceptor(counter)
                .send()
        };
        let read = |page: &aws_sdk_iam::operation::list_groups_for_user::ListGroupsForUserOutput| Page {
            items: page.groups().iter().map(|g| g.group_name().to_string()).collect(),
            next: page.marker().filter(|_| page.is_truncated()).map(str::to_string),
        };
        self.list_all("iam:ListGroupsForUser", user, send, read).await
    }

    async fn add_to_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call(
            "iam:AddUserToGroup",
            group,
            |_| false,
            |counter| iam.add_user_to_group().user_name(user).group_name(group).customize().interceptor(counter).send(),
        )
        .await
        .map(|_| ())
    }

    async fn remove_from_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call("iam:RemoveUserFromGroup", group, is_not_found, |counter| {
            iam.remove_user_from_group().user_name(user).group_name(group).customize().interceptor(counter).send()
        })
        .await
        .map(|_| ())
    }

    async fn principal_id(&self, principal_type: PrincipalType, name: &str) -> Result<Option<String>, AwsError> {
        let iam = self.iam;
        match principal_type {
            PrincipalType::IamUser => {
                let user = self
                    .call("iam:GetUser", name, is_not_found, |counter| {
                        iam.get_user().user_name(name).customize().interceptor(counter).send()
                    })
                    .await?;
                Ok(user.and_then(|u| u.user).map(|u| u.user_id))
            }
            PrincipalType::IamRole => {
                let role = self
                    .call("iam:GetRole", name, is_not_found, |counter| {
                        iam.get_role().role_name(name).customize().interceptor(counter).send()
                    })
                    .await?;
                Ok(role.and_then(|r| r.role).map(|r| r.role_id))
            }
            PrincipalType::IdentityCenterUser => self.identity_center_id(name, "UserName").await,
            PrincipalType::IdentityCenterGroup => self.identity_center_id(name, "DisplayName").await,
        }
    }

    async fn policy_holders(&self, arn: &str, principal_type: PrincipalType) -> Result<Vec<IamPrincipal>, AwsError> {
        let iam = self.iam;
        let filter = match principal_type {
            PrincipalType::IamUser => EntityType::User,
            PrincipalType::IamRole => EntityType::Role,
            // IAM policies are never attached to Identity Center principals.
            PrincipalType::IdentityCenterUser | PrincipalType::IdentityCenterGroup => return Ok(Vec::new()),
        };
        let send = |marker, counter| {
            iam.list_entities_for_policy()
                .policy_arn(arn)
                .entity_filter(filter.clone())
                .max_items(1000)
                .set_marker(marker)
                .customize()
                .interceptor(counter)
                .send()
        };
        let read = |page: &ListEntitiesForPolicyOutput| {
            let users = page.policy_users().iter().filter_map(|u| principal(u.user_name(), u.user_id()));
            let roles = page.policy_roles().iter().filter_map(|r| principal(r.role_name(), r.role_id()));
            Page {
                items: users.chain(roles).collect(),
                next: page.marker().filter(|_| page.is_truncated()).map(str::to_string),
            }
        };
        self.list_all("iam:ListEntitiesForPolicy", arn, send, read).await
    }

    async fn group_members(&self, group: &str) -> Result<Vec<IamPrincipal>, AwsError> {
        let iam = self.iam;
        let send = |marker, counter| {
            iam.get_group().group_name(group).max_items(1000).set_marker(marker).customize().interceptor(counter).send()
        };
        let read = |page: &GetGroupOutput| Page {
            items: page
                .users()
                .iter()
                .map(|u| IamPrincipal { name: u.user_name().to_string(), id: u.user_id().to_string() })
                .collect(),
            next: page.marker().filter(|_| page.is_truncated()).map(str::to_string),
        };
        self.list_all("iam:GetGroup", group, send, read).await
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call(
            "iam:CreatePolicyVersion",
            arn,
            |_| false,
            |counter| {
                iam.create_policy_version()
                    .policy_arn(arn)
                    .policy_document(document)
                    .set_as_default(true)
                    .customize()
                    .interceptor(counter)
                    .send()
            },
        )
        .await
        .map(|_| ())
    }

    async fn delete_policy_version(&self, arn: &str, version_id: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call("iam:DeletePolicyVersion", arn, is_not_found, |counter| {
            iam.delete_policy_version().policy_arn(arn).version_id(version_id).customize().interceptor(counter).send()
        })
        .await
        .map(|_| ())
    }

    async fn detach_group_policy(&self, group: &str, arn: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call("iam:DetachGroupPolicy", arn, is_not_found, |counter| {
            iam.detach_group_policy().group_name(group).policy_arn(arn).customize().interceptor(counter).send()
        })
        .await
        .map(|_| ())
    }

    async fn max_session_duration(&self, role: &str) -> Result<Option<i32>, AwsError> {
        let iam = self.iam;
        let found = self
            .call("iam:GetRole", role, is_not_found, |counter| {
                iam.get_role().role_name(role).customize().interceptor(counter).send()
            })
            .await?;
        Ok(found.and_then(|r| r.role).map(|r| r.max_session_duration.unwrap_or(3600)))
    }

    async fn put_role_policy(&self, role: &str, name: &str, document: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call(
            "iam:PutRolePolicy",
            role,
            |_| false,
            |counter| {
                iam.put_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .policy_document(document)
                    .customize()
                    .interceptor(counter)
                    .send()
            },
        )
        .await
        .map(|_| ())
    }

    async fn delete_role_policy(&self, role: &str, name: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call("iam:DeleteRolePolicy", role, is_not_found, |counter| {
            iam.delete_role_policy().role_name(role).policy_name(name).customize().interceptor(counter).send()
        })
        .await
        .map(|_| ())
    }

    async fn identity_center_membership(&self, group_id: &str, user_id: &str) -> Result<Option<String>, AwsError> {
        const OPERATION: &str = "identitystore:GetGroupMembershipId";
        let (client, store) = self.identity_store(OPERATION)?;
        let member = aws_sdk_identitystore::types::MemberId::UserId(user_id.to_string());
        let found = self
            .call(OPERATION, group_id, is_not_found, |counter| {
                client
                    .get_group_membership_id()
                    .identity_store_id(store)
                    .group_id(group_id)
                    .member_id(member)
                    .customize()
                    .interceptor(counter)
                    .send()
            })
            .await?;
        Ok(found.map(|f| f.membership_id))
    }

    async fn create_group_membership(&self, group_id: &str, user_id: &str) -> Result<(), AwsError> {
        const OPERATION: &str = "identitystore:CreateGroupMembership";
        let (client, store) = self.identity_store(OPERATION)?;
        let member = aws_sdk_identitystore::types::MemberId::UserId(user_id.to_string());
        self.call(
            OPERATION,
            group_id,
            |_| false,
            |counter| {
                client
                    .create_group_membership()
                    .identity_store_id(store)
                    .group_id(group_id)
                    .member_id(member)
                    .customize()
                    .interceptor(counter)
                    .send()
            },
        )
        .await
        .map(|_| ())
    }

    async fn delete_group_membership(&self, membership_id: &str) -> Result<(), AwsError> {
        const OPERATION: &str = "identitystore:DeleteGroupMembership";
        let (client, store) = self.identity_store(OPERATION)?;
        self.call(OPERATION, membership_id, is_not_found, |counter| {
            client
                .delete_group_membership()
                .identity_store_id(store)
                .membership_id(membership_id)
                .customize()
                .interceptor(counter)
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn assignment_exists(&self, assignment: &Assignment) -> Result<bool, AwsError> {
        const OPERATION: &str = "sso:ListAccountAssignments";
        let (access, instance) = self.identity_center(OPERATION)?;
        let client = access.sso_admin;
        let mut next = None;
        loop {
            let page = self
                .call(
                    OPERATION,
                    &assignment.target(),
                    |_| false,
                    |counter| {
                        client
                            .list_account_assignments()
                            .instance_arn(&instance.instance_arn)
                            .account_id(&assignment.account_id)
                            .permission_set_arn(&assignment.permission_set_arn)
                            .set_next_token(next.take())
                            .customize()
                            .interceptor(counter)
                            .send()
                    },
                )
                .await?
                .expect("a successful call has output");
            let principal_type = assignment.sso_principal_type();
            if page.account_assignments().iter().any(|a| {
                a.principal_id() == Some(assignment.principal_id.as_str())
                    && a.principal_type() == Some(&principal_type)
            }) {
                return Ok(true);
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(false),
            }
        }
    }

    async fn create_assignment(&self, assignment: &Assignment) -> Result<Provisioning, AwsError> {
        const OPERATION: &str = "sso:CreateAccountAssignment";
        let (access, instance) = self.identity_center(OPERATION)?;
        let (client, deadline) = (access.sso_admin, Instant::now() + access.provisioning_wait);
        let _in_progress = access.assignment_creations.acquire().await.expect("the semaphore is never closed");
        let target = assignment.target();
        let created = self
            .retrying_conflicts(deadline, || {
                self.call(
                    OPERATION,
                    &target,
                    |_| false,
                    |counter| {
                        client
                            .create_account_assignment()
                            .instance_arn(&instance.instance_arn)
                            .target_id(&assignment.account_id)
                            .target_type(TargetType::AwsAccount)
                            .permission_set_arn(&assignment.permission_set_arn)
                            .principal_type(assignment.sso_principal_type())
                            .principal_id(&assignment.principal_id)
                            .customize()
                            .interceptor(counter)
                            .send()
                    },
                )
            })
            .await?
            .expect("a successful call has output");
        let status = created.account_assignment_creation_status().cloned().unwrap_or_else(no_status);
        let target = &target;
        self.provisioned(status, deadline, |request_id| async move {
            const OPERATION: &str = "sso:DescribeAccountAssignmentCreationStatus";
            let answer = self
                .call(
                    OPERATION,
                    target,
                    |_| false,
                    |counter| {
                        client
                            .describe_account_assignment_creation_status()
                            .instance_arn(&instance.instance_arn)
                            .account_assignment_creation_request_id(request_id)
                            .customize()
                            .interceptor(counter)
                            .send()
                    },
                )
                .await?
                .expect("a successful call has output");
            Ok(answer.account_assignment_creation_status().cloned().unwrap_or_else(no_status))
        })
        .await
    }

    async fn delete_assignment(&self, assignment: &Assignment) -> Result<Provisioning, AwsError> {
        const OPERATION: &str = "sso:DeleteAccountAssignment";
        let (access, instance) = self.identity_center(OPERATION)?;
        let (client, deadline) = (access.sso_admin, Instant::now() + access.provisioning_wait);
        let target = assignment.target();
        let deleted = self
            .retrying_conflicts(deadline, || {
                self.call(OPERATION, &target, is_not_found, |counter| {
                    client
                        .delete_account_assignment()
                        .instance_arn(&instance.instance_arn)
                        .target_id(&assignment.account_id)
                        .target_type(TargetType::AwsAccount)
                        .permission_set_arn(&assignment.permission_set_arn)
                        .principal_type(assignment.sso_principal_type())
                        .principal_id(&assignment.principal_id)
                        .customize()
                        .interceptor(counter)
                        .send()
                })
            })
            .await?;
        // Already gone.
        let Some(deleted) = deleted else { return Ok(Provisioning::Succeeded) };
        let status = deleted.account_assignment_deletion_status().cloned().unwrap_or_else(no_status);
        let target = &target;
        self.provisioned(status, deadline, |request_id| async move {
            const OPERATION: &str = "sso:DescribeAccountAssignmentDeletionStatus";
            let answer = self
                .call(
                    OPERATION,
                    target,
                    |_| false,
                    |counter| {
                        client
                            .describe_account_assignment_deletion_status()
                            .instance_arn(&instance.instance_arn)
                            .account_assignment_deletion_request_id(request_id)
                            .customize()
                            .interceptor(counter)
                            .send()
                    },
                )
                .await?
                .expect("a successful call has output");
            Ok(answer.account_assignment_deletion_status().cloned().unwrap_or_else(no_status))
        })
        .await
    }

    async fn create_permission_set(
        &self,
        set: &TemporaryPermissionSet,
        session_duration: &str,
    ) -> Result<String, AwsError> {
        const OPERATION: &str = "sso:CreatePermissionSet";
        let (access, instance) = self.identity_center(OPERATION)?;
        let client = access.sso_admin;
        let created = self
            .call(
                OPERATION,
                &set.name,
                |_| false,
                |counter| {
                    client
                        .create_permission_set()
                        .instance_arn(&instance.instance_arn)
                        .name(&set.name)
                        .description(&set.description)
                        .session_duration(session_duration)
                        .customize()
                        .interceptor(counter)
                        .send()
                },
            )
            .await?
            .expect("a successful call has output");
        created.permission_set().and_then(|p| p.permission_set_arn()).map(str::to_string).ok_or_else(|| {
            AwsError::new(
                AwsErrorKind::Transient,
                OPERATION,
                "Identity Center answered without the permission set's ARN",
            )
        })
    }

    async fn find_permission_set(&self, name: &str) -> Result<Option<(String, String)>, AwsError> {
        const OPERATION: &str = "sso:ListPermissionSets";
        let (access, instance) = self.identity_center(OPERATION)?;
        let client = access.sso_admin;
        let mut next = None;
        loop {
            let page = self
                .call(
                    OPERATION,
                    &instance.instance_arn,
                    |_| false,
                    |counter| {
                        client
                            .list_permission_sets()
                            .instance_arn(&instance.instance_arn)
                            .set_next_token(next.take())
                            .customize()
                            .interceptor(counter)
                            .send()
                    },
                )
                .await?
                .expect("a successful call has output");
            for arn in page.permission_sets() {
                let described = self
                    .call("sso:DescribePermissionSet", arn, is_not_found, |counter| {
                        client
                            .describe_permission_set()
                            .instance_arn(&instance.instance_arn)
                            .permission_set_arn(arn)
                            .customize()
                            .interceptor(counter)
                            .send()
                    })
                    .await?;
                let Some(set) = described.as_ref().and_then(|d| d.permission_set()) else { continue };
                if set.name() == Some(name) {
                    return Ok(Some((arn.clone(), set.description().unwrap_or_default().to_string())));
                }
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(None),
            }
        }
    }

    async fn inline_policy(&self, permission_set_arn: &str) -> Result<Option<String>, AwsError> {
        const OPERATION: &str = "sso:GetInlinePolicyForPermissionSet";
        let (access, instance) = self.identity_center(OPERATION)?;
        let client = access.sso_admin;
        let found = self
            .call(OPERATION, permission_set_arn, is_not_found, |counter| {
                client
                    .get_inline_policy_for_permission_set()
                    .instance_arn(&instance.instance_arn)
                    .permission_set_arn(permission_set_arn)
                    .customize()
                    .interceptor(counter)
                    .send()
            })
            .await?;
        Ok(found.map(|f| f.inline_policy().unwrap_or_default().to_string()))
    }

    async fn provision_permission_set(&self, permission_set_arn: &str, account_id: &str) -> Result<(), AwsError> {
        const OPERATION: &str = "sso:ProvisionPermissionSet";
        let (access, instance) = self.identity_center(OPERATION)?;
        let (client, deadline) = (access.sso_admin, Instant::now() + access.provisioning_wait);
        self.retrying_conflicts(deadline, || {
            self.call(
                OPERATION,
                permission_set_arn,
                |_| false,
                |counter| {
                    client
                        .provision_permission_set()
                        .instance_arn(&instance.instance_arn)
                        .permission_set_arn(permission_set_arn)
                        .target_type(aws_sdk_ssoadmin::types::ProvisionTargetType::AwsAccount)
                        .target_id(account_id)
                        .customize()
                        .interceptor(counter)
                        .send()
                },
            )
        })
        .await
        .map(|_| ())
    }

    async fn put_inline_policy(&self, permission_set_arn: &str, document: &str) -> Result<(), AwsError> {
        const OPERATION: &str = "sso:PutInlinePolicyToPermissionSet";
        let (access, instance) = self.identity_center(OPERATION)?;
        let client = access.sso_admin;
        self.call(
            OPERATION,
            permission_set_arn,
            |_| false,
            |counter| {
                client
                    .put_inline_policy_to_permission_set()
                    .instance_arn(&instance.instance_arn)
                    .permission_set_arn(permission_set_arn)
                    .inline_policy(document)
                    .customize()
                    .interceptor(counter)
                    .send()
            },
        )
        .await
        .map(|_| ())
    }

    async fn delete_permission_set(&self, permission_set_arn: &str) -> Result<(), AwsError> {
        const OPERATION: &str = "sso:DeletePermissionSet";
        let (access, instance) = self.identity_center(OPERATION)?;
        let (client, deadline) = (access.sso_admin, Instant::now() + access.provisioning_wait);
        self.retrying_conflicts(deadline, || {
            self.call(OPERATION, permission_set_arn, is_not_found, |counter| {
                client
                    .delete_permission_set()
                    .instance_arn(&instance.instance_arn)
                    .permission_set_arn(permission_set_arn)
                    .customize()
                    .interceptor(counter)
                    .send()
            })
        })
        .await
        .map(|_| ())
    }

    async fn session_duration(&self, permission_set_arn: &str) -> Result<Option<i32>, AwsError> {
        const OPERATION: &str = "sso:DescribePermissionSet";
        let (access, instance) = self.identity_center(OPERATION)?;
        let client = access.sso_admin;
        let described = self
            .call(OPERATION, permission_set_arn, is_not_found, |counter| {
                client
                    .describe_permission_set()
                    .instance_arn(&instance.instance_arn)
                    .permission_set_arn(permission_set_arn)
                    .customize()
                    .interceptor(counter)
                    .send()
            })
            .await?;
        // Identity Center's default when a permission set names none: one hour.
        Ok(described
            .map(|d| d.permission_set().and_then(|p| p.session_duration()).and_then(iso8601_seconds).unwrap_or(3600)))
    }
}

/// A call on an Identity Center user's IAM policies, which it cannot have.
fn no_iam_policies(operation: &'static str) -> AwsError {
    AwsError::new(AwsErrorKind::Rejected, operation, "an Identity Center user or group holds no IAM policies")
}

fn principal(name: Option<&str>, id: Option<&str>) -> Option<IamPrincipal> {
    Some(IamPrincipal { name: name?.to_string(), id: id?.to_string() })
}

/// IAM answers policy documents URL-encoded (moto: plain JSON); plain JSON either way.
pub fn decode_document(document: &str) -> String {
    if document.trim_start().starts_with('{') {
        return document.to_string();
    }
    percent_encoding::percent_decode_str(document).decode_utf8_lossy().into_owned()
}

/// One page of a List Attached{User,Role}Policies answer.
fn attached_page(policies: &[AttachedPolicy], marker: Option<&str>, truncated: bool) -> Page<String> {
    Page { items: policy_arns(policies), next: marker.filter(|_| truncated).map(str::to_string) }
}

fn is_not_found(error: &AwsError) -> bool {
    error.kind == AwsErrorKind::NotFound
}
