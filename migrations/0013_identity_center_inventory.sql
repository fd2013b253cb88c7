-- IAM Identity Center in the inventory: its users (grantees, like IAM users),
-- groups and permission sets, listed in the root account of an integration
-- with `options.identity_center`.
alter table resources drop constraint resources_type_check;
alter table resources add constraint resources_type_check
    check (type in ('ec2_instance', 's3_bucket', 'iam_role', 'iam_policy', 'iam_group', 'iam_user',
                    'identity_center_user', 'identity_center_group', 'permission_set'));

-- Browsing by type, as for the other types (0004).
create index resources_identity_center_users on resources (resource_id) where offered and type = 'identity_center_user';
create index resources_identity_center_groups on resources (resource_id) where offered and type = 'identity_center_group';
create index resources_permission_sets on resources (resource_id) where offered and type = 'permission_set';
