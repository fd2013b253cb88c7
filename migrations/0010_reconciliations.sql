-- Reconciliation: runs that compare what IAM holds with what jit-iam's grants
-- say, per integration, one at a time across replicas (like syncs); their
-- findings; and when jit-iam first saw each orphaned policy (for the grace
-- period before it is deleted).

create table reconcile_runs (
    run_id           uuid primary key default uuid_generate_v7(),
    integration_id   uuid not null references integrations (integration_id) on delete cascade,
    trigger          text not null check (trigger in ('scheduled', 'manual')),
    repair           boolean not null,
    delete_orphans   boolean not null default false,
    status           text not null default 'queued'
                     check (status in ('queued', 'running', 'succeeded', 'partial', 'failed')),
    started_at       timestamptz,
    finished_at      timestamptz,
    lease_owner      text,
    lease_expires_at timestamptz,
    attempts         integer not null default 0,
    aws_calls        bigint not null default 0,
    -- [{kind, grant_id, account_id, target, evidence, action, detail}]
    findings         jsonb not null default '[]',
    error            jsonb,
    created_at       timestamptz not null default now()
);

create unique index reconcile_runs_one_active on reconcile_runs (integration_id) where status in ('queued', 'running');
create index reconcile_runs_by_integration on reconcile_runs (integration_id, run_id desc);

create table orphan_sightings (
    account_id    text not null,
    policy_arn    text not null,
    first_seen_at timestamptz not null default now(),
    primary key (account_id, policy_arn)
);

alter table grant_events drop constraint grant_events_kind_check;
alter table grant_events add constraint grant_events_kind_check
    check (kind in ('transition', 'aws_call', 'extended', 'drift_detected', 'drift_repaired'));
