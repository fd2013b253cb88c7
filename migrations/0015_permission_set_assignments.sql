-- Permission-set assignments: grants of a permission set in a target account,
-- to an Identity Center user or group.
alter table grants drop constraint grants_principal_type_check;
alter table grants add constraint grants_principal_type_check
    check (principal_type in ('iam_user', 'iam_role', 'identity_center_user', 'identity_center_group'));

alter table grants drop constraint grants_resource_type_check;
alter table grants add constraint grants_resource_type_check
    check (resource_type in ('ec2_instance', 's3_bucket', 'iam_role', 'iam_policy', 'iam_group',
                             'identity_center_group', 'permission_set'));

-- The account a permission set is assigned in (permission_set grants only).
alter table grants add column target_account_id text
    check ((resource_type = 'permission_set') = (target_account_id is not null));

-- The permission set's session duration, as last read: sessions issued
-- before the end last until then (an assignment's deletion does not end them).
alter table grants add column session_duration_seconds integer check (session_duration_seconds > 0);

alter table shared_attachments drop constraint shared_attachments_principal_type_check;
alter table shared_attachments add constraint shared_attachments_principal_type_check
    check (principal_type in ('iam_user', 'iam_role', 'identity_center_user', 'identity_center_group'));

-- 'assignment': target is '<permission set ARN>@<account id>'.
alter table shared_attachments drop constraint shared_attachments_kind_check;
alter table shared_attachments add constraint shared_attachments_kind_check
    check (kind in ('policy', 'group', 'assignment'));
