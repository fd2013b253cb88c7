-- The grants being worked on (leased), by account: the claim counts them to
-- keep one account within JIT_IAM_WORKER_ACCOUNT_CONCURRENCY. Few rows at any
-- time, whatever the history.
create index grants_in_flight on grants (account_id) where lease_owner is not null;
