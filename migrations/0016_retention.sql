-- Retention: a background job deletes, in small batches, finished webhook
-- deliveries (with their attempts) and the messages they leave without any,
-- old sync and reconciliation runs, and the events of grants that ended long
-- ago (JIT_IAM_RETAIN_*). The audit trail is never pruned.

-- Each batch walks one of these from the oldest row: what it must keep (live
-- grants, pending deliveries) is all it reads besides what it deletes.
create index grant_events_by_time on grant_events (created_at);
create index webhook_deliveries_finished on webhook_deliveries (finished_at) where status <> 'pending';
create index webhook_messages_by_time on webhook_messages (occurred_at);
create index sync_runs_finished on sync_runs (finished_at) where status not in ('queued', 'running');
create index reconcile_runs_finished on reconcile_runs (finished_at) where status not in ('queued', 'running');

-- A grant's history stays append-only while the grant lives; once it has
-- ended, its events may be deleted, and only then.
create function grant_events_deleted_only_when_ended() returns trigger language plpgsql as $$
begin
    if not exists (select 1 from grants g
                   where g.grant_id = old.grant_id and g.status in ('revoked', 'failed') and g.finished_at is not null) then
        raise exception 'grant_events of a live grant are append-only: DELETE refused'
            using errcode = 'insufficient_privilege';
    end if;
    return old;
end $$;

drop trigger grant_events_no_update_or_delete on grant_events;
create trigger grant_events_no_update before update on grant_events
    for each row execute function append_only();
create trigger grant_events_delete_only_when_ended before delete on grant_events
    for each row execute function grant_events_deleted_only_when_ended();

-- The one way the service's database user (which may not DELETE from
-- grant_events: scripts/service-user.sql) prunes: events older than
-- `ended_before` of grants that ended before it, at most `batch` of them.
-- Rows another replica is deleting are skipped, not waited for.
create function prune_grant_events(ended_before timestamptz, batch bigint) returns bigint
language sql security definer set search_path = public, pg_temp as $$
    with pruned as (
        delete from grant_events where event_id in (
            select e.event_id from grant_events e join grants g on g.grant_id = e.grant_id
            where e.created_at < ended_before
              and g.status in ('revoked', 'failed') and g.finished_at < ended_before
            order by e.created_at
            limit batch
            for update of e skip locked)
        returning 1)
    select count(*) from pruned
$$;
