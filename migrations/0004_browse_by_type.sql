-- Browsing by type: one partial index per type, in id order. A single
-- (type, resource_id) index is costed as random heap access (rows of one type
-- are scattered through the table), so the planner walked the primary key
-- instead and filtered out every other type; these are chosen, and read only
-- rows of the type asked for. The browse query names the type as a literal so
-- that its prepared plan can use them.
drop index resources_by_type;
create index resources_ec2_instances on resources (resource_id) where offered and type = 'ec2_instance';
create index resources_s3_buckets on resources (resource_id) where offered and type = 's3_bucket';
create index resources_iam_roles on resources (resource_id) where offered and type = 'iam_role';
create index resources_iam_policies on resources (resource_id) where offered and type = 'iam_policy';
create index resources_iam_groups on resources (resource_id) where offered and type = 'iam_group';
create index resources_iam_users on resources (resource_id) where offered and type = 'iam_user';
