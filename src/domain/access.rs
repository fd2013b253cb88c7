//! What each access level allows: the one place the action lists live.
//!
//! EC2 instances, S3 buckets and IAM roles are granted through a policy made
//! for the grant, whose statements name that one resource; IAM policies and
//! groups are granted by attaching the policy or adding the user to the group
//! (`crate::grants` carries these out).
//!
//! No level lets the grantee create access that outlives the grant: `admin`
//! is every action on the resource except those that give someone standing
//! access, run code later, or route data elsewhere (`*_ADMIN_EXCLUDED`).

use serde_json::json;

use super::policy::{PolicyDocument, Statement};
use super::resource::{AccessLevel, ResourceType};

/// Read-only EC2 and SSM calls that accept only `Resource: "*"`: every EC2 level gets them.
pub const EC2_DESCRIBE: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ssm:DescribeInstanceInformation",
    "ssm:DescribeSessions",
    "ssm:GetConnectionStatus",
];
pub const EC2_CONNECT: &[&str] = &["ssm:StartSession", "ec2-instance-connect:SendSSHPublicKey"];
/// Ending or resuming one's own Session Manager sessions.
pub const EC2_OWN_SESSIONS: &[&str] = &["ssm:TerminateSession", "ssm:ResumeSession"];
pub const EC2_OPERATE: &[&str] = &["ec2:StartInstances", "ec2:StopInstances", "ec2:RebootInstances"];
/// What EC2 `admin` leaves out of "every action on the instance". Actions that
/// also need another resource (a volume, an image, a key pair, a network
/// interface, an SSM document) are not granted anyway: the statement names
/// only the instance.
pub const EC2_ADMIN_EXCLUDED: &[&str] = &[
    // User data (run as root, with the instance's role, at the next start),
    // security groups, instance type; a new root volume does the same as user data.
    "ec2:ModifyInstanceAttribute",
    "ec2:CreateReplaceRootVolumeTask",
    // The role the instance acts as, and who on it may reach that role's credentials.
    "ec2:AssociateIamInstanceProfile",
    "ec2:ReplaceIamInstanceProfileAssociation",
    "ec2:ModifyInstanceMetadataOptions",
    // Tags move the instance into or out of tag-based policies and jit-iam's offers.
    "ec2:CreateTags",
    "ec2:DeleteTags",
    // A standing credential, and a copy of the disks to a bucket of one's choosing.
    "ec2:GetPasswordData",
    "ec2:CreateInstanceExportTask",
    // A shell on the instance is `connect`'s, not the EC2 API's (these accept the instance's ARN).
    "ssm:*",
    "ec2-instance-connect:*",
];

pub const S3_READ_BUCKET: &[&str] = &["s3:ListBucket", "s3:GetBucketLocation"];
pub const S3_READ_OBJECTS: &[&str] = &["s3:GetObject", "s3:GetObjectVersion"];
pub const S3_WRITE_BUCKET: &[&str] = &["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"];
pub const S3_WRITE_OBJECTS: &[&str] = &[
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
];
/// What S3 `admin` leaves out of "every action on the bucket and its objects".
/// (S3 authorizes each Delete* of these settings with its Put* action.)
pub const S3_ADMIN_EXCLUDED: &[&str] = &[
    // Who else may reach the bucket and its objects.
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPublicAccessBlock",
    "s3:CreateAccessPoint",
    "s3:DeleteAccessPoint",
    "s3:PutAccessPointPolicy",
    "s3:DeleteAccessPointPolicy",
    "s3:PutAccessPointPublicAccessBlock",
    "s3:CreateAccessPointForObjectLambda",
    "s3:PutAccessPointPolicyForObjectLambda",
    "s3:CreateMultiRegionAccessPoint",
    "s3:PutMultiRegionAccessPointPolicy",
    // Where its data and events go, and who may read them from a browser or website.
    "s3:PutReplicationConfiguration",
    "s3:PutBucketLogging",
    "s3:PutInventoryConfiguration",
    "s3:PutAnalyticsConfiguration",
    "s3:PutBucketNotification",
    "s3:PutBucketCORS",
    "s3:PutBucketWebsite",
    "s3:PutEncryptionConfiguration",
    // What keeps acting on the objects, or holding them, after the grant.
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    // Tags move the bucket or objects into or out of tag-based policies and jit-iam's offers.
    "s3:PutBucketTagging",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
    "s3:TagResource",
    "s3:UntagResource",
    // Frees the name (global) for anyone to create, and receive what is still sent to it.
    "s3:DeleteBucket",
];

pub const IAM_ROLE_ASSUME: &[&str] = &["sts:AssumeRole"];

/// The policy of a generated-policy grant; None for the other mechanisms.
/// `arn` is the resource's ARN (for EC2 it carries region and account) and
/// `account_id` its account, which a bucket's ARN does not carry.
pub fn policy_document(
    resource_type: ResourceType,
    level: AccessLevel,
    arn: &str,
    account_id: &str,
    session_name: &str,
) -> Option<PolicyDocument> {
    let resource = || vec![arn.to_string()];
    let objects = || vec![format!("{arn}/*")];
    let statements = match (resource_type, level) {
        (ResourceType::S3Bucket, AccessLevel::Read) => vec![
            Statement::allow("Bucket", S3_READ_BUCKET.iter().copied(), resource()),
            Statement::allow("Objects", S3_READ_OBJECTS.iter().copied(), objects()),
        ],
        (ResourceType::S3Bucket, AccessLevel::Write) => vec![
            Statement::allow("Bucket", S3_WRITE_BUCKET.iter().copied(), resource()),
            Statement::allow("Objects", S3_WRITE_OBJECTS.iter().copied(), objects()),
        ],
        (ResourceType::S3Bucket, AccessLevel::Admin) => vec![Statement::allow_all_but(
            "BucketAndObjects",
            S3_ADMIN_EXCLUDED.iter().copied(),
            [resource(), objects()].concat(),
        )],
        (ResourceType::Ec2Instance, AccessLevel::Connect) => {
            let (partition, region) = ec2_location(arn)?;
            vec![
                Statement::allow(
                    "Connect",
                    EC2_CONNECT.iter().copied(),
                    vec![
                        arn.to_string(),
                        format!("arn:{partition}:ssm:{region}:{account_id}:document/SSM-SessionManagerRunShell"),
                    ],
                ),
                own_sessions(partition, account_id),
                describe(),
            ]
        }
        (ResourceType::Ec2Instance, AccessLevel::Operate) => {
            vec![Statement::allow("Operate", EC2_OPERATE.iter().copied(), resource()), describe()]
        }
        (ResourceType::Ec2Instance, AccessLevel::Admin) => {
            vec![Statement::allow_all_but("Admin", EC2_ADMIN_EXCLUDED.iter().copied(), resource()), describe()]
        }
        // Only sessions named for the grant: its end denies exactly those (`grants::sessions`).
        (ResourceType::IamRole, AccessLevel::Assume) => {
            vec![Statement::allow("AssumeRole", IAM_ROLE_ASSUME.iter().copied(), resource())
                .when(serde_json::json!({"StringEquals": {"sts:RoleSessionName": session_name}}))]
        }
        _ => return None,
    };
    let statements = match resource_type {
        // A bucket deleted and its name taken by another account is not reached.
        ResourceType::S3Bucket => statements
            .into_iter()
            .map(|s| s.when(json!({"StringEquals": {"s3:ResourceAccount": account_id}})))
            .collect(),
        _ => statements,
    };
    Some(PolicyDocument::new(statements))
}

/// Ending or resuming only the sessions the grantee started, user or role:
/// Session Manager tags each session with the `aws:userid` of whoever started
/// it (a user's unique id; `<role id>:<session name>` for a role's session).
/// A session id only starts with the user's name, which other users' names
/// can start with too (`bob` and `bob-admin`).
fn own_sessions(partition: &str, account: &str) -> Statement {
    Statement::allow(
        "OwnSessions",
        EC2_OWN_SESSIONS.iter().copied(),
        vec![format!("arn:{partition}:ssm:*:{account}:session/*")],
    )
    .when(json!({"StringLike": {"ssm:resourceTag/aws:ssmmessages:session-id": ["${aws:userid}"]}}))
}

fn describe() -> Statement {
    Statement::allow("Describe", EC2_DESCRIBE.iter().copied(), vec!["*".to_string()])
}

/// `arn:<partition>:ec2:<region>:<account>:instance/<id>` -> (partition, region).
fn ec2_location(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(partition), Some("ec2"), Some(region)) => Some((partition, region)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::MAX_MANAGED_POLICY_CHARS;

    const SESSION: &str = "jit-iam-0193";

    const ACCOUNT: &str = "123456789012";
    const INSTANCE: &str = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc";
    const BUCKET: &str = "arn:aws:s3:::data";

    fn document(t: ResourceType, level: AccessLevel, arn: &str) -> PolicyDocument {
        policy_document(t, level, arn, ACCOUNT, SESSION).unwrap()
    }

    fn actions_on(doc: &PolicyDocument, resource: &str) -> Vec<String> {
        doc.statement
            .iter()
            .filter(|s| s.resource.as_ref().unwrap().iter().any(|r| r == resource))
            .flat_map(|s| s.action.clone())
            .collect()
    }

    fn statement<'a>(doc: &'a PolicyDocument, sid: &str) -> &'a Statement {
        doc.statement.iter().find(|s| s.sid.as_deref() == Some(sid)).unwrap()
    }

    #[test]
    fn an_assume_grant_allows_only_its_own_session_name() {
        let arn = "arn:aws:iam::123456789012:role/deploy";
        let doc = policy_document(ResourceType::IamRole, AccessLevel::Assume, arn, ACCOUNT, SESSION).unwrap();
        assert_eq!(
            serde_json::to_value(&doc.statement).unwrap(),
            serde_json::json!([{
                "Sid": "AssumeRole", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": [arn],
                "Condition": {"StringEquals": {"sts:RoleSessionName": SESSION}}
            }])
        );
    }

    #[test]
    fn every_offered_level_of_a_policy_type_has_a_document() {
        for t in [ResourceType::Ec2Instance, ResourceType::S3Bucket, ResourceType::IamRole] {
            let arn = match t {
                ResourceType::Ec2Instance => INSTANCE,
                ResourceType::S3Bucket => BUCKET,
                _ => "arn:aws:iam::123456789012:role/x",
            };
            for level in t.access_levels() {
                assert!(policy_document(t, *level, arn, ACCOUNT, SESSION).is_some(), "{t:?} {level:?}");
            }
        }
        assert!(policy_document(ResourceType::IamPolicy, AccessLevel::Attach, "arn", ACCOUNT, SESSION).is_none());
    }

    #[test]
    fn write_actions_only_ever_name_the_resource() {
        for level in [AccessLevel::Connect, AccessLevel::Operate, AccessLevel::Admin] {
            let doc = document(ResourceType::Ec2Instance, level, INSTANCE);
            for statement in &doc.statement {
                if statement.resource.as_ref().unwrap().contains(&"*".to_string()) {
                    assert!(statement.not_action.is_none(), "{statement:?}");
                    assert!(statement.action.iter().all(|a| EC2_DESCRIBE.contains(&a.as_str())), "{statement:?}");
                }
            }
        }
        let read = document(ResourceType::S3Bucket, AccessLevel::Read, BUCKET);
        assert_eq!(actions_on(&read, "arn:aws:s3:::data/*"), ["s3:GetObject", "s3:GetObjectVersion"]);
        let operate = document(ResourceType::Ec2Instance, AccessLevel::Operate, INSTANCE);
        assert_eq!(actions_on(&operate, INSTANCE), EC2_OPERATE);
        let connect = document(ResourceType::Ec2Instance, AccessLevel::Connect, INSTANCE);
        assert!(connect.to_json().contains("arn:aws:ssm:eu-west-1:123456789012:document/SSM-SessionManagerRunShell"));
    }

    /// The user `bob` ends neither `bob-admin`'s sessions nor anyone else's:
    /// no session id prefix, the one rule of users and roles alike.
    #[test]
    fn a_grantee_ends_only_the_sessions_it_started() {
        let connect = document(ResourceType::Ec2Instance, AccessLevel::Connect, INSTANCE);
        let own = statement(&connect, "OwnSessions");
        assert_eq!(own.action, EC2_OWN_SESSIONS);
        assert_eq!(own.resource.as_deref(), Some(&["arn:aws:ssm:*:123456789012:session/*".to_string()][..]));
        assert_eq!(
            own.condition,
            Some(json!({"StringLike": {"ssm:resourceTag/aws:ssmmessages:session-id": ["${aws:userid}"]}}))
        );
        assert_eq!(
            connect
                .statement
                .iter()
                .filter(|s| s.action.iter().any(|a| EC2_OWN_SESSIONS.contains(&a.as_str())))
                .count(),
            1
        );
    }

    /// `admin` is an Allow of everything on the resource but what outlives the
    /// grant (never a Deny: that would take away what the grantee has from elsewhere).
    #[test]
    fn admin_allows_all_but_what_outlives_the_grant() {
        let s3 = document(ResourceType::S3Bucket, AccessLevel::Admin, BUCKET);
        let [bucket] = &s3.statement[..] else { panic!("{s3:?}") };
        assert_eq!(bucket.effect, crate::domain::policy::Effect::Allow);
        assert!(bucket.action.is_empty());
        assert_eq!(bucket.not_action.as_deref().unwrap(), S3_ADMIN_EXCLUDED);
        assert_eq!(bucket.resource.as_deref().unwrap(), ["arn:aws:s3:::data", "arn:aws:s3:::data/*"]);
        for standing in
            ["s3:PutBucketPolicy", "s3:PutBucketAcl", "s3:PutObjectAcl", "s3:PutBucketTagging", "s3:DeleteBucket"]
        {
            assert!(S3_ADMIN_EXCLUDED.contains(&standing), "{standing}");
        }
        for write in S3_WRITE_BUCKET.iter().chain(S3_WRITE_OBJECTS) {
            assert!(!S3_ADMIN_EXCLUDED.contains(write), "admin does what write does: {write}");
        }

        let ec2 = document(ResourceType::Ec2Instance, AccessLevel::Admin, INSTANCE);
        let admin = statement(&ec2, "Admin");
        assert!(admin.action.is_empty());
        assert_eq!(admin.not_action.as_deref().unwrap(), EC2_ADMIN_EXCLUDED);
        assert_eq!(admin.resource.as_deref().unwrap(), [INSTANCE]);
        for standing in [
            "ec2:ModifyInstanceAttribute",
            "ec2:ModifyInstanceMetadataOptions",
            "ec2:CreateTags",
            "ec2:DeleteTags",
            "ec2:AssociateIamInstanceProfile",
            "ec2:ReplaceIamInstanceProfileAssociation",
        ] {
            assert!(EC2_ADMIN_EXCLUDED.contains(&standing), "{standing}");
        }
        assert!(EC2_OPERATE.iter().all(|a| !EC2_ADMIN_EXCLUDED.contains(a)), "admin does what operate does");

        let json: serde_json::Value = serde_json::from_str(&ec2.to_json()).unwrap();
        assert!(json["Statement"][0].get("Action").is_none(), "{json}");
        assert_eq!(json["Statement"][0]["NotAction"][0], "ec2:ModifyInstanceAttribute");
    }

    #[test]
    fn every_s3_statement_is_pinned_to_the_buckets_account() {
        for level in ResourceType::S3Bucket.access_levels() {
            let doc = policy_document(ResourceType::S3Bucket, *level, BUCKET, "210987654321", SESSION).unwrap();
            for statement in &doc.statement {
                assert_eq!(
                    statement.condition,
                    Some(json!({"StringEquals": {"s3:ResourceAccount": "210987654321"}})),
                    "{level:?}"
                );
            }
        }
        let operate = document(ResourceType::Ec2Instance, AccessLevel::Operate, INSTANCE);
        assert!(operate.statement.iter().all(|s| s.condition.is_none()));
    }

    /// IAM refuses a managed policy over 6,144 characters: the longest ARNs fit.
    #[test]
    fn every_document_fits_iams_size_limit() {
        let bucket = format!("arn:aws:s3:::{}", "b".repeat(63));
        let instance = "arn:aws-us-gov:ec2:us-gov-west-1:123456789012:instance/i-0123456789abcdef0";
        for (t, arn) in [(ResourceType::S3Bucket, bucket.as_str()), (ResourceType::Ec2Instance, instance)] {
            for level in t.access_levels() {
                let size = document(t, *level, arn).quota_size();
                assert!(size <= MAX_MANAGED_POLICY_CHARS, "{t:?} {level:?}: {size}");
            }
        }
    }
}
