//! What each access level allows: the one place the action lists live.
//!
//! EC2 instances, S3 buckets and IAM roles are granted through a policy made
//! for the grant, whose statements name that one resource; IAM policies and
//! groups are granted by attaching the policy or adding the user to the group
//! (`crate::grants` carries these out).

use super::grant::{Grantee, PrincipalType};
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
pub const EC2_ADMIN: &[&str] = &["ec2:*"];

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
pub const S3_ADMIN: &[&str] = &["s3:*"];

pub const IAM_ROLE_ASSUME: &[&str] = &["sts:AssumeRole"];

/// The policy of a generated-policy grant for `grantee`; None for the other
/// mechanisms. `arn` is the resource's ARN; for EC2 it carries region and account.
pub fn policy_document(
    resource_type: ResourceType,
    level: AccessLevel,
    arn: &str,
    grantee: &Grantee,
) -> Option<PolicyDocument> {
    let resource = || vec![arn.to_string()];
    let statements = match (resource_type, level) {
        (ResourceType::S3Bucket, AccessLevel::Read) => vec![
            Statement::allow("Bucket", S3_READ_BUCKET.iter().copied(), resource()),
            Statement::allow("Objects", S3_READ_OBJECTS.iter().copied(), vec![format!("{arn}/*")]),
        ],
        (ResourceType::S3Bucket, AccessLevel::Write) => vec![
            Statement::allow("Bucket", S3_WRITE_BUCKET.iter().copied(), resource()),
            Statement::allow("Objects", S3_WRITE_OBJECTS.iter().copied(), vec![format!("{arn}/*")]),
        ],
        (ResourceType::S3Bucket, AccessLevel::Admin) => vec![Statement::allow(
            "BucketAndObjects",
            S3_ADMIN.iter().copied(),
            vec![arn.to_string(), format!("{arn}/*")],
        )],
        (ResourceType::Ec2Instance, AccessLevel::Connect) => {
            let (partition, region, account) = ec2_location(arn)?;
            vec![
                Statement::allow(
                    "Connect",
                    EC2_CONNECT.iter().copied(),
                    vec![
                        arn.to_string(),
                        format!("arn:{partition}:ssm:{region}:{account}:document/SSM-SessionManagerRunShell"),
                    ],
                ),
                own_sessions(partition, account, grantee),
                describe(),
            ]
        }
        (ResourceType::Ec2Instance, AccessLevel::Operate) => {
            vec![Statement::allow("Operate", EC2_OPERATE.iter().copied(), resource()), describe()]
        }
        (ResourceType::Ec2Instance, AccessLevel::Admin) => {
            vec![Statement::allow("Admin", EC2_ADMIN.iter().copied(), resource()), describe()]
        }
        (ResourceType::IamRole, AccessLevel::Assume) => {
            vec![Statement::allow("AssumeRole", IAM_ROLE_ASSUME.iter().copied(), resource())]
        }
        _ => return None,
    };
    Some(PolicyDocument::new(statements))
}

/// Ending or resuming only the sessions the grantee started. A user's session
/// ids start with its name (written out: the policy is that user's alone). A
/// role's sessions are named by whoever assumed it, so they are matched by the
/// tag Session Manager gives each session, `<role id>:<session name>`, which
/// is the `aws:userid` of the session that started it.
fn own_sessions(partition: &str, account: &str, grantee: &Grantee) -> Statement {
    match grantee.principal_type {
        PrincipalType::IamUser => Statement::allow(
            "OwnSessions",
            EC2_OWN_SESSIONS.iter().copied(),
            vec![format!("arn:{partition}:ssm:*:{account}:session/{}-*", grantee.name)],
        ),
        PrincipalType::IamRole => Statement {
            condition: Some(serde_json::json!({
                "StringLike": {"ssm:resourceTag/aws:ssmmessages:session-id": ["${aws:userid}"]}
            })),
            ..Statement::allow(
                "OwnSessions",
                EC2_OWN_SESSIONS.iter().copied(),
                vec![format!("arn:{partition}:ssm:*:{account}:session/*")],
            )
        },
    }
}

fn describe() -> Statement {
    Statement::allow("Describe", EC2_DESCRIBE.iter().copied(), vec!["*".to_string()])
}

/// `arn:<partition>:ec2:<region>:<account>:instance/<id>` -> (partition, region, account).
fn ec2_location(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(partition), Some("ec2"), Some(region), Some(account)) => Some((partition, region, account)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTANCE: &str = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc";
    const BUCKET: &str = "arn:aws:s3:::data";

    fn alice() -> Grantee {
        Grantee { principal_type: PrincipalType::IamUser, name: "alice".into(), account_id: "123456789012".into() }
    }

    fn actions_on(doc: &PolicyDocument, resource: &str) -> Vec<String> {
        doc.statement
            .iter()
            .filter(|s| s.resource.as_ref().unwrap().iter().any(|r| r == resource))
            .flat_map(|s| s.action.clone())
            .collect()
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
                assert!(policy_document(t, *level, arn, &alice()).is_some(), "{t:?} {level:?}");
            }
        }
        assert!(policy_document(ResourceType::IamPolicy, AccessLevel::Attach, "arn", &alice()).is_none());
    }

    #[test]
    fn write_actions_only_ever_name_the_resource() {
        for level in [AccessLevel::Connect, AccessLevel::Operate, AccessLevel::Admin] {
            let doc = policy_document(ResourceType::Ec2Instance, level, INSTANCE, &alice()).unwrap();
            for statement in &doc.statement {
                if statement.resource.as_ref().unwrap().contains(&"*".to_string()) {
                    assert!(statement.action.iter().all(|a| EC2_DESCRIBE.contains(&a.as_str())), "{statement:?}");
                }
            }
        }
        let read = policy_document(ResourceType::S3Bucket, AccessLevel::Read, BUCKET, &alice()).unwrap();
        assert_eq!(actions_on(&read, "arn:aws:s3:::data/*"), ["s3:GetObject", "s3:GetObjectVersion"]);
        let operate = policy_document(ResourceType::Ec2Instance, AccessLevel::Operate, INSTANCE, &alice()).unwrap();
        assert_eq!(actions_on(&operate, INSTANCE), EC2_OPERATE);
        let connect = policy_document(ResourceType::Ec2Instance, AccessLevel::Connect, INSTANCE, &alice()).unwrap();
        assert!(connect.to_json().contains("arn:aws:ssm:eu-west-1:123456789012:document/SSM-SessionManagerRunShell"));
        assert!(connect.to_json().contains("arn:aws:ssm:*:123456789012:session/alice-*"));
    }

    #[test]
    fn a_role_ends_only_the_sessions_its_own_sessions_started() {
        let role = Grantee { principal_type: PrincipalType::IamRole, ..alice() };
        let connect = policy_document(ResourceType::Ec2Instance, AccessLevel::Connect, INSTANCE, &role).unwrap();
        let own = connect.statement.iter().find(|s| s.sid.as_deref() == Some("OwnSessions")).unwrap();
        assert_eq!(own.resource.as_deref(), Some(&["arn:aws:ssm:*:123456789012:session/*".to_string()][..]));
        assert_eq!(
            own.condition,
            Some(serde_json::json!({"StringLike": {"ssm:resourceTag/aws:ssmmessages:session-id": ["${aws:userid}"]}}))
        );
    }
}
