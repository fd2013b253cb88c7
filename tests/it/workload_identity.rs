//! jit-iam's own identity as EKS gives it to a pod, with no access keys in its
//! environment: EKS Pod Identity (a container credentials endpoint, as the EKS
//! Pod Identity Agent serves it) and IRSA (a web identity token). Either way the
//! setup documents name the pod's role and the connection check passes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::support::{random_account_id, unique, Account, Moto, ServerBuilder, TestServer};

/// moto's default account, where the pod's role lives (the cluster's account).
const CLUSTER_ACCOUNT: &str = "123456789012";
/// How long the served credentials say they last: short, so that the SDK
/// (which refreshes 5 to 10 s before expiry) fetches new ones within the test.
const LIFETIME: Duration = Duration::from_secs(16);

/// One answer of the agent.
#[derive(Clone, Debug)]
struct Served {
    access_key_id: String,
    expires: DateTime<Utc>,
    /// The token the request carried.
    token: String,
}

#[derive(Default)]
struct AgentState {
    tokens: Vec<String>,
    served: Vec<Served>,
    refused: usize,
}

/// The EKS Pod Identity Agent's part, on loopback: checks the Authorization
/// header against the tokens it accepts and answers with fresh credentials of
/// the pod's role (assumed in moto by the agent's own user).
struct PodIdentityAgent {
    url: String,
    state: Arc<Mutex<AgentState>>,
}

impl PodIdentityAgent {
    async fn start(sts: aws_sdk_sts::Client, role_arn: String, token: &str) -> Self {
        let state = Arc::new(Mutex::new(AgentState { tokens: vec![token.into()], ..Default::default() }));
        let answer = move |State(state): State<Arc<Mutex<AgentState>>>, headers: HeaderMap| {
            let (sts, role_arn) = (sts.clone(), role_arn.clone());
            async move {
                let token = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                if !state.lock().unwrap().tokens.contains(&token) {
                    state.lock().unwrap().refused += 1;
                    return Err(StatusCode::UNAUTHORIZED);
                }
                let assumed = sts
                    .assume_role()
                    .role_arn(&role_arn)
                    .role_session_name(unique("eks-pod"))
                    .send()
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                let keys = assumed.credentials.unwrap();
                let expires = Utc::now() + LIFETIME;
                state.lock().unwrap().served.push(Served { access_key_id: keys.access_key_id.clone(), expires, token });
                Ok(Json(json!({
                    "AccessKeyId": keys.access_key_id,
                    "SecretAccessKey": keys.secret_access_key,
                    "Token": keys.session_token,
                    "AccountId": CLUSTER_ACCOUNT,
                    "Expiration": expires.to_rfc3339_opts(SecondsFormat::Secs, true),
                })))
            }
        };
        let router = Router::new().route("/v1/credentials", get(answer)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/credentials", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        PodIdentityAgent { url, state }
    }

    fn served(&self) -> Vec<Served> {
        self.state.lock().unwrap().served.clone()
    }
}

/// A server with no AWS keys of its own: only what `identity` sets.
fn without_keys(builder: ServerBuilder) -> ServerBuilder {
    builder.without("AWS_ACCESS_KEY_ID").without("AWS_SECRET_ACCESS_KEY")
}

/// Creates the customer's role from the setup documents, as the customer would.
async fn create_access_role(customer: &Account, setup: &Value) {
    customer
        .iam
        .create_role()
        .role_name("jit-iam-access")
        .assume_role_policy_document(setup["root_account"]["trust_policy"].to_string())
        .send()
        .await
        .expect("CreateRole accepts the trust policy");
    customer
        .iam
        .put_role_policy()
        .role_name("jit-iam-access")
        .policy_name("jit-iam")
        .policy_document(setup["root_account"]["permission_policy"].to_string())
        .send()
        .await
        .unwrap();
}

async fn check_passes(server: &TestServer, integration: &str) {
    let (status, check) = server.post(&format!("/v1/integrations/{integration}/check"), json!({})).await;
    assert_eq!(status, 200, "{check}");
    assert_eq!(check["ok"], true, "{check}\n{}", server.problems());
}

fn integration_body(customer: &str) -> Value {
    json!({
        "name": unique("eks"),
        "connection": "single_account",
        "root_account": {
            "account_id": customer,
            "access_role_arn": format!("arn:aws:iam::{customer}:role/jit-iam-access"),
            "external_id": "external-id-123",
            "region": "us-east-1"
        },
        "options": {"regions": ["us-east-1"]}
    })
}

/// EKS Pod Identity: jit-iam runs with only the container credentials URI and
/// token file, as the Pod Identity webhook sets them; moto enforces IAM, so
/// every call is signed with keys the agent served. Credentials are fetched
/// again before they expire, and the token file is read at each fetch (the
/// kubelet rotates it).
#[tokio::test]
async fn eks_pod_identity_gives_jit_iam_its_role_and_refreshes_it() {
    let moto = Moto::start();
    let admin = Account::new(
        CLUSTER_ACCOUNT,
        moto.config(Credentials::new("AKIAIOSFODNN7EXAMPLE", "admin", None, None, "tests"), "us-east-1").await,
    );
    // The agent's own identity, allowed to assume the pod's role.
    admin.iam.create_user().user_name("eks-pod-identity-agent").send().await.unwrap();
    let allow = |actions: &str| {
        format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{actions},"Resource":"*"}}]}}"#)
    };
    admin
        .iam
        .put_user_policy()
        .user_name("eks-pod-identity-agent")
        .policy_name("assume")
        .policy_document(allow(r#""sts:AssumeRole""#))
        .send()
        .await
        .unwrap();
    let key = admin.iam.create_access_key().user_name("eks-pod-identity-agent").send().await.unwrap();
    let key = key.access_key.unwrap();
    let pod_role = admin.create_role("jit-iam-pod", &[]).await;
    admin
        .iam
        .put_role_policy()
        .role_name("jit-iam-pod")
        .policy_name("jit-iam")
        .policy_document(allow(r#"["sts:AssumeRole","sts:GetCallerIdentity"]"#))
        .send()
        .await
        .unwrap();
    let agent_config = moto
        .config(Credentials::new(&key.access_key_id, &key.secret_access_key, None, None, "agent"), "us-east-1")
        .await;
    let token_file = std::env::temp_dir().join(unique("eks-pod-identity-token"));
    std::fs::write(&token_file, "first-token").unwrap();
    let agent = PodIdentityAgent::start(aws_sdk_sts::Client::new(&agent_config), pod_role.clone(), "first-token").await;

    let server = without_keys(TestServer::builder(&moto))
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &agent.url)
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file.to_str().unwrap())
        .start()
        .await;
    let customer_id = random_account_id();
    let customer = moto.account(&customer_id).await;
    let integration = server.create_integration(integration_body(&customer_id)).await;
    let id = integration["id"].as_str().unwrap();

    // The trust policy names the pod's role (not its session, which a trust policy cannot name).
    let (status, setup) = server.get(&format!("/v1/integrations/{id}/setup")).await;
    assert_eq!(status, 200, "{setup}");
    assert_eq!(setup["service_principal_arn"], pod_role);
    assert_eq!(setup["root_account"]["trust_policy"]["Statement"][0]["Principal"]["AWS"], pod_role);
    create_access_role(&customer, &setup).await;

    moto.enforce_iam().await;
    check_passes(&server, id).await;
    let first = agent.served();
    assert!(!first.is_empty(), "jit-iam never asked the agent");

    // The kubelet rotates the token (the agent takes both meanwhile).
    agent.state.lock().unwrap().tokens.push("second-token".into());
    std::fs::write(&token_file, "second-token").unwrap();
    // Past the point where the SDK refreshes (5 s before expiry at the latest), still before expiry.
    let refresh_due = first.last().unwrap().expires - chrono::Duration::seconds(3);
    tokio::time::sleep((refresh_due - Utc::now()).to_std().unwrap_or_default()).await;
    check_passes(&server, id).await;

    let served = agent.served();
    assert!(served.len() > first.len(), "the credentials were not refreshed: {served:?}");
    let keys: std::collections::HashSet<_> = served.iter().map(|s| &s.access_key_id).collect();
    assert_eq!(keys.len(), served.len(), "each fetch got fresh keys");
    assert_eq!(served.last().unwrap().token, "second-token", "the token file is read at each fetch: {served:?}");
    assert_eq!(agent.state.lock().unwrap().refused, 0, "a fetch came without a token the agent gave");
    std::fs::remove_file(token_file).unwrap();
}

/// IRSA: jit-iam runs with only a web identity token file and the role to
/// assume with it, as the EKS Pod Identity webhook for IRSA sets them. (moto
/// cannot enforce IAM here: sts:AssumeRoleWithWebIdentity is unsigned; the
/// caller identity moto reports shows whose keys jit-iam signed with.)
#[tokio::test]
async fn irsa_gives_jit_iam_its_role() {
    let moto = Moto::shared();
    let cluster_account = random_account_id();
    let pod_role = format!("arn:aws:iam::{cluster_account}:role/jit-iam-pod");
    let token_file = std::env::temp_dir().join(unique("irsa-token"));
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aml0LWlhbTpqaXQtaWFtIn0.c2ln",
    )
    .unwrap();
    let server = without_keys(TestServer::builder(moto))
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap())
        .env("AWS_ROLE_ARN", &pod_role)
        .env("AWS_ROLE_SESSION_NAME", "jit-iam")
        .start()
        .await;
    let customer_id = random_account_id();
    let customer = moto.account(&customer_id).await;
    let integration = server.create_integration(integration_body(&customer_id)).await;
    let id = integration["id"].as_str().unwrap();
    let (status, setup) = server.get(&format!("/v1/integrations/{id}/setup")).await;
    assert_eq!(status, 200, "{setup}");
    assert_eq!(setup["service_principal_arn"], pod_role, "jit-iam's identity is the role the token was exchanged for");
    assert_eq!(setup["root_account"]["trust_policy"]["Statement"][0]["Principal"]["AWS"], pod_role);
    create_access_role(&customer, &setup).await;
    check_passes(&server, id).await;
    std::fs::remove_file(token_file).unwrap();
}
