"""The portal's path through jit-iam, written against the Python client that
openapi-python-client generates from openapi/openapi.json, unedited.

Run by `tests/it/clients.rs` against the live service and moto:
    JIT_URL, JIT_TOKEN      the service and an admin token
    ACCOUNT_ID, ROLE_ARN    the AWS account to connect and its access role
    BUCKET_PREFIX           buckets tagged env=prod start with it (three of them)
The generated package `jit_iam_client` must be importable (PYTHONPATH).
"""

import os
import time
import uuid

from attrs import evolve

from jit_iam_client import AuthenticatedClient
from jit_iam_client.api.grants import (
    extend_grant,
    get_grant,
    list_grant_events,
    preview_grant,
    revoke_grant,
    submit_grant,
)
from jit_iam_client.api.integrations import create_integration
from jit_iam_client.api.inventory import get_sync, list_resources, list_syncs
from jit_iam_client.models import (
    AccessLevel,
    Connection,
    CreateIntegration,
    Effect,
    ErrorBody,
    ErrorCode,
    ExtendGrant,
    Grant,
    GrantStatus,
    IntegrationOptionsInput,
    PolicyDocument,
    Principal,
    PrincipalType,
    ResourceType,
    RevokeGrant,
    RootAccountInput,
    SubmitGrant,
    SyncStatus,
)
from jit_iam_client.types import UNSET


def ok(answer):
    """The typed body of a success; an ErrorBody is raised with its code and message."""
    if isinstance(answer, ErrorBody) or answer is None:
        raise AssertionError(f"refused: {answer}")
    return answer


client = AuthenticatedClient(base_url=os.environ["JIT_URL"], token=os.environ["JIT_TOKEN"])

# Connect the account; its first sync starts at once.
integration = ok(
    create_integration.sync(
        client=client,
        body=CreateIntegration(
            name=f"tour-{uuid.uuid4().hex[:8]}",
            connection=Connection.SINGLE_ACCOUNT,
            root_account=RootAccountInput(
                account_id=os.environ["ACCOUNT_ID"], access_role_arn=os.environ["ROLE_ARN"], region="us-east-1"
            ),
            options=IntegrationOptionsInput(regions=["us-east-1"]),
        ),
    )
)
sync_run = ok(list_syncs.sync(integration.id, client=client)).items[0]
while sync_run.status in (SyncStatus.QUEUED, SyncStatus.RUNNING):
    time.sleep(0.2)
    sync_run = ok(get_sync.sync(integration.id, sync_run.id, client=client))
assert sync_run.status == SyncStatus.SUCCEEDED, sync_run

# Browse the prod buckets one per page, to the end.
buckets, cursor = [], UNSET
while True:
    page = ok(
        list_resources.sync(
            client=client,
            integration_id=integration.id,
            type_=ResourceType.S3_BUCKET,
            tag=["env:prod"],
            limit=1,
            cursor=cursor,
        )
    )
    buckets.extend(page.items)
    if not page.next_cursor:
        break
    cursor = page.next_cursor
prefix = os.environ["BUCKET_PREFIX"]
assert sorted(b.name for b in buckets if b.name.startswith(prefix)) == [f"{prefix}-{i}" for i in range(3)], buckets
assert all(bucket.tags["env"] == "prod" for bucket in buckets)

# Preview, then submit and wait until the access is there.
request = SubmitGrant(
    integration_id=integration.id,
    resource_id=buckets[0].id,
    access_level=AccessLevel.READ,
    principal=Principal(type_=PrincipalType.IAM_USER, name="alice"),
    duration_seconds=900,
    request_id=f"tour-{uuid.uuid4()}",
    approved_by="approver@example.com",
)
preview = ok(preview_grant.sync(client=client, body=request))
assert isinstance(preview.policy_document, PolicyDocument), preview
assert [s.effect for s in preview.policy_document.statement] == [Effect.ALLOW, Effect.ALLOW], preview
grant: Grant = ok(submit_grant.sync(client=client, body=request, wait=20))
assert grant.status == GrantStatus.ACTIVE, grant
grant = ok(get_grant.sync(grant.id, client=client))
events = ok(list_grant_events.sync(grant.id, client=client)).items
assert [e.to_status for e in events if e.to_status] == [GrantStatus.PENDING, GrantStatus.ACTIVE], events

# Extend, then revoke early.
extended = ok(extend_grant.sync(grant.id, client=client, body=ExtendGrant(duration_seconds=600, reason="tour")))
assert extended.expires_at > grant.expires_at
revoked = ok(revoke_grant.sync(grant.id, client=client, body=RevokeGrant(reason="done")))
assert revoked.status in (GrantStatus.REVOKING, GrantStatus.REVOKED), revoked

# A refusal, read through the typed error body.
refused = submit_grant.sync(client=client, body=evolve(request, request_id=f"tour-{uuid.uuid4()}", duration_seconds=1))
assert isinstance(refused, ErrorBody), refused
assert refused.error.code == ErrorCode.VALIDATION_FAILED and refused.error.field == "duration_seconds", refused
print("tour ok")
