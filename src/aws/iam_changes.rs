//! The IAM calls grants make, each idempotent and each recorded: operation,
//! target, outcome, AWS request id, error code, and how many HTTP attempts the
//! SDK needed (its retries of throttling, 5xx and timeouts).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_iam::operation::list_attached_user_policies::ListAttachedUserPoliciesOutput;
use aws_sdk_iam::operation::list_groups_for_user::ListGroupsForUserOutput;
use aws_sdk_iam::types::Tag;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;

use super::error::{AwsError, AwsErrorKind};
use super::inventory::{all_pages, Page};
use crate::domain::grant::CallOutcome;

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

/// The IAM client of one account and the record of the calls made through it.
pub struct IamChanges<'a> {
    iam: &'a aws_sdk_iam::Client,
    records: Mutex<Vec<CallRecord>>,
}

/// Retries of NoSuchEntity right after jit-iam created the policy: IAM is
/// eventually consistent, and a new policy may not be attachable at once.
const CONSISTENCY_RETRIES: u32 = 5;

impl<'a> IamChanges<'a> {
    pub fn new(iam: &'a aws_sdk_iam::Client) -> Self {
        Self { iam, records: Mutex::new(Vec::new()) }
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

    /// Creates the grant's policy. When it exists already (an interrupted try
    /// created it), it is adopted if its `jit-iam:grant-id` tag is this grant's.
    pub async fn create_policy(
        &self,
        name: &str,
        arn: &str,
        document: &str,
        tags: Vec<Tag>,
        grant_id: &str,
    ) -> Result<(), AwsError> {
        let iam = self.iam;
        let exists = |e: &AwsError| e.kind == AwsErrorKind::AlreadyExists;
        let created = self
            .call("iam:CreatePolicy", arn, exists, |counter| {
                iam.create_policy()
                    .policy_name(name)
                    .path(crate::aws::inventory::JIT_IAM_POLICY_PATH)
                    .policy_document(document)
                    .set_tags(Some(tags))
                    .customize()
                    .interceptor(counter)
                    .send()
            })
            .await?;
        if created.is_some() {
            return Ok(());
        }
        let tags = self
            .call(
                "iam:ListPolicyTags",
                arn,
                |_| false,
                |counter| iam.list_policy_tags().policy_arn(arn).customize().interceptor(counter).send(),
            )
            .await?
            .map(|output| output.tags().to_vec())
            .unwrap_or_default();
        if tags.iter().any(|t| t.key() == GRANT_ID_TAG && t.value() == grant_id) {
            Ok(())
        } else {
            Err(AwsError::new(
                AwsErrorKind::Rejected,
                "iam:CreatePolicy",
                format!("a policy named {name} exists and was not created for this grant"),
            ))
        }
    }

    /// Attaches a policy to a user. After jit-iam just created the policy,
    /// NoSuchEntity is retried a few times (IAM's eventual consistency).
    pub async fn attach_user_policy(&self, user: &str, arn: &str, just_created: bool) -> Result<(), AwsError> {
        let iam = self.iam;
        let mut retries = 0;
        loop {
            let result = self
                .call(
                    "iam:AttachUserPolicy",
                    arn,
                    |_| false,
                    |counter| {
                        iam.attach_user_policy().user_name(user).policy_arn(arn).customize().interceptor(counter).send()
                    },
                )
                .await;
            match result {
                Err(e) if just_created && e.kind == AwsErrorKind::NotFound && retries < CONSISTENCY_RETRIES => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(100 * (1 << retries))).await;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    pub async fn detach_user_policy(&self, user: &str, arn: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call("iam:DetachUserPolicy", arn, is_not_found, |counter| {
            iam.detach_user_policy().user_name(user).policy_arn(arn).customize().interceptor(counter).send()
        })
        .await
        .map(|_| ())
    }

    pub async fn delete_policy(&self, arn: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call("iam:DeletePolicy", arn, is_not_found, |counter| {
            iam.delete_policy().policy_arn(arn).customize().interceptor(counter).send()
        })
        .await
        .map(|_| ())
    }

    /// The managed policies attached to a user, as IAM has them now.
    pub async fn attached_policies(&self, user: &str) -> Result<Vec<String>, AwsError> {
        let iam = self.iam;
        let send = |marker, counter| {
            iam.list_attached_user_policies()
                .user_name(user)
                .max_items(1000)
                .set_marker(marker)
                .customize()
                .interceptor(counter)
                .send()
        };
        let read = |page: &ListAttachedUserPoliciesOutput| Page {
            items: page.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect(),
            next: page.marker().filter(|_| page.is_truncated()).map(str::to_string),
        };
        self.list_all("iam:ListAttachedUserPolicies", user, send, read).await
    }

    /// The groups a user is in, as IAM has them now.
    pub async fn groups_of(&self, user: &str) -> Result<Vec<String>, AwsError> {
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
        let read = |page: &ListGroupsForUserOutput| Page {
            items: page.groups().iter().map(|g| g.group_name().to_string()).collect(),
            next: page.marker().filter(|_| page.is_truncated()).map(str::to_string),
        };
        self.list_all("iam:ListGroupsForUser", user, send, read).await
    }

    /// Every page of an IAM list call, each page recorded; `read` takes the
    /// items and the next marker out of a page.
    async fn list_all<O, E, F, Fut>(
        &self,
        operation: &'static str,
        target: &str,
        send: F,
        read: impl Fn(&O) -> Page<String>,
    ) -> Result<Vec<String>, AwsError>
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

    pub async fn add_user_to_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
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

    pub async fn remove_user_from_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
        let iam = self.iam;
        self.call("iam:RemoveUserFromGroup", group, is_not_found, |counter| {
            iam.remove_user_from_group().user_name(user).group_name(group).customize().interceptor(counter).send()
        })
        .await
        .map(|_| ())
    }
}

/// The tag naming the grant a policy was created for.
pub const GRANT_ID_TAG: &str = "jit-iam:grant-id";

fn is_not_found(error: &AwsError) -> bool {
    error.kind == AwsErrorKind::NotFound
}
