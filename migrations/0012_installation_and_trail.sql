-- This installation's id, made once by the first migration: every policy
-- jit-iam creates is tagged with it, and reconciliation deletes as orphaned
-- only policies that carry it, never another installation's (two databases
-- on one AWS account: staging and production, a migration, blue/green).
create table installation (
    installation_id uuid primary key default gen_random_uuid(),
    -- one row, ever
    one_row         boolean not null default true unique check (one_row),
    created_at      timestamptz not null default now()
);
insert into installation default values;

create function installation_id() returns uuid language sql stable as $$
    select installation_id from installation
$$;

-- The installation that made the grant's policy. Null for grants made before
-- ids existed: reconciliation tags their policies and sets it (adoption).
alter table grants add column installation_id uuid default installation_id();

-- An `assume` grant's revocation denies the sessions it gave (an inline
-- policy on the target role) until they have all run out: then the worker
-- removes the deny. Null when there is none to remove.
alter table grants add column sessions_denied_until timestamptz;

-- The grant history is append-only, like the audit trail.
create function append_only() returns trigger language plpgsql as $$
begin
    raise exception '% is append-only: % refused', tg_table_name, tg_op using errcode = 'insufficient_privilege';
end $$;

create trigger grant_events_no_update_or_delete before update or delete on grant_events
    for each row execute function append_only();
create trigger grant_events_no_truncate before truncate on grant_events
    for each statement execute function append_only();

-- IAM changes jit-iam makes by itself (repairs, orphan deletions, session
-- denies) are in the audit trail too, under role 'service'.
alter table audit_events drop constraint audit_events_role_check;
alter table audit_events add constraint audit_events_role_check
    check (role in ('admin', 'portal', 'auditor', 'service'));
