-- Grants: approved, time-bound access applied as IAM changes and revoked again,
-- with every transition and AWS call recorded.

create table grants (
    grant_id            uuid primary key,
    -- kept for the audit trail when the integration is deleted
    integration_id      uuid references integrations (integration_id) on delete set null,
    account_id          text not null,
    resource_id         uuid not null,
    resource_type       text not null check (resource_type in ('ec2_instance', 's3_bucket', 'iam_role', 'iam_policy', 'iam_group')),
    resource_arn        text not null,
    resource_name       text not null,
    access_level        text not null,
    principal_type      text not null check (principal_type = 'iam_user'),
    principal_name      text not null,
    principal_arn       text not null,
    request_id          text not null,
    -- SHA-256 of the submitted body: a replay must be the same request
    request_fingerprint text not null,
    approved_by         text not null,
    reason              text,
    requested_by        text not null,
    status              text not null default 'pending'
                        check (status in ('pending', 'active', 'revoking', 'revoked', 'failed')),
    revoke_reason       text check (revoke_reason in ('expired', 'revoked', 'integration_deleted')),
    expires_at          timestamptz not null,
    -- the policy created for ec2_instance, s3_bucket and iam_role grants
    policy_name         text,
    policy_arn          text,
    policy_document     jsonb,
    -- policy and group grants: this grant counts among the holders of the shared attachment
    holds_attachment    boolean not null default false,
    attempts            integer not null default 0,
    -- when the worker must act next; null once nothing is left to do
    next_run_at         timestamptz default now(),
    lease_owner         text,
    lease_expires_at    timestamptz,
    last_error          jsonb,
    activated_at        timestamptz,
    finished_at         timestamptz,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    constraint grants_request_id_key unique (request_id)
);

create index grants_due on grants (next_run_at) where next_run_at is not null;
create index grants_by_integration on grants (integration_id, grant_id);
create index grants_by_principal on grants (account_id, principal_name, grant_id);
create index grants_by_resource on grants (resource_id, grant_id);
create index grants_by_status on grants (status, grant_id);

create trigger grants_set_updated_at before update on grants
    for each row execute function set_updated_at();

create table grant_events (
    event_id       bigint generated always as identity primary key,
    grant_id       uuid not null references grants (grant_id) on delete cascade,
    kind           text not null check (kind in ('transition', 'aws_call', 'extended')),
    from_status    text,
    to_status      text,
    operation      text,
    target         text,
    outcome        text check (outcome in ('success', 'already_done', 'failed')),
    aws_request_id text,
    error_code     text,
    message        text,
    -- an API token's name, or the worker instance
    actor          text not null,
    -- SDK attempts of the call; more than one means retries
    attempts       integer,
    created_at     timestamptz not null default now()
);

create index grant_events_by_grant on grant_events (grant_id, event_id);

-- Policy attachments and group memberships that several grants (or the user
-- before any grant) may share. A row exists while jit-iam tracks one.
create table shared_attachments (
    account_id     text not null,
    principal_name text not null,
    kind           text not null check (kind in ('policy', 'group')),
    -- policy ARN or group name
    target         text not null,
    -- the user had it before any grant: revoking never removes it
    preexisting    boolean not null,
    -- 'attaching' is written before the IAM call, so a crash leaves a trace to recover from
    state          text not null check (state in ('attaching', 'attached')),
    created_at     timestamptz not null default now(),
    updated_at     timestamptz not null default now(),
    primary key (account_id, principal_name, kind, target)
);

create trigger shared_attachments_set_updated_at before update on shared_attachments
    for each row execute function set_updated_at();
