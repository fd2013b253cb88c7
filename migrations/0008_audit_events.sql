-- The audit trail: every change made through the API, written in the same
-- transaction as the change. Append-only: no foreign keys (a deleted
-- integration keeps its history), and triggers refuse UPDATE, DELETE and
-- TRUNCATE, whoever asks.

create table audit_events (
    -- uuid v7: time-ordered, so keyset pages by id are chronological
    event_id    uuid primary key,
    occurred_at timestamptz not null default now(),
    actor       text not null,
    role        text not null check (role in ('admin', 'portal', 'auditor')),
    request_id  text,
    action      text not null,
    target_type text not null,
    target_id   uuid not null,
    -- field -> {"before", "after"}; secrets appear as "(secret)"
    changes     jsonb not null default '{}'
);

create index audit_events_by_action on audit_events (action, event_id);
create index audit_events_by_actor on audit_events (actor, event_id);
create index audit_events_by_target on audit_events (target_id, event_id);
create index audit_events_by_time on audit_events (occurred_at);

create function audit_events_are_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_events is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end $$;

create trigger audit_events_no_update_or_delete before update or delete on audit_events
    for each row execute function audit_events_are_append_only();
create trigger audit_events_no_truncate before truncate on audit_events
    for each statement execute function audit_events_are_append_only();
