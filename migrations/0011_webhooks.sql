-- Webhooks to the approval portal (Standard Webhooks): endpoints, the events
-- (messages) they are sent, one delivery per endpoint and message, and every
-- attempt of a delivery.
--
-- Messages and deliveries are written by triggers, in the transaction of the
-- change that causes them, whichever code path makes it: an event is never
-- lost when a process dies, and never sent for a change that rolled back.

create table webhook_endpoints (
    endpoint_id                 uuid primary key default uuid_generate_v7(),
    url                         text not null,
    description                 text,
    -- null: every event type
    event_types                 text[],
    enabled                     boolean not null default true,
    -- why it was disabled: 'manual', 'gone' (the receiver answered 410) or 'failing'
    disabled_reason             text check (disabled_reason in ('manual', 'gone', 'failing')),
    secret                      bytea not null,
    -- the secret before the last rotation, signing too until it expires
    previous_secret             bytea,
    previous_secret_expires_at  timestamptz,
    -- since when every attempt has failed (null after a success)
    failing_since               timestamptz,
    created_at                  timestamptz not null default now(),
    updated_at                  timestamptz not null default now(),
    check (enabled = (disabled_reason is null))
);

create trigger webhook_endpoints_set_updated_at before update on webhook_endpoints
    for each row execute function set_updated_at();

-- `event_sequence` orders the events of one grant: they are numbered while
-- the grant's row is locked by the change that causes them.
create sequence webhook_event_sequence;

create table webhook_messages (
    -- sent as `webhook-id`, the same on every attempt: the receiver's idempotency key
    message_id      uuid primary key default uuid_generate_v7(),
    event_type      text not null,
    -- the moment of the change (its statement, not its transaction's start)
    occurred_at     timestamptz not null default clock_timestamp(),
    event_sequence  bigint not null default nextval('webhook_event_sequence'),
    -- grant events: the grant's row at the change (rendered as `GET /v1/grants/{id}` renders it)
    grant_id        uuid,
    grant_row       jsonb,
    -- other events: the `data` sent as is
    data            jsonb,
    check ((grant_row is null) <> (data is null))
);

create table webhook_deliveries (
    delivery_id      uuid primary key default uuid_generate_v7(),
    endpoint_id      uuid not null references webhook_endpoints (endpoint_id) on delete cascade,
    message_id       uuid not null references webhook_messages (message_id) on delete cascade,
    status           text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz default now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz not null default now(),
    finished_at      timestamptz,
    unique (endpoint_id, message_id)
);

create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_by_endpoint on webhook_deliveries (endpoint_id, delivery_id desc);
create index webhook_deliveries_by_message on webhook_deliveries (message_id);

create table webhook_attempts (
    delivery_id    uuid not null references webhook_deliveries (delivery_id) on delete cascade,
    attempt        integer not null,
    attempted_at   timestamptz not null,
    duration_ms    integer not null,
    http_status    integer,
    -- a network error, a refused address, a timeout
    error          text,
    -- at most 1 KB of what the receiver answered
    response_body  text,
    primary key (delivery_id, attempt)
);

-- When a grant's expiry notice was sent, for which expiry: a notice is sent
-- once per expiry, again only when an extension brings a new one near.
alter table grants add column expiry_notice_for timestamptz;

create index grants_expiry_notice on grants (expires_at) where status = 'active';

-- Records `event_type` for every enabled endpoint that wants it (none: nothing
-- is written) and wakes the delivery workers of every replica.
create function webhook_enqueue(new_type text, new_grant_id uuid, new_grant_row jsonb, new_data jsonb)
returns void language plpgsql as $$
declare
    new_message uuid;
begin
    if not exists (select 1 from webhook_endpoints e
                   where e.enabled and (e.event_types is null or new_type = any (e.event_types))) then
        return;
    end if;
    insert into webhook_messages (event_type, grant_id, grant_row, data)
    values (new_type, new_grant_id, new_grant_row, new_data)
    returning message_id into new_message;
    insert into webhook_deliveries (endpoint_id, message_id)
    select e.endpoint_id, new_message from webhook_endpoints e
    where e.enabled and (e.event_types is null or new_type = any (e.event_types));
    perform pg_notify('jit_iam_work', 'webhook');
end $$;

-- A grant's transitions, as events. `attempts` goes from 0 to 1 at a
-- revocation's first failure (the worker counts failures; every revocation
-- starts at 0), and a revocation that failed before and ends recovered.
create function grants_webhook_events() returns trigger language plpgsql as $$
declare
    row_now jsonb := to_jsonb(new);
begin
    if new.status = 'active' and old.status <> 'active' then
        perform webhook_enqueue('grant.activated', new.grant_id, row_now, null);
    end if;
    if new.status = 'revoking' and new.attempts = 1 and old.attempts = 0 and old.status in ('active', 'revoking') then
        perform webhook_enqueue('grant.revoke_failing', new.grant_id, row_now, null);
    end if;
    if new.status in ('revoked', 'failed') and old.status = 'revoking' and old.attempts > 0 then
        perform webhook_enqueue('grant.revoke_recovered', new.grant_id, row_now, null);
    end if;
    if new.status = 'revoked' and old.status <> 'revoked' then
        perform webhook_enqueue('grant.revoked', new.grant_id, row_now, null);
    end if;
    if new.status = 'failed' and old.status <> 'failed' then
        perform webhook_enqueue('grant.failed', new.grant_id, row_now, null);
    end if;
    if new.expires_at <> old.expires_at then
        perform webhook_enqueue('grant.extended', new.grant_id, row_now, null);
    end if;
    if new.expiry_notice_for is distinct from old.expiry_notice_for and new.expiry_notice_for is not null then
        perform webhook_enqueue('grant.expiring', new.grant_id, row_now, null);
    end if;
    return null;
end $$;

create trigger grants_webhook_events after update on grants
    for each row
    when (old.status is distinct from new.status or old.attempts is distinct from new.attempts
          or old.expires_at is distinct from new.expires_at
          or old.expiry_notice_for is distinct from new.expiry_notice_for)
    execute function grants_webhook_events();

-- Reconciliation findings and repairs on a grant. The grant's row is locked
-- so that its events are numbered in the order they commit.
create function grant_events_webhook_events() returns trigger language plpgsql as $$
declare
    row_now jsonb;
begin
    select to_jsonb(g) into row_now from grants g where g.grant_id = new.grant_id for update;
    perform webhook_enqueue(replace(new.kind, 'drift_', 'grant.drift_'), new.grant_id, row_now, null);
    return null;
end $$;

create trigger grant_events_webhook_events after insert on grant_events
    for each row when (new.kind in ('drift_detected', 'drift_repaired'))
    execute function grant_events_webhook_events();

-- An account of a sync that failed.
create function sync_run_accounts_webhook_events() returns trigger language plpgsql as $$
begin
    perform webhook_enqueue('sync.failed', null, null, jsonb_build_object(
        'integration_id', r.integration_id, 'sync_id', new.sync_id, 'account_id', new.account_id,
        'error', new.error, 'finished_at', new.finished_at))
    from sync_runs r where r.sync_id = new.sync_id;
    return null;
end $$;

create trigger sync_run_accounts_webhook_events after insert on sync_run_accounts
    for each row when (new.status = 'failed')
    execute function sync_run_accounts_webhook_events();
create trigger sync_run_accounts_webhook_events_on_retry after update on sync_run_accounts
    for each row when (new.status = 'failed' and old.status <> 'failed')
    execute function sync_run_accounts_webhook_events();
