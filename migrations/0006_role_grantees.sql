-- Grantees are IAM users or IAM roles. The principal's type is part of every
-- key that names a grantee, so a user and a role with the same name never
-- share a lock, a reference count or an attachment record.

alter table grants drop constraint grants_principal_type_check;
alter table grants add constraint grants_principal_type_check
    check (principal_type in ('iam_user', 'iam_role'));

drop index grants_by_principal;
create index grants_by_principal on grants (account_id, principal_type, principal_name, grant_id);

-- every row so far is a user's
alter table shared_attachments add column principal_type text not null default 'iam_user'
    check (principal_type in ('iam_user', 'iam_role'));
alter table shared_attachments alter column principal_type drop default;
alter table shared_attachments drop constraint shared_attachments_pkey;
alter table shared_attachments add primary key (account_id, principal_type, principal_name, kind, target);
