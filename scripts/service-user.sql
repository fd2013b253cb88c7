-- The database user `jit-iam serve` runs as: it reads and writes rows and
-- owns nothing, so it cannot disable the triggers that keep the audit trail
-- and grant history append-only, nor alter or drop a table. Run this as the
-- user that ran `jit-iam migrate` (the owner), after creating the role:
--     create role jit_iam_service login password '...';
-- Then run `serve` with JIT_IAM_SKIP_MIGRATIONS=true and DATABASE_URL naming
-- jit_iam_service; run `jit-iam migrate` as the owner on each upgrade.
grant usage on schema public to jit_iam_service;
grant select, insert, update, delete on all tables in schema public to jit_iam_service;
grant usage, select on all sequences in schema public to jit_iam_service;
-- What is only ever appended or read: not even a row changed.
revoke update, delete on audit_events, grant_events, installation from jit_iam_service;
-- (Retention prunes ended grants' events through the owner's prune_grant_events.)
-- Tables and sequences later migrations create (as the same owner) too.
alter default privileges in schema public grant select, insert, update, delete on tables to jit_iam_service;
alter default privileges in schema public grant usage, select on sequences to jit_iam_service;
