-- Name search (`q=`, a case-insensitive substring of the name or the ARN).
-- Without an index a search that matches few resources read every offered
-- row (1.4 s at 1,000,000 resources); trigram indexes find them directly.
-- pg_trgm is a trusted extension: the database owner may create it.
create extension if not exists pg_trgm;
create index resources_name_trgm on resources using gin (name gin_trgm_ops) where offered;
create index resources_arn_trgm on resources using gin (arn gin_trgm_ops) where offered;
-- The planner estimates how many rows a pattern matches from these columns'
-- samples: finer ones tell a search matching 0.1% (read through the trigram
-- indexes) from one matching 5% (read in id order until the page is full).
alter table resources alter column name set statistics 1000, alter column arn set statistics 1000;
