-- The managed policies a grantee holds, as far as jit-iam knows: attached at
-- the last sync (jit-iam's own policies excepted), plus those its live grants
-- hold. One definition for the check at submission and the re-check before
-- applying. Grantees are kept in the inventory as resources of the same-named
-- type ('iam_user', 'iam_role').
create function grantee_policies(account text, grantee_type text, grantee_name text, excluding_grant uuid)
returns setof text language sql stable as $$
    select arn from (
        select jsonb_array_elements_text(details -> 'attached_policy_arns') as arn
        from resources where account_id = account and type = grantee_type and name = grantee_name
    ) inventory where arn not like '%:policy/jit-iam/%'
    union
    select coalesce(policy_arn, resource_arn) from grants
    where account_id = account and principal_type = grantee_type and principal_name = grantee_name
      and grant_id is distinct from excluding_grant
      and status in ('pending', 'active', 'revoking')
      and (policy_arn is not null or (resource_type = 'iam_policy' and holds_attachment))
$$;
