//! The IAM changes grants make (and the Identity Center group memberships),
//! behind a narrow trait: the SDK client
//! implements it for AWS (each call recorded: operation, target, outcome, AWS
//! request id, error code, and how many HTTP attempts the SDK needed), and the
//! grant mechanisms' unit tests implement it in memory.

use std::future::Future;
use std::sync::{Arc, Mutex};

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

use super::error::{AwsError, AwsErrorKind};
use super::inventory::{all_pages, policy_arns, Page};
use crate::domain::grant::{CallOutcome, Grantee, PrincipalType};
use crate::domain::policy::{GeneratedPolicy, GRANT_ID_TAG, JIT_IAM_POLICY_PATH};

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
        // No IAM policies: what stands in for them is group membership.
        PrincipalType::IdentityCenterUser => PolicyOperations {
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
}

/// The IAM client of one account and the record of the calls made through it.
pub struct SdkIam<'a> {
    iam: &'a aws_sdk_iam::Client,
    /// The account's identity store (its id, or why it is not known), for the
    /// grants that change Identity Center.
    identity_store: Option<(&'a aws_sdk_identitystore::Client, Result<String, AwsError>)>,
    records: Mutex<Vec<CallRecord>>,
}

impl<'a> SdkIam<'a> {
    pub fn new(iam: &'a aws_sdk_iam::Client) -> Self {
        Self { iam, identity_store: None, records: Mutex::new(Vec::new()) }
    }

    /// With identity store `id` reached through `client` (the integration's
    /// Identity Center instance's); an error finding it is each call's answer.
    pub fn with_identity_store(self, client: &'a aws_sdk_identitystore::Client, id: Result<String, AwsError>) -> Self {
        Self { identity_store: Some((client, id)), ..self }
    }

    /// The identity store client and id; an error for a call that needs them without them.
    fn identity_store(&self, operation: &'static str) -> Result<(&'a aws_sdk_identitystore::Client, &str), AwsError> {
        match &self.identity_store {
            Some((client, Ok(id))) => Ok((*client, id.as_str())),
            Some((_, Err(e))) => Err(e.clone()),
            None => {
                let message = "Identity Center is not set up for this integration";
                Err(AwsError::new(AwsErrorKind::Rejected, operation, message))
            }
        }
    }

    /// The id of the Identity Center user named `name` (identitystore:GetUserId); None when there is none.
    async fn identity_center_user_id(&self, name: &str) -> Result<Option<String>, AwsError> {
        const OPERATION: &str = "identitystore:GetUserId";
        let (client, store) = self.identity_store(OPERATION)?;
        let attribute = aws_sdk_identitystore::types::UniqueAttribute::builder()
            .attribute_path("UserName")
            .attribute_value(aws_smithy_types::Document::String(name.to_string()))
            .build()
            .expect("path and value are set");
        let identifier = aws_sdk_identitystore::types::AlternateIdentifier::UniqueAttribute(attribute);
        let found = self
            .call(OPERATION, name, is_not_found, |counter| {
                client
                    .get_user_id()
                    .identity_store_id(store)
                    .alternate_identifier(identifier)
                    .customize()
                    .interceptor(counter)
                    .send()
            })
            .await?;
        Ok(found.map(|f| f.user_id))
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
            PrincipalType::IdentityCenterUser => Err(no_iam_policies(ops.attach)),
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
            PrincipalType::IdentityCenterUser => Ok(false),
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
            PrincipalType::IdentityCenterUser => Ok(Vec::new()),
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
            PrincipalType::IdentityCenterUser => self.identity_center_user_id(name).await,
        }
    }

    async fn policy_holders(&self, arn: &str, principal_type: PrincipalType) -> Result<Vec<IamPrincipal>, AwsError> {
        let iam = self.iam;
        let filter = match principal_type {
            PrincipalType::IamUser => EntityType::User,
            PrincipalType::IamRole => EntityType::Role,
            // IAM policies are never attached to Identity Center users.
            PrincipalType::IdentityCenterUser => return Ok(Vec::new()),
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
}

/// A call on an Identity Center user's IAM policies, which it cannot have.
fn no_iam_policies(operation: &'static str) -> AwsError {
    AwsError::new(AwsErrorKind::Rejected, operation, "an Identity Center user holds no IAM policies")
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
