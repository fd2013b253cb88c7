#!/bin/sh
# Seeds the sandbox AWS (moto) of docker-compose.yml with a sample account
# (123456789012, moto's default) that jit-iam can inventory and grant from.
set -eu
until aws sts get-caller-identity >/dev/null 2>&1; do sleep 1; done

aws iam create-user --user-name alice
aws iam create-user --user-name bob
aws iam create-group --group-name on-call
aws iam create-role --role-name deployer --tags Key=jit,Value=enabled \
    --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}'
aws iam create-policy --policy-name read-only-billing --tags Key=jit,Value=enabled \
    --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"aws-portal:ViewBilling","Resource":"*"}]}'
aws s3api create-bucket --bucket sandbox-reports
aws s3api put-bucket-tagging --bucket sandbox-reports --tagging 'TagSet=[{Key=jit,Value=enabled}]'
aws ec2 run-instances --image-id ami-12c6146b --count 1 \
    --tag-specifications 'ResourceType=instance,Tags=[{Key=Name,Value=web-1},{Key=jit,Value=enabled}]'
echo "sandbox seeded"
