//! moto with IAM enforcement on, and a jit-iam server working through it as it
//! would in AWS: its own identity may only call sts:AssumeRole, and the access
//! role `jit-iam-access` carries the permission policy of the setup documents.
//!
//! Two phases: [`EnforcedSetup`] while enforcement is still off (the test seeds
//! the account through `seed`), then [`EnforcedSetup::enforce`].

use std::time::Duration;

use aws_credential_types::Credentials;
use serde_json::{json, Value};

use super::{eventually, unique, Account, FaultProxy, Moto, TestServer};

/// The one account of an enforced moto.
pub const ENFORCED_ACCOUNT: &str = "123456789012";

const ALLOW_EVERYTHING: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const ALLOW_ASSUME_ROLE: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#;

/// moto before enforcement: an admin and the service's user with their keys, an organization.
pub struct EnforcedSetup {
    moto: Moto,
    /// Seeds the account; its key stops working once enforcement starts.
    pub seed: Account,
    admin_key: Credentials,
    service_key: Credentials,
    /// The integration's `options` (default `{}`).
    pub options: Value,
    /// Canned answers of the proxy (action, JSON body), set before the first sync.
    pub answers: Vec<(&'static str, Value)>,
}

/// After enforcement: every request must be signed by keys moto issued.
pub struct Enforced {
    pub moto: Moto,
    /// Between the server and moto: faults a call when a scenario needs it.
    pub proxy: FaultProxy,
    /// Acts with full rights (to edit the access role's policy, to inspect IAM).
    pub admin: Account,
    pub server: TestServer,
    pub integration: String,
    /// The permission policy of `GET /v1/integrations/{id}/setup`, as the access role has it.
    pub permission_policy: Value,
}

impl EnforcedSetup {
    pub async fn new() -> EnforcedSetup {
        let moto = Moto::start();
        let seed = Account::new(
            ENFORCED_ACCOUNT,
            moto.config(Credentials::new("AKIAIOSFODNN7EXAMPLE", "seed", None, None, "tests"), "us-east-1").await,
        );
        let admin_key = user_with_key(&seed, "admin", Some(ALLOW_EVERYTHING)).await;
        let service_key = user_with_key(&seed, "jit-iam-service", Some(ALLOW_ASSUME_ROLE)).await;
        seed.organizations.create_organization().send().await.unwrap();
        EnforcedSetup { moto, seed, admin_key, service_key, options: json!({}), answers: Vec::new() }
    }

    /// Creates user `name` with `policy` inline (none when None) and an access
    /// key, which keeps working under enforcement.
    pub async fn user_with_key(&self, name: &str, policy: Option<&str>) -> Credentials {
        user_with_key(&self.seed, name, policy).await
    }

    /// Starts the server with the service's key, connects the account as the
    /// root of an organization, creates `jit-iam-access` with the setup's trust
    /// policy, switches enforcement on and gives the role the setup's permission policy.
    pub async fn enforce(self) -> Enforced {
        let EnforcedSetup { moto, seed, admin_key, service_key, options, answers } = self;
        let proxy = FaultProxy::start(&moto.endpoint, Duration::from_secs(1)).await;
        for (action, body) in answers {
            proxy.answer(action, None, body);
        }
        let server = TestServer::builder(&moto)
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .env("AWS_ACCESS_KEY_ID", service_key.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", service_key.secret_access_key())
            .env("JIT_IAM_MIN_GRANT", "1s")
            .start()
            .await;
        // An organization (without members): the root's policy is the largest one.
        let integration = server
            .create_integration(json!({
                "name": "enforced", "connection": "organization",
                "root_account": {"account_id": ENFORCED_ACCOUNT, "access_role_arn": seed.role_arn("jit-iam-access"),
                                 "external_id": "enforced-external-id", "region": "us-east-1"},
                "options": options
            }))
            .await;
        let integration = integration["id"].as_str().unwrap().to_string();
        server.wait_for_sync(&integration).await;
        let (_, setup) = server.get(&format!("/v1/integrations/{integration}/setup")).await;
        let permission_policy = setup["root_account"]["permission_policy"].clone();
        seed.iam
            .create_role()
            .role_name("jit-iam-access")
            .assume_role_policy_document(setup["root_account"]["trust_policy"].to_string())
            .send()
            .await
            .unwrap();
        moto.enforce_iam().await;
        let admin = Account::new(ENFORCED_ACCOUNT, moto.config(admin_key, "us-east-1").await);
        let enforced = Enforced { moto, proxy, admin, server, integration, permission_policy };
        enforced.set_role_policy(&enforced.permission_policy).await;
        enforced
    }
}

async fn user_with_key(seed: &Account, name: &str, policy: Option<&str>) -> Credentials {
    seed.create_user(name, &[]).await;
    if let Some(policy) = policy {
        seed.iam.put_user_policy().user_name(name).policy_name("p").policy_document(policy).send().await.unwrap();
    }
    let key = seed.iam.create_access_key().user_name(name).send().await.unwrap().access_key.unwrap();
    Credentials::new(key.access_key_id, key.secret_access_key, None, None, "tests")
}

impl Enforced {
    /// Replaces the access role's permission policy. moto evaluates IAM calls
    /// against `Resource: "*"`, where a statement naming ARNs never matches:
    /// the actions go in as they are, their resources widened to `*`. (The
    /// resources are checked on the documents themselves: the unit tests of
    /// `aws::permissions` and `integrations::setup_documents_work…`.)
    pub async fn set_role_policy(&self, policy: &Value) {
        let mut widened = policy.clone();
        for statement in widened["Statement"].as_array_mut().unwrap() {
            statement["Resource"] = json!("*");
        }
        self.admin
            .iam
            .put_role_policy()
            .role_name("jit-iam-access")
            .policy_name("jit-iam")
            .policy_document(widened.to_string())
            .send()
            .await
            .unwrap();
    }

    /// Clients acting with `credentials` (keys moto issued).
    pub async fn acting_as(&self, credentials: Credentials) -> Account {
        Account::new(ENFORCED_ACCOUNT, self.moto.config(credentials, "us-east-1").await)
    }

    /// The first resource of `resource_type` in the inventory.
    pub async fn resource(&self, resource_type: &str) -> Value {
        self.server.browse_all(&format!("integration_id={}&type={resource_type}", self.integration)).await[0].clone()
    }

    /// Submits a grant of `level` on the resource with `resource_arn` to
    /// `principal` (`{"type", "name"}`), waiting up to 20 s for it to apply;
    /// returns the grant as the API answers.
    pub async fn grant_arn(&self, principal: Value, resource_arn: &str, level: &str, seconds: i64) -> Value {
        self.submit(json!({
            "integration_id": self.integration, "resource_arn": resource_arn, "access_level": level,
            "principal": principal, "duration_seconds": seconds, "request_id": unique("enforced"),
            "approved_by": "approver"
        }))
        .await
    }

    /// Like [`Self::grant_arn`], the resource given by its inventory id.
    pub async fn grant_id(&self, principal: Value, resource_id: &Value, level: &str, seconds: i64) -> Value {
        self.submit(json!({
            "integration_id": self.integration, "resource_id": resource_id, "access_level": level,
            "principal": principal, "duration_seconds": seconds, "request_id": unique("enforced"),
            "approved_by": "approver"
        }))
        .await
    }

    async fn submit(&self, body: Value) -> Value {
        let (status, grant) = self.server.post("/v1/grants?wait=20", body).await;
        assert_eq!(status, 202, "{grant}");
        grant
    }

    /// Polls the grant until `check` holds; returns it.
    pub async fn wait(&self, id: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(Duration::from_secs(30), &format!("grant {id}"), || async {
            let (status, grant) = self.server.get(&format!("/v1/grants/{id}")).await;
            assert!(status.is_success(), "{grant}");
            check(&grant).then_some(grant)
        })
        .await
    }

    /// Asks for the grant's revocation (without waiting for it).
    pub async fn revoke(&self, id: &str) {
        let (status, grant) = self.server.post(&format!("/v1/grants/{id}/revoke"), json!({})).await;
        assert_eq!(status, 202, "{grant}");
    }
}
