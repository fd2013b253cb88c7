-- Identity Center users as grantees, and Identity Center groups as granted
-- resources (membership): the CHECK lists of the columns that store them.
alter table grants drop constraint grants_principal_type_check;
alter table grants add constraint grants_principal_type_check
    check (principal_type in ('iam_user', 'iam_role', 'identity_center_user'));

alter table grants drop constraint grants_resource_type_check;
alter table grants add constraint grants_resource_type_check
    check (resource_type in ('ec2_instance', 's3_bucket', 'iam_role', 'iam_policy', 'iam_group', 'identity_center_group'));

alter table shared_attachments drop constraint shared_attachments_principal_type_check;
alter table shared_attachments add constraint shared_attachments_principal_type_check
    check (principal_type in ('iam_user', 'iam_role', 'identity_center_user'));
