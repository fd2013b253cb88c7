-- Integrations: the AWS accounts jit-iam reaches, and through which role.
-- No AWS credential is ever stored: jit-iam assumes the role when it needs it.

create function set_updated_at() returns trigger language plpgsql as $$
begin
    new.updated_at = now();
    return new;
end
$$;

create table integrations (
    integration_id  uuid primary key,
    name            text not null,
    connection      text not null check (connection in ('single_account', 'organization')),
    account_id      text not null check (account_id ~ '^[0-9]{12}$'),
    access_role_arn text not null,
    external_id     text not null,
    region          text not null,
    options         jsonb not null default '{}',
    status          text not null default 'active' check (status in ('active', 'deleting')),
    -- bumped on every change: cached assumed-role clients are keyed by it
    revision        bigint not null default 1,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint integrations_name_key unique (name)
);

create trigger integrations_set_updated_at before update on integrations
    for each row execute function set_updated_at();
