-- The inventory: what each integration's accounts hold, synced from AWS, and
-- the record of every sync run.

-- Time-ordered ids (UUIDv7) made by Postgres, for rows inserted in SQL.
create function uuid_generate_v7() returns uuid language sql volatile as $$
    select encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
                    from 1 for 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;

-- The tag filter rule, in one place: for every key of `filter` (key -> accepted
-- values), `tags` carries the key with one of the values. Values of one key are
-- OR'd, keys are AND'd; an empty filter lets everything through.
create function tags_match_filter(tags jsonb, filter jsonb) returns boolean
language sql immutable parallel safe as $$
    select coalesce(bool_and(coalesce((tags ->> f.key) = any (array(select jsonb_array_elements_text(f.value))), false)), true)
    from jsonb_each(filter) as f
$$;

create table accounts (
    integration_id  uuid not null references integrations (integration_id) on delete cascade,
    account_id      text not null,
    name            text,
    -- as Organizations reports it: ACTIVE, SUSPENDED, PENDING_CLOSURE
    status          text not null,
    is_root         boolean not null,
    last_sync_id    uuid,
    last_sync_status text check (last_sync_status in ('succeeded', 'failed', 'skipped')),
    last_sync_error jsonb,
    last_synced_at  timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    primary key (integration_id, account_id)
);

create trigger accounts_set_updated_at before update on accounts
    for each row execute function set_updated_at();

create table sync_runs (
    sync_id          uuid primary key default uuid_generate_v7(),
    integration_id   uuid not null references integrations (integration_id) on delete cascade,
    trigger          text not null check (trigger in ('created', 'updated', 'scheduled', 'manual')),
    status           text not null default 'queued'
                     check (status in ('queued', 'running', 'succeeded', 'partial', 'failed')),
    started_at       timestamptz,
    finished_at      timestamptz,
    -- the replica working on it, until the lease runs out
    lease_owner      text,
    lease_expires_at timestamptz,
    attempts         integer not null default 0,
    aws_calls        bigint not null default 0,
    counts           jsonb not null default '{}',
    error            jsonb,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now()
);

-- At most one sync per integration is queued or running, whatever the number of replicas.
create unique index sync_runs_one_active on sync_runs (integration_id) where status in ('queued', 'running');
create index sync_runs_by_integration on sync_runs (integration_id, sync_id desc);
create index sync_runs_claimable on sync_runs (created_at) where status in ('queued', 'running');

create trigger sync_runs_set_updated_at before update on sync_runs
    for each row execute function set_updated_at();

create table sync_run_accounts (
    sync_id     uuid not null references sync_runs (sync_id) on delete cascade,
    account_id  text not null,
    status      text not null check (status in ('succeeded', 'failed', 'skipped')),
    error       jsonb,
    counts      jsonb not null default '{}',
    aws_calls   bigint not null default 0,
    started_at  timestamptz not null,
    finished_at timestamptz not null,
    created_at  timestamptz not null default now(),
    primary key (sync_id, account_id)
);

create table resources (
    resource_id    uuid primary key default uuid_generate_v7(),
    integration_id uuid not null references integrations (integration_id) on delete cascade,
    account_id     text not null,
    type           text not null check (type in ('ec2_instance', 's3_bucket', 'iam_role', 'iam_policy', 'iam_group', 'iam_user')),
    arn            text not null,
    name           text not null,
    region         text,
    tags           jsonb not null default '{}',
    -- passes the integration's tag filter (IAM users, the grantees, always do)
    offered        boolean not null,
    -- type-specific facts, e.g. an IAM user's attached policies and groups
    details        jsonb not null default '{}',
    sync_id        uuid not null,
    synced_at      timestamptz not null,
    created_at     timestamptz not null default now(),
    constraint resources_arn_key unique (integration_id, arn)
);

-- Browsing: keyset pages in id order, narrowed by type or integration.
create index resources_by_type on resources (type, resource_id) where offered;
create index resources_by_integration on resources (integration_id, resource_id) where offered;
create index resources_by_account on resources (integration_id, account_id, type);
create index resources_by_tags on resources using gin (tags jsonb_path_ops) where offered;
