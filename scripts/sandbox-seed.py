"""Seeds a sandbox AWS (moto) with a sample account (123456789012, moto's
default) that jit-iam can inventory and grant from: two users, a group, a
role, a policy, a bucket and an instance, the last four tagged jit=enabled.

Used by docker-compose.yml and scripts/sandbox; reads AWS_ENDPOINT_URL.
"""

import json
import time

import boto3

session = boto3.session.Session(aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name="us-east-1")
sts = session.client("sts")
for _ in range(60):
    try:
        sts.get_caller_identity()
        break
    except Exception:  # moto not up yet
        time.sleep(1)

iam = session.client("iam")
tag = [{"Key": "jit", "Value": "enabled"}]
iam.create_user(UserName="alice")
iam.create_user(UserName="bob")
iam.create_group(GroupName="on-call")
trust = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}],
}
iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=json.dumps(trust), Tags=tag)
billing = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "aws-portal:ViewBilling", "Resource": "*"}]}
iam.create_policy(PolicyName="read-only-billing", PolicyDocument=json.dumps(billing), Tags=tag)
s3 = session.client("s3")
s3.create_bucket(Bucket="sandbox-reports")
s3.put_bucket_tagging(Bucket="sandbox-reports", Tagging={"TagSet": tag})
session.client("ec2").run_instances(
    ImageId="ami-12c6146b",
    MinCount=1,
    MaxCount=1,
    TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web-1"}] + tag}],
)
print("sandbox seeded")
