//! The test harness: the real `jit-iam` binary on a fresh Postgres database,
//! talking to moto through the real AWS SDK.

#![allow(dead_code)]

/// Shared with the benchmarks' latency proxy.
#[path = "../../../benches/common/aws_proxy.rs"]
pub mod aws_proxy;
mod enforced;
mod faults;
mod moto;
mod receiver;
mod server;

use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use rand::Rng;

pub use enforced::{Enforced, EnforcedSetup, ENFORCED_ACCOUNT};
pub use faults::{DatabaseProxy, Exchange, Fault, FaultProxy};
pub use moto::{die_with_parent, free_port, Moto};
pub use receiver::{Answer, Receiver};
pub use server::{ServerBuilder, TestDb, TestServer};

/// A random 12-digit account id: each test works in accounts of its own.
pub fn random_account_id() -> String {
    let mut rng = rand::rng();
    format!("{}{:011}", rng.random_range(1..=9), rng.random_range(0..100_000_000_000u64))
}

/// A short random suffix for names that are global in AWS (buckets) or in the database.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple().to_string()[..12].to_string())
}

/// SDK clients acting inside one moto account, to seed and inspect it.
pub struct Account {
    pub id: String,
    pub config: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub organizations: aws_sdk_organizations::Client,
}

impl Account {
    pub fn new(id: &str, config: SdkConfig) -> Self {
        Self {
            id: id.to_string(),
            iam: aws_sdk_iam::Client::new(&config),
            s3: aws_sdk_s3::Client::new(&config),
            organizations: aws_sdk_organizations::Client::new(&config),
            config,
        }
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&self.config)
                .region(aws_config::Region::new(region.to_string()))
                .build(),
        )
    }

    pub fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.id)
    }

    /// The default version of a managed policy, as IAM stores it.
    pub async fn policy_document(&self, arn: &str) -> serde_json::Value {
        let policy = self.iam.get_policy().policy_arn(arn).send().await.unwrap().policy.unwrap();
        let version = self
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(policy.default_version_id().unwrap())
            .send()
            .await
            .unwrap();
        let raw = version.policy_version.unwrap().document.unwrap();
        // IAM returns the document URL-encoded (moto too); decode when it is.
        let decoded = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy().to_string();
        serde_json::from_str(&decoded).or_else(|_| serde_json::from_str(&raw)).unwrap()
    }

    pub async fn create_user(&self, name: &str, tags: &[(&str, &str)]) {
        self.iam.create_user().user_name(name).set_tags(Some(iam_tags(tags))).send().await.unwrap();
    }

    pub async fn create_group(&self, name: &str) {
        self.iam.create_group().group_name(name).send().await.unwrap();
    }

    pub async fn create_role(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
        let role = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust)
            .set_tags(Some(iam_tags(tags)))
            .send()
            .await
            .unwrap();
        role.role.unwrap().arn
    }

    /// A customer-managed policy; returns its ARN.
    pub async fn create_policy(&self, name: &str, path: &str, tags: &[(&str, &str)]) -> String {
        let document = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#;
        let policy = self
            .iam
            .create_policy()
            .policy_name(name)
            .path(path)
            .policy_document(document)
            .set_tags(Some(iam_tags(tags)))
            .send()
            .await
            .unwrap();
        policy.policy.unwrap().arn.unwrap()
    }

    pub async fn create_bucket(&self, name: &str, tags: &[(&str, &str)]) {
        self.s3.create_bucket().bucket(name).send().await.unwrap();
        if !tags.is_empty() {
            let tag_set = tags
                .iter()
                .map(|(k, v)| aws_sdk_s3::types::Tag::builder().key(*k).value(*v).build().unwrap())
                .collect();
            let tagging = aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(tag_set)).build().unwrap();
            self.s3.put_bucket_tagging().bucket(name).tagging(tagging).send().await.unwrap();
        }
    }

    /// Starts `count` instances in `region`; returns their ids.
    pub async fn run_instances(&self, region: &str, count: i32, tags: &[(&str, &str)]) -> Vec<String> {
        let mut request = self.ec2(region).run_instances().image_id("ami-12c6146b").min_count(count).max_count(count);
        if !tags.is_empty() {
            let spec = aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .set_tags(Some(
                    tags.iter().map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build()).collect(),
                ))
                .build();
            request = request.tag_specifications(spec);
        }
        let output = request.send().await.unwrap();
        output.instances().iter().map(|i| i.instance_id().unwrap().to_string()).collect()
    }
}

/// IAM Identity Center in an account (moto has one instance per account and region).
impl Account {
    pub fn sso_admin(&self) -> aws_sdk_ssoadmin::Client {
        aws_sdk_ssoadmin::Client::new(&self.config)
    }

    pub fn identity_store(&self) -> aws_sdk_identitystore::Client {
        aws_sdk_identitystore::Client::new(&self.config)
    }

    /// The account's instance in us-east-1: (instance ARN, identity store id).
    pub async fn identity_center(&self) -> (String, String) {
        let listed = self.sso_admin().list_instances().send().await.unwrap();
        let instance = &listed.instances()[0];
        (instance.instance_arn().unwrap().to_string(), instance.identity_store_id().unwrap().to_string())
    }

    /// An Identity Center user; returns its UserId.
    pub async fn create_identity_center_user(&self, store: &str, user_name: &str, display_name: &str) -> String {
        let name = aws_sdk_identitystore::types::Name::builder().given_name(user_name).family_name("Test").build();
        let created = self
            .identity_store()
            .create_user()
            .identity_store_id(store)
            .user_name(user_name)
            .display_name(display_name)
            .name(name)
            .send()
            .await
            .unwrap();
        created.user_id().to_string()
    }

    /// An Identity Center group; returns its GroupId.
    pub async fn create_identity_center_group(&self, store: &str, display_name: &str) -> String {
        let created =
            self.identity_store().create_group().identity_store_id(store).display_name(display_name).send().await;
        created.unwrap().group_id().to_string()
    }

    /// A permission set (always with a session duration: without one moto
    /// answers what the SDK cannot decode), provisioned to this account when
    /// `provision`; returns its ARN.
    pub async fn create_permission_set(&self, instance: &str, name: &str, provision: bool) -> String {
        let sso = self.sso_admin();
        let created = sso
            .create_permission_set()
            .instance_arn(instance)
            .name(name)
            .description(format!("{name} access"))
            .session_duration("PT2H")
            .send()
            .await
            .unwrap();
        let arn = created.permission_set().unwrap().permission_set_arn().unwrap().to_string();
        if provision {
            sso.provision_permission_set()
                .instance_arn(instance)
                .permission_set_arn(&arn)
                .target_type(aws_sdk_ssoadmin::types::ProvisionTargetType::AwsAccount)
                .target_id(&self.id)
                .send()
                .await
                .unwrap();
        }
        arn
    }
}

/// A `ListTagsForResource` answer (sso-admin), for [`FaultProxy::answer`].
pub fn permission_set_tags(tags: &[(&str, &str)]) -> serde_json::Value {
    let tags: Vec<serde_json::Value> = tags.iter().map(|(k, v)| serde_json::json!({"Key": k, "Value": v})).collect();
    serde_json::json!({ "Tags": tags })
}

impl Account {
    /// Managed policies attached to `user`, as IAM has them.
    pub async fn user_policies(&self, user: &str) -> Vec<String> {
        let out = self.iam.list_attached_user_policies().user_name(user).send().await.unwrap();
        out.attached_policies().iter().map(|p| p.policy_arn().unwrap().to_string()).collect()
    }

    /// Managed policies attached to `role`, as IAM has them.
    pub async fn role_policies(&self, role: &str) -> Vec<String> {
        let out = self.iam.list_attached_role_policies().role_name(role).send().await.unwrap();
        out.attached_policies().iter().map(|p| p.policy_arn().unwrap().to_string()).collect()
    }

    /// Groups `user` is in, as IAM has them.
    pub async fn user_groups(&self, user: &str) -> Vec<String> {
        let out = self.iam.list_groups_for_user().user_name(user).send().await.unwrap();
        out.groups().iter().map(|g| g.group_name().to_string()).collect()
    }

    /// The policies jit-iam created in this account (path /jit-iam/).
    pub async fn jit_policies(&self) -> Vec<String> {
        let out = self
            .iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .path_prefix("/jit-iam/")
            .send()
            .await
            .unwrap();
        out.policies().iter().map(|p| p.arn().unwrap().to_string()).collect()
    }

    pub async fn attach(&self, user: &str, policy_arn: &str) {
        self.iam.attach_user_policy().user_name(user).policy_arn(policy_arn).send().await.unwrap();
    }

    pub async fn add_to_group(&self, user: &str, group: &str) {
        self.iam.add_user_to_group().user_name(user).group_name(group).send().await.unwrap();
    }
}

fn iam_tags(tags: &[(&str, &str)]) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter().map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(*k).value(*v).build().unwrap()).collect()
}

/// Polls `check` until it returns Some, or fails the test after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
