-- A grant records its principal's IAM unique id (AIDA... for users, AROA...
-- for roles) at submission: a deleted and recreated principal of the same
-- name is not the grantee, and a renamed one still is. Null for grants made
-- before ids were recorded (they keep going by name).
alter table grants add column principal_id text;
