//! The mechanisms' orderings, against IAM and the ledger in memory: crashes
//! between steps, retries, adoption, not-found on revoke. (The tests against
//! moto in `tests/it` are the proof that the real calls do the same.)

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::Utc;
use uuid::Uuid;

use super::*;
use crate::aws::iam_changes::{policy_operations, Assignment, IamPrincipal, Provisioning};
use crate::domain::access::policy_document;
use crate::domain::grant::{PermissionSetRoom, PrincipalType};
use crate::domain::integration::{Connection, IntegrationOptions, IntegrationStatus, RootAccount};
use crate::domain::policy::TemporaryPermissionSet;

const ACCOUNT: &str = "123456789012";
const SHARED_POLICY: &str = "arn:aws:iam::123456789012:policy/readonly";
const IC_GROUP: &str = "g-ops";
const PERMISSION_SET: &str = "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef";
const TARGET_ACCOUNT: &str = "210987654321";
const QUOTAS: Quotas = Quotas {
    max_policies_per_user: 10,
    max_policies_per_role: 10,
    max_permission_sets_per_account: 50,
    max_permission_sets_per_instance: 2000,
    max_permission_set_inline_policy: 32768,
};

/// IAM in memory: policies with their grant tag, attachments, group members,
/// and failures to answer, once each, to the next call of an operation.
///
/// Principals exist under any name with the id `id-<name>`, unless `ids` says
/// otherwise (None: no principal of that name).
#[derive(Default)]
struct MemoryIam {
    policies: Mutex<HashMap<String, Option<String>>>,
    documents: Mutex<HashMap<String, String>>,
    attached: Mutex<HashSet<(Grantee, String)>>,
    members: Mutex<HashSet<(String, String)>>,
    ids: Mutex<HashMap<String, Option<String>>>,
    failures: Mutex<Vec<(&'static str, AwsErrorKind)>>,
    calls: Mutex<Vec<&'static str>>,
    /// Inline role policies: (role, name) -> document.
    inline: Mutex<HashMap<(String, String), String>>,
    /// Identity Center group memberships: membership id -> (group id, user id).
    ic_members: Mutex<HashMap<String, (String, String)>>,
    /// Permission set assignments, and the provisioning answer the next creation gets.
    assignments: Mutex<HashSet<Assignment>>,
    next_provisioning: Mutex<Option<Provisioning>>,
    /// Permission sets: ARN -> (name, inline policy), and their descriptions.
    permission_sets: Mutex<HashMap<String, (String, String)>>,
    descriptions: Mutex<HashMap<String, String>>,
}

impl MemoryIam {
    fn fail_next(&self, operation: &'static str, kind: AwsErrorKind) {
        self.failures.lock().unwrap().push((operation, kind));
    }

    /// Records the call; answers a planned failure, if any.
    fn call(&self, operation: &'static str) -> Result<(), AwsError> {
        self.calls.lock().unwrap().push(operation);
        let mut failures = self.failures.lock().unwrap();
        match failures.iter().position(|(op, _)| *op == operation) {
            Some(i) => Err(AwsError::new(failures.remove(i).1, operation, "planned failure")),
            None => Ok(()),
        }
    }

    fn calls(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn has(&self, grantee: &Grantee, arn: &str) -> bool {
        self.attached.lock().unwrap().contains(&(grantee.clone(), arn.to_string()))
    }

    fn id_of(&self, name: &str) -> Option<String> {
        self.ids.lock().unwrap().get(name).cloned().unwrap_or_else(|| Some(format!("id-{name}")))
    }

    /// An admin renames a user: its attachments and memberships go with it.
    fn rename(&self, from: &Grantee, to: &str) {
        let id = self.id_of(&from.name);
        let renamed = Grantee { name: to.into(), ..from.clone() };
        let mut attached = self.attached.lock().unwrap();
        let moved: Vec<_> = attached.iter().filter(|(g, _)| g == from).cloned().collect();
        for (_, arn) in moved {
            attached.remove(&(from.clone(), arn.clone()));
            attached.insert((renamed.clone(), arn));
        }
        let mut members = self.members.lock().unwrap();
        let moved: Vec<_> = members.iter().filter(|(u, _)| *u == from.name).cloned().collect();
        for (_, group) in moved {
            members.remove(&(from.name.clone(), group.clone()));
            members.insert((to.to_string(), group));
        }
        let mut ids = self.ids.lock().unwrap();
        ids.insert(to.to_string(), id);
        ids.insert(from.name.clone(), None);
    }

    /// Whether Identity Center user `user_id` is in group `group_id`.
    fn in_ic_group(&self, group_id: &str, user_id: &str) -> bool {
        self.ic_members.lock().unwrap().values().any(|(g, u)| g == group_id && u == user_id)
    }

    /// An admin adds Identity Center user `user_id` to group `group_id`.
    fn add_ic_member(&self, group_id: &str, user_id: &str) {
        let mut members = self.ic_members.lock().unwrap();
        let id = format!("membership-{}", members.len());
        members.insert(id, (group_id.into(), user_id.into()));
    }

    /// An admin deletes a user (its access goes with it) and creates another of the same name.
    fn recreate(&self, user: &Grantee) {
        self.attached.lock().unwrap().retain(|(g, _)| g != user);
        self.members.lock().unwrap().retain(|(u, _)| *u != user.name);
        let old = self.id_of(&user.name);
        self.ic_members.lock().unwrap().retain(|_, (_, u)| Some(u.clone()) != old);
        self.ids.lock().unwrap().insert(user.name.clone(), Some(format!("id-{}-recreated", user.name)));
    }
}

impl IamChanges for MemoryIam {
    async fn create_policy(
        &self,
        policy: &GeneratedPolicy,
        document: &str,
        tags: &[(&'static str, String)],
    ) -> Result<bool, AwsError> {
        self.call("iam:CreatePolicy")?;
        let tag = tags.iter().find(|(k, _)| *k == crate::domain::policy::GRANT_ID_TAG).map(|(_, v)| v.clone());
        let mut policies = self.policies.lock().unwrap();
        if policies.contains_key(&policy.arn) {
            return Ok(false);
        }
        policies.insert(policy.arn.clone(), tag);
        self.documents.lock().unwrap().insert(policy.arn.clone(), document.to_string());
        Ok(true)
    }

    async fn policy_document(&self, arn: &str) -> Result<Option<String>, AwsError> {
        self.call("iam:GetPolicyVersion")?;
        Ok(self.documents.lock().unwrap().get(arn).cloned())
    }

    async fn policy_grant_id(&self, arn: &str) -> Result<Option<String>, AwsError> {
        self.call("iam:ListPolicyTags")?;
        Ok(self.policies.lock().unwrap().get(arn).cloned().flatten())
    }

    async fn delete_policy(&self, arn: &str) -> Result<(), AwsError> {
        self.call("iam:DeletePolicy")?;
        // As in AWS (not moto): an attached policy cannot be deleted.
        if self.attached.lock().unwrap().iter().any(|(_, a)| a == arn) {
            return Err(AwsError::new(AwsErrorKind::DeleteConflict, "iam:DeletePolicy", "still attached"));
        }
        self.policies.lock().unwrap().remove(arn);
        Ok(())
    }

    async fn attach_policy(&self, grantee: &Grantee, arn: &str) -> Result<(), AwsError> {
        self.call(policy_operations(grantee.principal_type).attach)?;
        // jit-iam's policies exist once created; the customer's exist already.
        if !arn.contains(":policy/jit-iam/") || self.policies.lock().unwrap().contains_key(arn) {
            self.attached.lock().unwrap().insert((grantee.clone(), arn.to_string()));
            Ok(())
        } else {
            Err(AwsError::new(AwsErrorKind::NotFound, "iam:AttachUserPolicy", "no such policy"))
        }
    }

    async fn detach_policy(&self, grantee: &Grantee, arn: &str) -> Result<bool, AwsError> {
        self.call(policy_operations(grantee.principal_type).detach)?;
        Ok(self.attached.lock().unwrap().remove(&(grantee.clone(), arn.to_string())))
    }

    async fn attached_policies(&self, grantee: &Grantee) -> Result<Vec<String>, AwsError> {
        self.call(policy_operations(grantee.principal_type).list_attached)?;
        let attached = self.attached.lock().unwrap();
        Ok(attached.iter().filter(|(g, _)| g == grantee).map(|(_, arn)| arn.clone()).collect())
    }

    async fn groups_of(&self, user: &str) -> Result<Vec<String>, AwsError> {
        self.call("iam:ListGroupsForUser")?;
        let members = self.members.lock().unwrap();
        Ok(members.iter().filter(|(u, _)| u == user).map(|(_, g)| g.clone()).collect())
    }

    async fn add_to_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
        self.call("iam:AddUserToGroup")?;
        self.members.lock().unwrap().insert((user.to_string(), group.to_string()));
        Ok(())
    }

    async fn remove_from_group(&self, user: &str, group: &str) -> Result<(), AwsError> {
        self.call("iam:RemoveUserFromGroup")?;
        self.members.lock().unwrap().remove(&(user.to_string(), group.to_string()));
        Ok(())
    }

    async fn principal_id(&self, principal_type: PrincipalType, name: &str) -> Result<Option<String>, AwsError> {
        self.call(match principal_type {
            PrincipalType::IamUser => "iam:GetUser",
            PrincipalType::IamRole => "iam:GetRole",
            PrincipalType::IdentityCenterUser => "identitystore:GetUserId",
            PrincipalType::IdentityCenterGroup => "identitystore:GetGroupId",
        })?;
        Ok(self.id_of(name))
    }

    async fn identity_center_membership(&self, group_id: &str, user_id: &str) -> Result<Option<String>, AwsError> {
        self.call("identitystore:GetGroupMembershipId")?;
        let members = self.ic_members.lock().unwrap();
        Ok(members.iter().find(|(_, (g, u))| g == group_id && u == user_id).map(|(id, _)| id.clone()))
    }

    async fn create_group_membership(&self, group_id: &str, user_id: &str) -> Result<(), AwsError> {
        self.call("identitystore:CreateGroupMembership")?;
        // As in AWS: a user is a member once.
        if self.in_ic_group(group_id, user_id) {
            return Err(AwsError::new(AwsErrorKind::Rejected, "identitystore:CreateGroupMembership", "a member"));
        }
        self.add_ic_member(group_id, user_id);
        Ok(())
    }

    async fn delete_group_membership(&self, membership_id: &str) -> Result<(), AwsError> {
        self.call("identitystore:DeleteGroupMembership")?;
        self.ic_members.lock().unwrap().remove(membership_id);
        Ok(())
    }

    async fn assignment_exists(&self, assignment: &Assignment) -> Result<bool, AwsError> {
        self.call("sso:ListAccountAssignments")?;
        Ok(self.assignments.lock().unwrap().contains(assignment))
    }

    async fn create_assignment(&self, assignment: &Assignment) -> Result<Provisioning, AwsError> {
        self.call("sso:CreateAccountAssignment")?;
        let provisioning = self.next_provisioning.lock().unwrap().take().unwrap_or(Provisioning::Succeeded);
        // In progress: AWS goes on and makes it.
        if !matches!(provisioning, Provisioning::Failed(_)) {
            self.assignments.lock().unwrap().insert(assignment.clone());
        }
        Ok(provisioning)
    }

    async fn delete_assignment(&self, assignment: &Assignment) -> Result<Provisioning, AwsError> {
        self.call("sso:DeleteAccountAssignment")?;
        self.assignments.lock().unwrap().remove(assignment);
        Ok(Provisioning::Succeeded)
    }

    async fn session_duration(&self, _permission_set_arn: &str) -> Result<Option<i32>, AwsError> {
        self.call("sso:DescribePermissionSet")?;
        Ok(Some(3600))
    }

    async fn create_permission_set(
        &self,
        set: &crate::domain::policy::TemporaryPermissionSet,
        _session_duration: &str,
    ) -> Result<String, AwsError> {
        self.call("sso:CreatePermissionSet")?;
        let mut sets = self.permission_sets.lock().unwrap();
        // As in AWS: names are unique in an instance.
        if sets.values().any(|(name, _)| *name == set.name) {
            let mut conflict = AwsError::new(AwsErrorKind::Transient, "sso:CreatePermissionSet", "name taken");
            conflict.code = Some("ConflictException".into());
            return Err(conflict);
        }
        let arn = format!("arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-{}", Uuid::new_v4().simple());
        sets.insert(arn.clone(), (set.name.clone(), String::new()));
        self.descriptions.lock().unwrap().insert(arn.clone(), set.description.clone());
        Ok(arn)
    }

    async fn find_permission_set(&self, name: &str) -> Result<Option<(String, String)>, AwsError> {
        self.call("sso:ListPermissionSets")?;
        let sets = self.permission_sets.lock().unwrap();
        let found = sets.iter().find(|(_, (n, _))| n == name);
        Ok(found.map(|(arn, _)| (arn.clone(), self.descriptions.lock().unwrap()[arn].clone())))
    }

    async fn inline_policy(&self, permission_set_arn: &str) -> Result<Option<String>, AwsError> {
        self.call("sso:GetInlinePolicyForPermissionSet")?;
        Ok(self.permission_sets.lock().unwrap().get(permission_set_arn).map(|(_, policy)| policy.clone()))
    }

    async fn provision_permission_set(&self, _permission_set_arn: &str, _account_id: &str) -> Result<(), AwsError> {
        self.call("sso:ProvisionPermissionSet")
    }

    async fn put_inline_policy(&self, permission_set_arn: &str, document: &str) -> Result<(), AwsError> {
        self.call("sso:PutInlinePolicyToPermissionSet")?;
        match self.permission_sets.lock().unwrap().get_mut(permission_set_arn) {
            Some((_, policy)) => Ok(*policy = document.to_string()),
            None => Err(AwsError::new(AwsErrorKind::NotFound, "sso:PutInlinePolicyToPermissionSet", "no such set")),
        }
    }

    async fn delete_permission_set(&self, permission_set_arn: &str) -> Result<(), AwsError> {
        self.call("sso:DeletePermissionSet")?;
        self.permission_sets.lock().unwrap().remove(permission_set_arn);
        Ok(())
    }

    async fn policy_holders(&self, arn: &str, principal_type: PrincipalType) -> Result<Vec<IamPrincipal>, AwsError> {
        self.call("iam:ListEntitiesForPolicy")?;
        let attached = self.attached.lock().unwrap();
        let holders = attached.iter().filter(|(g, a)| a == arn && g.principal_type == principal_type);
        Ok(holders.map(|(g, _)| IamPrincipal { name: g.name.clone(), id: self.id_of(&g.name).unwrap() }).collect())
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<(), AwsError> {
        self.call("iam:CreatePolicyVersion")?;
        self.documents.lock().unwrap().insert(arn.to_string(), document.to_string());
        Ok(())
    }

    async fn delete_policy_version(&self, _arn: &str, _version_id: &str) -> Result<(), AwsError> {
        self.call("iam:DeletePolicyVersion")
    }

    async fn detach_group_policy(&self, _group: &str, _arn: &str) -> Result<(), AwsError> {
        self.call("iam:DetachGroupPolicy")
    }

    async fn max_session_duration(&self, role: &str) -> Result<Option<i32>, AwsError> {
        self.call("iam:GetRole")?;
        Ok(self.id_of(role).map(|_| 3600))
    }

    async fn put_role_policy(&self, role: &str, name: &str, document: &str) -> Result<(), AwsError> {
        self.call("iam:PutRolePolicy")?;
        self.inline.lock().unwrap().insert((role.into(), name.into()), document.into());
        Ok(())
    }

    async fn delete_role_policy(&self, role: &str, name: &str) -> Result<(), AwsError> {
        self.call("iam:DeleteRolePolicy")?;
        self.inline.lock().unwrap().remove(&(role.to_string(), name.to_string()));
        Ok(())
    }

    async fn group_members(&self, group: &str) -> Result<Vec<IamPrincipal>, AwsError> {
        self.call("iam:GetGroup")?;
        let members = self.members.lock().unwrap();
        let users = members.iter().filter(|(_, g)| g == group);
        Ok(users.map(|(u, _)| IamPrincipal { name: u.clone(), id: self.id_of(u).unwrap() }).collect())
    }
}

/// The ledger in memory: attachment records by (grantee, kind, target), and
/// the live grants holding each.
#[derive(Default)]
struct MemoryLedger {
    held: Vec<String>,
    records: HashMap<(Grantee, String, String), SharedAttachment>,
    holders: HashMap<(Grantee, String), i64>,
    /// The permission sets recorded for grants.
    permission_sets: HashMap<Uuid, String>,
}

fn record_key(key: &AttachmentKey<'_>) -> (Grantee, String, String) {
    (key.grantee.clone(), key.kind.to_string(), key.target.to_string())
}

impl Ledger for MemoryLedger {
    async fn policies_held(&mut self, _grantee: &Grantee, _excluding: Uuid) -> Result<Vec<String>, sqlx::Error> {
        Ok(self.held.clone())
    }

    async fn attachment(&mut self, key: &AttachmentKey<'_>) -> Result<Option<SharedAttachment>, sqlx::Error> {
        Ok(self.records.get(&record_key(key)).cloned())
    }

    async fn record_attached(&mut self, key: &AttachmentKey<'_>, preexisting: bool) -> Result<(), sqlx::Error> {
        self.records.insert(record_key(key), SharedAttachment { preexisting, state: "attached".into() });
        Ok(())
    }

    async fn record_attaching(&mut self, key: &AttachmentKey<'_>) -> Result<(), sqlx::Error> {
        self.records.insert(record_key(key), SharedAttachment { preexisting: false, state: "attaching".into() });
        Ok(())
    }

    async fn forget(&mut self, key: &AttachmentKey<'_>) -> Result<(), sqlx::Error> {
        self.records.remove(&record_key(key));
        Ok(())
    }

    async fn record_permission_set(&mut self, grant_id: Uuid, arn: &str) -> Result<(), sqlx::Error> {
        self.permission_sets.insert(grant_id, arn.to_string());
        Ok(())
    }

    async fn other_holders(&mut self, grant: &Grant) -> Result<i64, sqlx::Error> {
        Ok(self.holders.get(&(grant.grantee(), grant.resource_arn.clone())).copied().unwrap_or(0))
    }
}

fn grantee(principal_type: PrincipalType, name: &str) -> Grantee {
    Grantee { principal_type, name: name.into(), account_id: ACCOUNT.into() }
}

/// A stored grant of `resource_type` to `grantee`, as submission leaves it.
fn grant(resource_type: ResourceType, to: &Grantee) -> Grant {
    let grant_id = Uuid::now_v7();
    let (arn, name, level) = match resource_type {
        ResourceType::S3Bucket => ("arn:aws:s3:::data".to_string(), "data", AccessLevel::Read),
        ResourceType::Ec2Instance => {
            (format!("arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0123456789abcdef0"), "web", AccessLevel::Operate)
        }
        ResourceType::IamPolicy => (SHARED_POLICY.to_string(), "readonly", AccessLevel::Attach),
        ResourceType::IamGroup => ("arn:aws:iam::123456789012:group/ops".to_string(), "ops", AccessLevel::Member),
        ResourceType::IamRole => ("arn:aws:iam::123456789012:role/deploy".to_string(), "deploy", AccessLevel::Assume),
        ResourceType::PermissionSet => (PERMISSION_SET.to_string(), "ReadOnly", AccessLevel::Assign),
        ResourceType::IdentityCenterGroup => {
            (format!("arn:aws:identitystore:::group/{IC_GROUP}"), "ic-ops", AccessLevel::Member)
        }
        other => panic!("no fixture for {other:?}"),
    };
    let policy = (mechanism(resource_type, to.principal_type) == Some(Mechanism::GeneratedPolicy))
        .then(|| GeneratedPolicy::for_grant(grant_id, "aws", ACCOUNT));
    let temporary = mechanism(resource_type, to.principal_type) == Some(Mechanism::TemporaryPermissionSet);
    let now = Utc::now();
    Grant {
        installation_id: Some(Uuid::nil()),
        sessions_denied_until: None,
        target_account_id: (resource_type == ResourceType::PermissionSet).then(|| TARGET_ACCOUNT.into()),
        session_duration_seconds: None,
        grant_id,
        integration_id: Some(Uuid::nil()),
        account_id: ACCOUNT.into(),
        resource_id: Uuid::nil(),
        resource_type: resource_type.as_str().into(),
        resource_arn: arn.clone(),
        resource_name: name.into(),
        access_level: level.as_str().into(),
        principal_type: to.principal_type.as_str().into(),
        principal_name: to.name.clone(),
        principal_arn: format!("arn:aws:iam::{ACCOUNT}:{}/{}", to.principal_type.noun(), to.name),
        principal_id: Some(format!("id-{}", to.name)),
        request_id: "r".into(),
        request_fingerprint: "f".into(),
        approved_by: "a".into(),
        reason: None,
        requested_by: "tests".into(),
        status: "pending".into(),
        revoke_reason: None,
        expires_at: now + chrono::Duration::hours(1),
        policy_name: match temporary {
            true => Some(TemporaryPermissionSet::for_grant(grant_id, None).name),
            false => policy.as_ref().map(|p| p.name.clone()),
        },
        policy_arn: policy.as_ref().map(|p| p.arn.clone()),
        policy_document: (policy.is_some() || temporary)
            .then(|| policy_document(resource_type, level, &arn, ACCOUNT, &session_name(grant_id)).unwrap()),
        holds_attachment: false,
        attempts: 0,
        next_run_at: Some(now),
        lease_owner: None,
        last_error: None,
        activated_at: None,
        finished_at: None,
        created_at: now,
        integration_revision: None,
        integration_status: None,
        db_now: None,
    }
}

fn policy_arn(grant: &Grant) -> &str {
    grant.policy_arn.as_deref().unwrap()
}

#[tokio::test]
async fn a_generated_policy_is_created_attached_then_detached_and_deleted() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    for principal_type in [PrincipalType::IamUser, PrincipalType::IamRole] {
        let alice = grantee(principal_type, "alice");
        let ops = policy_operations(principal_type);
        let g = grant(ResourceType::S3Bucket, &alice);
        assert!(!apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap(), "holds no shared attachment");
        let get = if principal_type == PrincipalType::IamUser { "iam:GetUser" } else { "iam:GetRole" };
        assert_eq!(iam.calls(), ["iam:CreatePolicy", get, ops.attach], "the principal checked beside CreatePolicy");
        assert!(iam.has(&alice, policy_arn(&g)));
        revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
        assert_eq!(iam.calls(), [ops.detach, "iam:DeletePolicy"], "detached before deleted");
        assert!(iam.policies.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_crash_after_create_policy_is_finished_by_adopting_the_grants_own_policy() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let alice = grantee(PrincipalType::IamUser, "alice");
    let g = grant(ResourceType::S3Bucket, &alice);
    // The first try created the policy, then the process died.
    iam.policies.lock().unwrap().insert(policy_arn(&g).into(), Some(g.grant_id.to_string()));
    iam.documents.lock().unwrap().insert(policy_arn(&g).into(), g.policy_document.as_ref().unwrap().to_json());
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    assert_eq!(
        iam.calls(),
        ["iam:CreatePolicy", "iam:ListPolicyTags", "iam:GetPolicyVersion", "iam:GetUser", "iam:AttachUserPolicy"]
    );
    assert!(iam.has(&alice, policy_arn(&g)));
}

/// The grant's tag on a policy whose document someone edited (or wrote) is not enough.
#[tokio::test]
async fn a_policy_with_the_grants_tag_but_another_document_is_never_adopted() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let alice = grantee(PrincipalType::IamUser, "alice");
    let g = grant(ResourceType::S3Bucket, &alice);
    iam.policies.lock().unwrap().insert(policy_arn(&g).into(), Some(g.grant_id.to_string()));
    let wider = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    iam.documents.lock().unwrap().insert(policy_arn(&g).into(), wider.into());
    let error = apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err();
    assert_eq!(error.into_grant_error().code, GrantErrorCode::PolicyConflict);
    assert!(!iam.has(&alice, policy_arn(&g)), "nothing attached");
}

#[tokio::test]
async fn a_policy_of_the_same_name_made_for_something_else_is_never_adopted() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let alice = grantee(PrincipalType::IamUser, "alice");
    let g = grant(ResourceType::S3Bucket, &alice);
    for tag in [None, Some(Uuid::now_v7().to_string())] {
        iam.policies.lock().unwrap().insert(policy_arn(&g).into(), tag);
        let error = apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err();
        assert!(!error.is_retryable(), "{error:?}");
        assert!(!iam.has(&alice, policy_arn(&g)), "nothing attached");
    }
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_the_retry_finishes_the_work() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let role = grantee(PrincipalType::IamRole, "deployer");
    let g = grant(ResourceType::S3Bucket, &role);
    iam.fail_next("iam:AttachRolePolicy", AwsErrorKind::Throttled);
    let error = apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err();
    assert!(error.is_retryable());
    assert!(!iam.has(&role, policy_arn(&g)));
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    assert!(iam.has(&role, policy_arn(&g)));
    assert_eq!(iam.policies.lock().unwrap().len(), 1, "created once, adopted on the retry");
}

#[tokio::test]
async fn a_policy_not_yet_visible_after_creation_is_attached_on_a_later_try() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let alice = grantee(PrincipalType::IamUser, "alice");
    let g = grant(ResourceType::S3Bucket, &alice);
    iam.fail_next("iam:AttachUserPolicy", AwsErrorKind::NotFound);
    iam.fail_next("iam:AttachUserPolicy", AwsErrorKind::NotFound);
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    assert_eq!(
        iam.calls(),
        ["iam:CreatePolicy", "iam:GetUser", "iam:AttachUserPolicy", "iam:AttachUserPolicy", "iam:AttachUserPolicy"]
    );
}

#[tokio::test]
async fn revoking_what_is_already_gone_succeeds_and_a_failed_revoke_is_retried_whole() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let alice = grantee(PrincipalType::IamUser, "alice");
    let g = grant(ResourceType::S3Bucket, &alice);
    // Nothing was ever created (an apply that failed at once): undoing is a no-op.
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    iam.calls();
    iam.fail_next("iam:DeletePolicy", AwsErrorKind::Transient);
    assert!(revoke(&iam, &mut ledger, &g).await.unwrap().unwrap_err().is_retryable());
    assert!(!iam.has(&alice, policy_arn(&g)), "detached by the first try");
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    // The retry finds the policy detached already, and looks for whoever else holds it before deleting.
    assert_eq!(
        iam.calls(),
        [
            "iam:DetachUserPolicy",
            "iam:DeletePolicy",
            "iam:DetachUserPolicy",
            "iam:ListEntitiesForPolicy",
            "iam:DeletePolicy"
        ]
    );
    assert!(iam.policies.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_ended_assume_grant_denies_its_sessions_until_they_have_run_out() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let alice = grantee(PrincipalType::IamUser, "alice");
    let mut g = grant(ResourceType::IamRole, &alice);
    g.db_now = Some(Utc::now());
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    iam.calls();
    // Undone before it was ever active: it gave no session.
    assert_eq!(revoke(&iam, &mut ledger, &g).await.unwrap().unwrap(), None);
    assert_eq!(iam.calls(), ["iam:DetachUserPolicy", "iam:DeletePolicy"]);

    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    g.activated_at = Some(Utc::now());
    iam.calls();
    iam.fail_next("iam:PutRolePolicy", AwsErrorKind::Transient);
    assert!(revoke(&iam, &mut ledger, &g).await.unwrap().unwrap_err().is_retryable(), "not revoked without the deny");
    let until = revoke(&iam, &mut ledger, &g).await.unwrap().unwrap().expect("its sessions are denied");
    assert!(until >= g.read_at() + chrono::Duration::hours(1), "past the role's longest session: {until}");
    assert_eq!(
        iam.calls(),
        [
            "iam:DetachUserPolicy",
            "iam:DeletePolicy",
            "iam:GetRole",
            "iam:PutRolePolicy",
            "iam:DetachUserPolicy",
            "iam:ListEntitiesForPolicy",
            "iam:DeletePolicy",
            "iam:GetRole",
            "iam:PutRolePolicy"
        ],
        "the allow goes first, then the deny of what it gave"
    );
    let key = ("deploy".to_string(), sessions::deny_policy_name(g.grant_id));
    let written = iam.inline.lock().unwrap().get(&key).cloned().expect("the deny is on the target role");
    assert_eq!(written, sessions::deny_document(g.grant_id).to_json());
    sessions::lift(&iam, &g).await.unwrap();
    assert!(iam.inline.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_grant_over_the_quota_is_never_attached_and_its_undo_leaves_nothing() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    ledger.held = (0..10).map(|i| format!("arn:aws:iam::{ACCOUNT}:policy/p{i}")).collect();
    let role = grantee(PrincipalType::IamRole, "deployer");
    let g = grant(ResourceType::S3Bucket, &role);
    let error = apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err();
    let StepError::Quota(message) = error else { panic!("{error:?}") };
    assert!(message.contains("role deployer") && message.contains("JIT_IAM_MAX_POLICIES_PER_ROLE"), "{message}");
    assert_eq!(iam.calls(), ["iam:CreatePolicy", "iam:GetRole"], "checked beside CreatePolicy, before any attachment");
    assert!(!iam.has(&role, policy_arn(&g)));
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert!(iam.policies.lock().unwrap().is_empty(), "the undo deletes the policy");
}

#[tokio::test]
async fn access_held_before_any_grant_is_never_removed() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let role = grantee(PrincipalType::IamRole, "deployer");
    iam.attached.lock().unwrap().insert((role.clone(), SHARED_POLICY.into()));
    let g = grant(ResourceType::IamPolicy, &role);
    assert!(apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap(), "holds the attachment");
    assert_eq!(iam.calls(), ["iam:ListAttachedRolePolicies", "iam:GetRole"], "nothing to change");
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert!(iam.calls().is_empty());
    assert!(iam.has(&role, SHARED_POLICY), "the role had it before");
    assert!(ledger.records.is_empty());
}

#[tokio::test]
async fn a_crash_after_attaching_is_recognised_as_jit_iams_own_change() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let bob = grantee(PrincipalType::IamUser, "bob");
    let g = grant(ResourceType::IamGroup, &bob);
    // The first try recorded "attaching", added bob, and died before recording "attached".
    ledger.record_attaching(&attachment_key(&g, &bob, Mechanism::GroupMembership)).await.unwrap();
    iam.members.lock().unwrap().insert(("bob".into(), "ops".into()));
    assert!(apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap());
    assert_eq!(iam.calls(), ["iam:ListGroupsForUser", "iam:GetUser"]);
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert_eq!(iam.calls(), ["iam:GetUser", "iam:RemoveUserFromGroup"], "jit-iam's own membership is removed");
    assert!(iam.members.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_shared_attachment_stays_while_another_grant_holds_it() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let alice = grantee(PrincipalType::IamUser, "alice");
    let g = grant(ResourceType::IamPolicy, &alice);
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    ledger.holders.insert((alice.clone(), SHARED_POLICY.into()), 1);
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert!(iam.has(&alice, SHARED_POLICY));
    ledger.holders.clear();
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert!(!iam.has(&alice, SHARED_POLICY));
}

#[tokio::test]
async fn a_user_and_a_role_of_the_same_name_never_share_an_attachment() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let (user, role) = (grantee(PrincipalType::IamUser, "ci"), grantee(PrincipalType::IamRole, "ci"));
    let (to_user, to_role) = (grant(ResourceType::IamPolicy, &user), grant(ResourceType::IamPolicy, &role));
    apply(&iam, &mut ledger, &to_user, &QUOTAS).await.unwrap().unwrap();
    apply(&iam, &mut ledger, &to_role, &QUOTAS).await.unwrap().unwrap();
    assert_eq!(
        iam.calls(),
        [
            "iam:ListAttachedUserPolicies",
            "iam:GetUser",
            "iam:AttachUserPolicy",
            "iam:ListAttachedRolePolicies",
            "iam:GetRole",
            "iam:AttachRolePolicy"
        ]
    );
    assert_eq!(ledger.records.len(), 2);
    revoke(&iam, &mut ledger, &to_user).await.unwrap().unwrap();
    assert!(!iam.has(&user, SHARED_POLICY));
    assert!(iam.has(&role, SHARED_POLICY), "the role's grant is untouched");
    assert_ne!(user.lock_key(), role.lock_key());
}

fn integration() -> Integration {
    Integration {
        id: Uuid::nil(),
        name: "tests".into(),
        connection: Connection::SingleAccount,
        root_account: RootAccount {
            account_id: ACCOUNT.into(),
            access_role_arn: format!("arn:aws:iam::{ACCOUNT}:role/jit-iam-access"),
            external_id: "external-id-123".into(),
            region: "us-east-1".into(),
        },
        options: IntegrationOptions::default(),
        status: IntegrationStatus::Active,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        revision: 1,
    }
}

fn resource(resource_type: ResourceType, arn: &str) -> Resource {
    Resource {
        id: Uuid::nil(),
        integration_id: Uuid::nil(),
        account_id: ACCOUNT.into(),
        resource_type,
        arn: arn.into(),
        name: arn.rsplit('/').next().unwrap().into(),
        region: None,
        tags: Default::default(),
        access_levels: resource_type.access_levels().to_vec(),
        synced_at: Utc::now(),
    }
}

#[test]
fn roles_that_may_not_receive_grants_are_refused_naming_the_field() {
    let bucket = resource(ResourceType::S3Bucket, "arn:aws:s3:::data");
    let check = |role_arn: &str, resource: &Resource, level| {
        let role = resource_for_role(role_arn);
        let grantee = grantee(PrincipalType::IamRole, &role.name);
        plan(&request(resource, level, &grantee, &role), &QUOTAS)
    };
    let linked = "arn:aws:iam::123456789012:role/aws-service-role/support.amazonaws.com/AWSServiceRoleForSupport";
    assert!(refused_on(check(linked, &bucket, AccessLevel::Read), "principal.name"));
    assert!(refused_on(
        check("arn:aws:iam::123456789012:role/jit-iam-access", &bucket, AccessLevel::Read),
        "principal.name"
    ));
    let group = resource(ResourceType::IamGroup, "arn:aws:iam::123456789012:group/ops");
    assert!(refused_on(
        check("arn:aws:iam::123456789012:role/deployer", &group, AccessLevel::Member),
        "principal.type"
    ));
    let plan = check("arn:aws:iam::123456789012:role/deployer", &bucket, AccessLevel::Read).unwrap();
    assert_eq!(plan.mechanism, Mechanism::GeneratedPolicy);
    // Nor is jit-iam's own role ever the role a grant lets someone assume.
    let own = resource_for_role("arn:aws:iam::123456789012:role/jit-iam-access");
    assert!(refused_on(check("arn:aws:iam::123456789012:role/deployer", &own, AccessLevel::Assume), "resource_id"));
}

/// A request under the tests' integration, with nothing held.
fn request<'a>(
    resource: &'a Resource,
    level: AccessLevel,
    grantee: &'a Grantee,
    principal: &'a Resource,
) -> Request<'a> {
    static INTEGRATION: std::sync::LazyLock<Integration> = std::sync::LazyLock::new(integration);
    let held = &[];
    Request {
        integration: &INTEGRATION,
        resource,
        level,
        grantee,
        principal,
        held,
        resource_field: "resource_id",
        grant_id: None,
        target_account: None,
        permission_set_room: None,
    }
}

fn refused_on(result: Result<Plan, Refusal>, field: &str) -> bool {
    matches!(result, Err(Refusal::Invalid { field: f, .. }) if f == field)
}

fn resource_for_role(arn: &str) -> Resource {
    resource(ResourceType::IamRole, arn)
}

#[test]
fn preview_names_the_calls_of_the_grantees_type() {
    let role = grantee(PrincipalType::IamRole, "deployer");
    let bucket = resource(ResourceType::S3Bucket, "arn:aws:s3:::data");
    let principal = resource_for_role("arn:aws:iam::123456789012:role/deployer");
    let plan = plan(&request(&bucket, AccessLevel::Read, &role, &principal), &QUOTAS).unwrap();
    let policy = GeneratedPolicy::placeholder("aws", ACCOUNT);
    let (apply_calls, revoke_calls) = planned_calls(&plan, &role, &bucket, Some(&policy));
    let operations = |calls: &[PlannedCall]| calls.iter().map(|c| c.operation.clone()).collect::<Vec<_>>();
    assert_eq!(operations(&apply_calls), ["iam:CreatePolicy", "iam:GetRole", "iam:AttachRolePolicy"]);
    assert_eq!(operations(&revoke_calls), ["iam:DetachRolePolicy", "iam:ListEntitiesForPolicy", "iam:DeletePolicy"]);
    assert_eq!(plan.quota.unwrap().after_grant, 1);
    let target = resource_for_role("arn:aws:iam::123456789012:role/admin");
    let plan = super::plan(&request(&target, AccessLevel::Assume, &role, &principal), &QUOTAS).unwrap();
    let (_, revoke_calls) = planned_calls(&plan, &role, &target, Some(&policy));
    assert_eq!(
        operations(&revoke_calls)[3..],
        ["iam:GetRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy"],
        "an assume grant's end denies its sessions, and lifts the deny later"
    );
}

/// Deleted and recreated under the same name before the grant is applied:
/// the new principal is not the grantee. Nothing is attached to it.
#[tokio::test]
async fn a_principal_recreated_under_the_name_is_not_the_grantee() {
    for resource_type in [ResourceType::S3Bucket, ResourceType::IamPolicy, ResourceType::IamGroup] {
        let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
        let alice = grantee(PrincipalType::IamUser, "alice");
        iam.recreate(&alice);
        let g = grant(resource_type, &alice);
        let error = apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err();
        assert!(!error.is_retryable());
        assert_eq!(error.into_grant_error().code, GrantErrorCode::PrincipalChanged, "{resource_type:?}");
        assert!(iam.attached.lock().unwrap().is_empty() && iam.members.lock().unwrap().is_empty());
    }
}

/// Renamed while the grant is active: the access is removed under the new
/// name, found by the unique id (a later grant would otherwise take it for
/// access held before, and never remove it).
#[tokio::test]
async fn a_renamed_principal_loses_the_access_under_its_new_name() {
    for resource_type in [ResourceType::S3Bucket, ResourceType::IamPolicy, ResourceType::IamGroup] {
        let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
        let alice = grantee(PrincipalType::IamUser, "alice");
        let g = grant(resource_type, &alice);
        apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
        iam.rename(&alice, "alicia");
        revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
        assert!(iam.attached.lock().unwrap().is_empty(), "{resource_type:?}");
        assert!(iam.members.lock().unwrap().is_empty(), "{resource_type:?}");
        assert!(iam.policies.lock().unwrap().is_empty(), "{resource_type:?}");
    }
}

/// Deleted (its access with it) and recreated while the grant is active, and
/// the new principal given the same access by someone: the revocation leaves
/// the new principal's access alone.
#[tokio::test]
async fn a_revocation_never_takes_access_from_a_principal_recreated_under_the_name() {
    for resource_type in [ResourceType::IamPolicy, ResourceType::IamGroup] {
        let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
        let alice = grantee(PrincipalType::IamUser, "alice");
        let g = grant(resource_type, &alice);
        apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
        iam.recreate(&alice);
        iam.attached.lock().unwrap().insert((alice.clone(), SHARED_POLICY.into()));
        iam.members.lock().unwrap().insert(("alice".into(), "ops".into()));
        revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
        assert!(iam.has(&alice, SHARED_POLICY), "{resource_type:?}");
        assert!(iam.members.lock().unwrap().contains(&("alice".into(), "ops".into())), "{resource_type:?}");
        assert!(ledger.records.is_empty(), "the grant's record is gone: {resource_type:?}");
    }
}

// Drift: findings from an account snapshot, and repairs in order.

use crate::aws::reconcile::{IamSnapshot, PolicyState, PrincipalState};
use crate::domain::reconcile::FindingKind;
use drift::{Drift, Repaired};

const INSTALLATION: Uuid = Uuid::from_u128(7);

/// An account as GetAccountAuthorizationDetails would show it: `alice` (id
/// `id-alice`) holding `attached`, in `groups`, and the grant's policy with
/// `versions` (the first is the default).
fn snapshot(g: &Grant, attached: &[&str], groups: &[&str], versions: &[&str]) -> IamSnapshot {
    let mut snapshot = IamSnapshot::default();
    snapshot.users.push(PrincipalState {
        name: "alice".into(),
        id: "id-alice".into(),
        attached: attached.iter().map(|a| a.to_string()).collect(),
        groups: groups.iter().map(|a| a.to_string()).collect(),
        inline: Vec::new(),
    });
    if let (Some(arn), false) = (&g.policy_arn, versions.is_empty()) {
        let versions = versions.iter().enumerate().map(|(i, d)| (format!("v{}", i + 1), d.to_string())).collect();
        let policy = PolicyState { arn: arn.clone(), path: "/jit-iam/".into(), default_version: "v1".into(), versions };
        snapshot.policies.insert(arn.clone(), policy);
    }
    snapshot
}

fn kinds(drifts: &[Drift]) -> Vec<FindingKind> {
    drifts.iter().map(|d| d.kind).collect()
}

#[tokio::test]
async fn a_generated_policy_detached_and_edited_is_restored_then_attached() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let alice = grantee(PrincipalType::IamUser, "alice");
    let g = grant(ResourceType::S3Bucket, &alice);
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    iam.detach_policy(&alice, policy_arn(&g)).await.unwrap();
    iam.calls();
    let wider = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    let written = g.policy_document.as_ref().unwrap().to_json();
    let snap = snapshot(&g, &[], &[], &[wider, &written, wider]);
    let principal = drift::principal(&snap, &g).unwrap();
    let drifts = drift::of_active_grant(&mut ledger, &snap, &g, principal).await.unwrap();
    assert_eq!(kinds(&drifts), [FindingKind::PolicyModified, FindingKind::AccessMissing]);
    for finding in &drifts {
        let repaired =
            drift::repair(&iam, &mut ledger, &snap, &g, Some(principal), finding, INSTALLATION).await.unwrap();
        assert_eq!(repaired.unwrap(), Repaired::Restored);
    }
    assert_eq!(
        iam.calls(),
        [
            "iam:DeletePolicyVersion",
            "iam:DeletePolicyVersion",
            "iam:CreatePolicyVersion",
            "iam:DeletePolicyVersion",
            "iam:AttachUserPolicy"
        ],
        "the other versions go first (IAM keeps five), the written document becomes the default, the edited one goes"
    );
    assert_eq!(iam.documents.lock().unwrap()[policy_arn(&g)], written);
    assert!(iam.has(&alice, policy_arn(&g)));
}

#[tokio::test]
async fn a_deleted_generated_policy_is_made_again_as_this_installations() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let alice = grantee(PrincipalType::IamUser, "alice");
    let g = grant(ResourceType::S3Bucket, &alice);
    let snap = snapshot(&g, &[], &[], &[]);
    let principal = drift::principal(&snap, &g).unwrap();
    let drifts = drift::of_active_grant(&mut ledger, &snap, &g, principal).await.unwrap();
    assert_eq!(kinds(&drifts), [FindingKind::AccessMissing], "one finding: the policy is gone");
    drift::repair(&iam, &mut ledger, &snap, &g, Some(principal), &drifts[0], INSTALLATION).await.unwrap().unwrap();
    assert_eq!(iam.calls(), ["iam:CreatePolicy", "iam:AttachUserPolicy"]);
    assert!(iam.has(&alice, policy_arn(&g)));
}

#[tokio::test]
async fn shared_access_held_before_the_grant_and_removed_is_put_back_as_the_grants_own() {
    for resource_type in [ResourceType::IamPolicy, ResourceType::IamGroup] {
        let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
        let alice = grantee(PrincipalType::IamUser, "alice");
        let g = grant(resource_type, &alice);
        // alice had it before the grant: recorded as pre-existing.
        match resource_type {
            ResourceType::IamGroup => iam.add_to_group("alice", "ops").await.unwrap(),
            _ => iam.attach_policy(&alice, SHARED_POLICY).await.unwrap(),
        }
        apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
        let g = Grant { holds_attachment: true, ..g };
        // An admin takes the standing access away.
        match resource_type {
            ResourceType::IamGroup => iam.remove_from_group("alice", "ops").await.unwrap(),
            _ => assert!(iam.detach_policy(&alice, SHARED_POLICY).await.unwrap()),
        }
        iam.calls();
        let snap = snapshot(&g, &[], &[], &[]);
        let principal = drift::principal(&snap, &g).unwrap();
        let drifts = drift::of_active_grant(&mut ledger, &snap, &g, principal).await.unwrap();
        assert_eq!(kinds(&drifts), [FindingKind::PreexistingAccessRemoved], "{resource_type:?}");
        let repaired = drift::repair(&iam, &mut ledger, &snap, &g, Some(principal), &drifts[0], INSTALLATION).await;
        assert_eq!(repaired.unwrap().unwrap(), Repaired::NowTheGrantsOwn);
        // The grant's end now removes it.
        revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
        let removed = match resource_type {
            ResourceType::IamGroup => iam.members.lock().unwrap().is_empty(),
            _ => !iam.has(&alice, SHARED_POLICY),
        };
        assert!(removed, "{resource_type:?}: the repair must not make it permanent");
    }
}

#[test]
fn a_principal_gone_or_renamed_is_reported() {
    let alice = grantee(PrincipalType::IamUser, "alice");
    let g = grant(ResourceType::S3Bucket, &alice);
    let mut snap = snapshot(&g, &[], &[], &[]);
    snap.users[0].id = "id-alice-recreated".into();
    let gone = drift::principal(&snap, &g).unwrap_err();
    assert_eq!(gone.kind, FindingKind::PrincipalChanged);
    assert!(gone.evidence.contains("id-alice-recreated"), "{gone:?}");
    let mut snap = snapshot(&g, &[], &[], &[]);
    snap.users[0].name = "alice-renamed".into();
    let principal = drift::principal(&snap, &g).unwrap();
    assert_eq!(drift::renamed(&g, principal).unwrap().kind, FindingKind::PrincipalChanged);
}

#[test]
fn only_this_installations_policies_are_its_orphans() {
    let tags = |installation: Option<Uuid>| {
        let mut tags = vec![("managed-by".to_string(), "jit-iam".to_string())];
        tags.extend(installation.map(|i| ("jit-iam:installation-id".to_string(), i.to_string())));
        tags
    };
    assert!(drift::orphan("arn", &tags(Some(INSTALLATION)), INSTALLATION).is_some());
    assert!(drift::orphan("arn", &tags(Some(Uuid::from_u128(8))), INSTALLATION).is_none(), "another installation's");
    assert!(drift::orphan("arn", &tags(None), INSTALLATION).is_none(), "from before installation ids");
}

#[tokio::test]
async fn a_leftover_policy_is_detached_from_everyone_then_its_versions_then_itself_deleted() {
    let iam = MemoryIam::default();
    let alice = grantee(PrincipalType::IamUser, "alice");
    let g = grant(ResourceType::S3Bucket, &alice);
    let arn = policy_arn(&g).to_string();
    let mut snap = snapshot(&g, &[&arn], &[], &["{}", "{}"]);
    snap.groups.insert("ops".into(), vec![arn.clone()]);
    drift::remove_policy(&iam, &snap, &arn, ACCOUNT).await.unwrap();
    assert_eq!(
        iam.calls(),
        ["iam:DetachUserPolicy", "iam:DetachGroupPolicy", "iam:DeletePolicyVersion", "iam:DeletePolicy"]
    );
    let ended = Grant { holds_attachment: false, ..grant(ResourceType::IamPolicy, &alice) };
    let snap = snapshot(&ended, &[SHARED_POLICY], &[], &[]);
    assert_eq!(drift::given_again(&snap, &ended).unwrap().kind, FindingKind::AccessLeftAfterEnd);
}

#[test]
fn the_mechanism_is_chosen_by_resource_type_and_principal_type() {
    use PrincipalType::{
        IamRole as Role, IamUser as User, IdentityCenterGroup as IcGroup, IdentityCenterUser as IcUser,
    };
    let table = [
        (ResourceType::Ec2Instance, User, Some(Mechanism::GeneratedPolicy)),
        (ResourceType::Ec2Instance, Role, Some(Mechanism::GeneratedPolicy)),
        (ResourceType::S3Bucket, User, Some(Mechanism::GeneratedPolicy)),
        (ResourceType::S3Bucket, Role, Some(Mechanism::GeneratedPolicy)),
        (ResourceType::IamRole, User, Some(Mechanism::GeneratedPolicy)),
        (ResourceType::IamRole, Role, Some(Mechanism::GeneratedPolicy)),
        (ResourceType::IamPolicy, User, Some(Mechanism::AttachPolicy)),
        (ResourceType::IamPolicy, Role, Some(Mechanism::AttachPolicy)),
        (ResourceType::IamGroup, User, Some(Mechanism::GroupMembership)),
        // Groups have users as members, never roles.
        (ResourceType::IamGroup, Role, None),
        (ResourceType::IamUser, User, None),
        (ResourceType::IamUser, Role, None),
        // Identity Center groups to Identity Center users only.
        (ResourceType::IdentityCenterGroup, IcUser, Some(Mechanism::IdentityCenterMembership)),
        (ResourceType::IdentityCenterGroup, User, None),
        (ResourceType::IdentityCenterGroup, Role, None),
        // IAM's resources to Identity Center users: temporary permission sets.
        (ResourceType::Ec2Instance, IcUser, Some(Mechanism::TemporaryPermissionSet)),
        (ResourceType::S3Bucket, IcUser, Some(Mechanism::TemporaryPermissionSet)),
        (ResourceType::IamRole, IcUser, Some(Mechanism::TemporaryPermissionSet)),
        (ResourceType::IamPolicy, IcUser, None),
        (ResourceType::IamGroup, IcUser, None),
        (ResourceType::IamUser, IcUser, None),
        (ResourceType::IdentityCenterUser, User, None),
        (ResourceType::IdentityCenterUser, Role, None),
        (ResourceType::IdentityCenterUser, IcUser, None),
        // Permission sets are assigned to Identity Center users and groups.
        (ResourceType::PermissionSet, User, None),
        (ResourceType::PermissionSet, Role, None),
        (ResourceType::PermissionSet, IcUser, Some(Mechanism::PermissionSetAssignment)),
        (ResourceType::PermissionSet, IcGroup, Some(Mechanism::PermissionSetAssignment)),
        // Identity Center groups: assignments and temporary permission sets.
        (ResourceType::Ec2Instance, IcGroup, Some(Mechanism::TemporaryPermissionSet)),
        (ResourceType::S3Bucket, IcGroup, Some(Mechanism::TemporaryPermissionSet)),
        (ResourceType::IamRole, IcGroup, Some(Mechanism::TemporaryPermissionSet)),
        (ResourceType::IamPolicy, IcGroup, None),
        (ResourceType::IamGroup, IcGroup, None),
        (ResourceType::IamUser, IcGroup, None),
        (ResourceType::IdentityCenterGroup, IcGroup, None),
        (ResourceType::IdentityCenterUser, IcGroup, None),
    ];
    assert_eq!(table.len(), ResourceType::ALL.len() * PrincipalType::ALL.len(), "every pairing is decided");
    for (resource_type, principal_type, expected) in table {
        assert_eq!(mechanism(resource_type, principal_type), expected, "{resource_type:?} to {principal_type:?}");
    }
    let grantable: Vec<_> = ResourceType::ALL.iter().copied().filter(|t| is_grantable(*t)).collect();
    assert_eq!(grantable.len(), ResourceType::ALL.len() - 2, "all but users: {grantable:?}");
    assert!(!is_grantable(ResourceType::IamUser) && !is_grantable(ResourceType::IdentityCenterUser));
    assert!(is_grantable(ResourceType::PermissionSet));
    assert!(Mechanism::AttachPolicy.is_shared() && Mechanism::GroupMembership.is_shared());
    assert!(Mechanism::IdentityCenterMembership.is_shared() && Mechanism::PermissionSetAssignment.is_shared());
    assert!(!Mechanism::GeneratedPolicy.is_shared() && !Mechanism::TemporaryPermissionSet.is_shared());
}

/// A stored grant no mechanism carries (a role in a group) changes nothing
/// in IAM: refused when applied, nothing to take away when undone.
#[tokio::test]
async fn a_grant_no_mechanism_carries_changes_nothing() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let g = grant(ResourceType::IamGroup, &grantee(PrincipalType::IamRole, "worker"));
    assert_eq!(mechanism_of(&g), None);
    let refused = apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err();
    assert!(!refused.is_retryable(), "{refused:?}");
    assert_eq!(revoke(&iam, &mut ledger, &g).await.unwrap().unwrap(), None);
    assert!(iam.calls().is_empty());
    let principal = PrincipalState { id: "id-worker".into(), name: "worker".into(), ..Default::default() };
    let snap = snapshot(&g, &[], &[], &[]);
    assert!(drift::of_active_grant(&mut ledger, &snap, &g, &principal).await.unwrap().is_empty());
    assert!(drift::given_again(&snap, &g).is_none());
}

fn a_submission<'a>() -> submission::Submission<'a> {
    submission::Submission {
        integration_id: Uuid::nil(),
        resource_id: Some(Uuid::nil()),
        resource_arn: None,
        access_level: AccessLevel::Read,
        principal_type: PrincipalType::IamUser,
        principal_name: "alice",
        duration_seconds: Some(3600),
        expires_at: None,
        request_id: "REQ-1",
        approved_by: "bob",
        reason: None,
        account_id: None,
    }
}

/// The form is refused before anything is looked up, naming the field.
#[test]
fn a_submissions_form_is_refused_naming_the_field() {
    use submission::Submission;
    let refused_on = |s: Submission<'_>| match s.form() {
        Err(Refusal::Invalid { field, .. }) => field,
        other => panic!("not refused: {other:?}"),
    };
    let long = "x".repeat(257);
    let reason = "x".repeat(2001);
    assert_eq!(refused_on(Submission { request_id: " ", ..a_submission() }), "request_id");
    assert_eq!(refused_on(Submission { request_id: &long, ..a_submission() }), "request_id");
    assert_eq!(refused_on(Submission { approved_by: "bob\n", ..a_submission() }), "approved_by");
    assert_eq!(refused_on(Submission { reason: Some(&reason), ..a_submission() }), "reason");
    assert_eq!(refused_on(Submission { resource_arn: Some("arn:aws:s3:::data"), ..a_submission() }), "resource_id");
    assert_eq!(refused_on(Submission { resource_id: None, ..a_submission() }), "resource_id");
    assert_eq!(refused_on(Submission { duration_seconds: None, ..a_submission() }), "duration_seconds");
    let both = Submission { expires_at: Some(Utc::now()), ..a_submission() };
    assert_eq!(refused_on(both), "duration_seconds");
    assert!(matches!(a_submission().form(), Ok(submission::Length::Seconds(3600))));
}

/// A request id again: the same grant with the same body, refused with another.
#[test]
fn a_request_id_again_is_the_same_grant_only_with_the_same_body() {
    use submission::Submission;
    let alice = grantee(PrincipalType::IamUser, "alice");
    let stored = Grant { request_fingerprint: a_submission().fingerprint(), ..grant(ResourceType::S3Bucket, &alice) };
    let id = stored.grant_id;
    assert_eq!(submission::replay(stored.clone(), &a_submission()).unwrap().grant_id, id);
    let others = [
        Submission { duration_seconds: Some(3601), ..a_submission() },
        Submission { reason: Some("incident"), ..a_submission() },
        Submission { principal_type: PrincipalType::IamRole, ..a_submission() },
        Submission { approved_by: "carol", ..a_submission() },
    ];
    for other in others {
        assert_ne!(other.fingerprint(), a_submission().fingerprint());
        assert!(matches!(
            submission::replay(stored.clone(), &other),
            Err(Refusal::RequestIdConflict { message }) if message.contains("`REQ-1`")
        ));
    }
}

#[test]
fn an_extension_is_refused_unless_it_ends_later() {
    use submission::Length;
    let g = grant(ResourceType::S3Bucket, &grantee(PrincipalType::IamUser, "alice"));
    let field = |length| match submission::new_expiry(&g, length) {
        Err(Refusal::Invalid { field, .. }) => field,
        other => panic!("not refused: {other:?}"),
    };
    assert_eq!(field(Length::Seconds(0)), "duration_seconds");
    assert_eq!(field(Length::Seconds(i64::MAX)), "duration_seconds");
    assert_eq!(field(Length::Until(g.expires_at)), "expires_at");
    let later = submission::new_expiry(&g, Length::Seconds(60)).unwrap();
    assert_eq!(later, g.expires_at + chrono::Duration::seconds(60));
}

const IC_APPLY: [&str; 3] =
    ["identitystore:GetGroupMembershipId", "identitystore:GetUserId", "identitystore:CreateGroupMembership"];
const IC_REVOKE: [&str; 2] = ["identitystore:GetGroupMembershipId", "identitystore:DeleteGroupMembership"];

#[tokio::test]
async fn an_identity_center_membership_is_made_by_ids_then_deleted() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let g = grant(ResourceType::IdentityCenterGroup, &carol);
    assert_eq!(mechanism_of(&g), Some(Mechanism::IdentityCenterMembership));
    assert!(apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap(), "holds the membership");
    assert_eq!(iam.calls(), IC_APPLY);
    assert!(iam.in_ic_group(IC_GROUP, "id-carol"));
    // A crash after CreateGroupMembership leaves the record "attaching": the
    // retry finds the membership, does not make it twice, and keeps it the grant's own.
    ledger.records.values_mut().for_each(|r| r.state = "attaching".into());
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    assert_eq!(iam.calls(), IC_APPLY[..2]);
    assert!(ledger.records.values().all(|r| !r.preexisting && r.state == "attached"));
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert_eq!(iam.calls(), IC_REVOKE);
    assert!(iam.ic_members.lock().unwrap().is_empty());
    assert!(ledger.records.is_empty());
}

#[tokio::test]
async fn a_standing_identity_center_membership_survives_every_grant_ending() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    iam.add_ic_member(IC_GROUP, "id-carol");
    let (first, second) =
        (grant(ResourceType::IdentityCenterGroup, &carol), grant(ResourceType::IdentityCenterGroup, &carol));
    apply(&iam, &mut ledger, &first, &QUOTAS).await.unwrap().unwrap();
    apply(&iam, &mut ledger, &second, &QUOTAS).await.unwrap().unwrap();
    assert_eq!(iam.calls(), IC_APPLY[..2], "nothing to make; the second grant joins the first");
    ledger.holders.insert((carol.clone(), first.resource_arn.clone()), 1);
    revoke(&iam, &mut ledger, &first).await.unwrap().unwrap();
    ledger.holders.clear();
    revoke(&iam, &mut ledger, &second).await.unwrap().unwrap();
    assert!(iam.calls().is_empty(), "a member before any grant: never removed");
    assert!(iam.in_ic_group(IC_GROUP, "id-carol"));
}

#[tokio::test]
async fn an_identity_center_membership_stays_while_an_overlapping_grant_holds_it() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let (first, second) =
        (grant(ResourceType::IdentityCenterGroup, &carol), grant(ResourceType::IdentityCenterGroup, &carol));
    apply(&iam, &mut ledger, &first, &QUOTAS).await.unwrap().unwrap();
    apply(&iam, &mut ledger, &second, &QUOTAS).await.unwrap().unwrap();
    assert_eq!(iam.calls(), IC_APPLY, "made once, by the first");
    ledger.holders.insert((carol.clone(), first.resource_arn.clone()), 1);
    revoke(&iam, &mut ledger, &first).await.unwrap().unwrap();
    assert!(iam.calls().is_empty());
    assert!(iam.in_ic_group(IC_GROUP, "id-carol"), "the second grant still needs it");
    ledger.holders.clear();
    revoke(&iam, &mut ledger, &second).await.unwrap().unwrap();
    assert_eq!(iam.calls(), IC_REVOKE, "removed by the last holder");
    assert!(!iam.in_ic_group(IC_GROUP, "id-carol"));
}

#[tokio::test]
async fn a_recreated_identity_center_user_is_never_the_grantee() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let g = grant(ResourceType::IdentityCenterGroup, &carol);
    iam.recreate(&carol);
    let error = apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err();
    assert_eq!(error.into_grant_error().code, GrantErrorCode::PrincipalChanged);
    assert!(iam.ic_members.lock().unwrap().is_empty(), "nothing made");
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();

    // Applied, then carol recreated and the new carol added by an admin: the
    // revocation looks for the approved user's membership only.
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    iam.recreate(&carol);
    iam.add_ic_member(IC_GROUP, "id-carol-recreated");
    iam.calls();
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert_eq!(iam.calls(), IC_REVOKE[..1], "the approved user's membership went with it");
    assert!(iam.in_ic_group(IC_GROUP, "id-carol-recreated"), "the new carol keeps hers");
}

#[tokio::test]
async fn a_failed_identity_center_membership_is_retried_and_undone_cleanly() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let g = grant(ResourceType::IdentityCenterGroup, &carol);
    iam.fail_next("identitystore:CreateGroupMembership", AwsErrorKind::Throttled);
    assert!(apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err().is_retryable());
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    assert_eq!(iam.ic_members.lock().unwrap().len(), 1);
    iam.calls();
    iam.fail_next("identitystore:DeleteGroupMembership", AwsErrorKind::Transient);
    assert!(revoke(&iam, &mut ledger, &g).await.unwrap().unwrap_err().is_retryable());
    assert!(iam.in_ic_group(IC_GROUP, "id-carol"), "still recorded as the grant's: retried whole");
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert!(iam.ic_members.lock().unwrap().is_empty());
}

#[test]
fn identity_center_groups_go_to_identity_center_users_only() {
    use PrincipalType as To;
    use ResourceType as Of;
    assert_eq!(mechanism(Of::IdentityCenterGroup, To::IdentityCenterUser), Some(Mechanism::IdentityCenterMembership));
    for (of, to) in [
        (Of::IdentityCenterGroup, To::IamUser),
        (Of::IdentityCenterGroup, To::IamRole),
        (Of::IamGroup, To::IdentityCenterUser),
        (Of::IamPolicy, To::IdentityCenterUser),
        (Of::PermissionSet, To::IamUser),
    ] {
        assert_eq!(mechanism(of, to), None, "{of:?} to {to:?}");
    }
    assert!(not_for(Of::IamPolicy, To::IdentityCenterUser).contains("permission_set"));
    assert!(not_for(Of::IdentityCenterGroup, To::IamUser).contains("identity_center_user"));
}

#[tokio::test]
async fn an_identity_center_membership_removed_by_someone_is_found_and_put_back() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let mut g = grant(ResourceType::IdentityCenterGroup, &carol);
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    g.holds_attachment = true;
    assert!(!drift::covers(&g), "not in the IAM snapshot");
    assert!(drift::of_identity_center_grant(&iam, &mut ledger, &g).await.unwrap().unwrap().is_empty());
    iam.ic_members.lock().unwrap().clear();
    iam.calls();
    let drifts = drift::of_identity_center_grant(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert_eq!(drifts.iter().map(|d| d.kind).collect::<Vec<_>>(), [FindingKind::AccessMissing]);
    let snap = IamSnapshot::default();
    let repaired = drift::repair(&iam, &mut ledger, &snap, &g, None, &drifts[0], INSTALLATION).await.unwrap();
    assert_eq!(repaired.unwrap(), Repaired::Restored);
    assert!(iam.in_ic_group(IC_GROUP, "id-carol"));
    assert_eq!(
        iam.calls(),
        ["identitystore:GetUserId", "identitystore:GetGroupMembershipId", "identitystore:CreateGroupMembership"]
    );

    // carol recreated: reported, and the new carol is given nothing.
    iam.recreate(&carol);
    let drifts = drift::of_identity_center_grant(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert_eq!(drifts.iter().map(|d| d.kind).collect::<Vec<_>>(), [FindingKind::PrincipalChanged]);
}

/// The assignment a permission set grant to `to` makes.
fn assignment_to(to: &Grantee) -> Assignment {
    Assignment {
        permission_set_arn: PERMISSION_SET.into(),
        account_id: TARGET_ACCOUNT.into(),
        principal_type: to.principal_type,
        principal_id: format!("id-{}", to.name),
    }
}

#[tokio::test]
async fn a_permission_set_is_assigned_by_ids_in_the_target_account_then_unassigned() {
    for to in [grantee(PrincipalType::IdentityCenterUser, "carol"), grantee(PrincipalType::IdentityCenterGroup, "ops")]
    {
        let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
        let g = grant(ResourceType::PermissionSet, &to);
        assert_eq!(mechanism_of(&g), Some(Mechanism::PermissionSetAssignment));
        assert!(apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap(), "holds the assignment");
        let get_id = if to.principal_type == PrincipalType::IdentityCenterGroup {
            "identitystore:GetGroupId"
        } else {
            "identitystore:GetUserId"
        };
        assert_eq!(iam.calls(), ["sso:ListAccountAssignments", get_id, "sso:CreateAccountAssignment"]);
        assert!(iam.assignments.lock().unwrap().contains(&assignment_to(&to)));
        revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
        assert_eq!(iam.calls(), ["sso:DeleteAccountAssignment"]);
        assert!(iam.assignments.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_standing_assignment_survives_and_an_overlapping_grant_keeps_it() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    // Assigned by an admin before any grant.
    iam.assignments.lock().unwrap().insert(assignment_to(&carol));
    let (first, second) = (grant(ResourceType::PermissionSet, &carol), grant(ResourceType::PermissionSet, &carol));
    apply(&iam, &mut ledger, &first, &QUOTAS).await.unwrap().unwrap();
    apply(&iam, &mut ledger, &second, &QUOTAS).await.unwrap().unwrap();
    assert!(!iam.calls().contains(&"sso:CreateAccountAssignment"), "already assigned: nothing created");
    ledger.holders.insert((carol.clone(), PERMISSION_SET.into()), 1);
    revoke(&iam, &mut ledger, &first).await.unwrap().unwrap();
    ledger.holders.clear();
    revoke(&iam, &mut ledger, &second).await.unwrap().unwrap();
    assert!(!iam.calls().contains(&"sso:DeleteAccountAssignment"), "the admin's assignment is never deleted");
    assert!(iam.assignments.lock().unwrap().contains(&assignment_to(&carol)));

    // Made by jit-iam: kept while an overlapping grant holds it, deleted with the last.
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let (first, second) = (grant(ResourceType::PermissionSet, &carol), grant(ResourceType::PermissionSet, &carol));
    apply(&iam, &mut ledger, &first, &QUOTAS).await.unwrap().unwrap();
    apply(&iam, &mut ledger, &second, &QUOTAS).await.unwrap().unwrap();
    ledger.holders.insert((carol.clone(), PERMISSION_SET.into()), 1);
    revoke(&iam, &mut ledger, &first).await.unwrap().unwrap();
    assert!(iam.assignments.lock().unwrap().contains(&assignment_to(&carol)), "the second grant still holds it");
    ledger.holders.clear();
    revoke(&iam, &mut ledger, &second).await.unwrap().unwrap();
    assert!(iam.assignments.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_provisioning_fails_the_grant_and_one_in_progress_is_looked_at_again() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let g = grant(ResourceType::PermissionSet, &carol);
    *iam.next_provisioning.lock().unwrap() = Some(Provisioning::Failed("the account's role quota is reached".into()));
    let error = apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err();
    assert!(!error.is_retryable());
    let error = error.into_grant_error();
    assert_eq!(error.code, GrantErrorCode::ProvisioningFailed);
    assert!(error.message.contains("role quota"), "{}", error.message);
    // Undone: nothing to delete, the record goes.
    revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
    assert!(iam.assignments.lock().unwrap().is_empty());

    let g = grant(ResourceType::PermissionSet, &carol);
    *iam.next_provisioning.lock().unwrap() = Some(Provisioning::InProgress);
    let error = apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err();
    assert!(error.is_retryable(), "never active before it succeeded: retried");
    assert_eq!(error.into_grant_error().code, GrantErrorCode::ProvisioningInProgress);
    iam.calls();
    // The retry finds the assignment AWS went on to make, and does not make another.
    assert!(apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap());
    assert!(!iam.calls().contains(&"sso:CreateAccountAssignment"));
}

#[test]
fn a_permission_set_grant_names_an_active_account_with_room() {
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let ps = resource(ResourceType::PermissionSet, PERMISSION_SET);
    let principal = resource(ResourceType::IdentityCenterUser, "arn:aws:identitystore:::user/id-carol");
    let room = TargetAccount { status: "ACTIVE".into(), provisioned: 49, provisioned_here: false };
    let full = TargetAccount { provisioned: 50, ..room.clone() };
    let full_but_here = TargetAccount { provisioned_here: true, ..full.clone() };
    let suspended = TargetAccount { status: "SUSPENDED".into(), ..room.clone() };
    let plan_with = |target: Option<(&str, Option<&TargetAccount>)>| {
        let request = Request { target_account: target, ..request(&ps, AccessLevel::Assign, &carol, &principal) };
        plan(&request, &QUOTAS)
    };
    assert!(plan_with(Some((TARGET_ACCOUNT, Some(&room)))).is_ok());
    assert!(plan_with(Some((TARGET_ACCOUNT, Some(&full_but_here)))).is_ok(), "provisioned already: no new slot");
    assert!(refused_on(plan_with(None), "account_id"), "the account is required");
    assert!(refused_on(plan_with(Some((TARGET_ACCOUNT, None))), "account_id"), "not the integration's");
    assert!(refused_on(plan_with(Some((TARGET_ACCOUNT, Some(&suspended)))), "account_id"));
    assert!(matches!(plan_with(Some((TARGET_ACCOUNT, Some(&full)))), Err(Refusal::Quota { field: "account_id", .. })));
}

#[test]
fn session_durations_are_read_from_iso_8601() {
    use crate::aws::iam_changes::iso8601_seconds;
    assert_eq!(iso8601_seconds("PT1H"), Some(3600));
    assert_eq!(iso8601_seconds("PT12H"), Some(43200));
    assert_eq!(iso8601_seconds("PT8H30M"), Some(30600));
    assert_eq!(iso8601_seconds("PT90M"), Some(5400));
    for bad in ["", "PT", "1H", "PT1D", "PTH", "PT0H"] {
        assert_eq!(iso8601_seconds(bad), None, "{bad}");
    }
}

#[tokio::test]
async fn a_temporary_permission_set_is_made_recorded_assigned_then_unassigned_and_deleted() {
    for to in [grantee(PrincipalType::IdentityCenterUser, "carol"), grantee(PrincipalType::IdentityCenterGroup, "ops")]
    {
        let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
        let mut g = grant(ResourceType::S3Bucket, &to);
        assert_eq!(mechanism_of(&g), Some(Mechanism::TemporaryPermissionSet));
        assert!(!apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap(), "holds no shared attachment");
        let get_id = match to.principal_type {
            PrincipalType::IdentityCenterGroup => "identitystore:GetGroupId",
            _ => "identitystore:GetUserId",
        };
        assert_eq!(
            iam.calls(),
            ["sso:CreatePermissionSet", get_id, "sso:PutInlinePolicyToPermissionSet", "sso:CreateAccountAssignment"]
        );
        let arn = ledger.permission_sets.get(&g.grant_id).cloned().expect("the ARN is recorded");
        let (name, inline) = iam.permission_sets.lock().unwrap()[&arn].clone();
        assert_eq!(Some(name), g.policy_name);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&inline).ok(),
            serde_json::to_value(&g.policy_document).ok()
        );
        let assignment =
            Assignment { permission_set_arn: arn.clone(), account_id: ACCOUNT.into(), ..assignment_to(&to) };
        assert!(iam.assignments.lock().unwrap().contains(&assignment), "in the resource's account, by id");

        g.policy_arn = Some(arn.clone());
        revoke(&iam, &mut ledger, &g).await.unwrap().unwrap();
        assert_eq!(iam.calls(), ["sso:DeleteAccountAssignment", "sso:DeletePermissionSet"]);
        assert!(iam.assignments.lock().unwrap().is_empty() && iam.permission_sets.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_retried_temporary_permission_set_goes_on_from_the_recorded_one_and_an_unmade_one_needs_no_undo() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let mut g = grant(ResourceType::Ec2Instance, &carol);
    // The first try made it, recorded it, and failed to assign it.
    iam.fail_next("sso:CreateAccountAssignment", AwsErrorKind::Throttled);
    assert!(apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap_err().is_retryable());
    g.policy_arn = ledger.permission_sets.get(&g.grant_id).cloned();
    iam.calls();
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    assert_eq!(
        iam.calls(),
        ["identitystore:GetUserId", "sso:PutInlinePolicyToPermissionSet", "sso:CreateAccountAssignment"],
        "no second permission set"
    );
    assert_eq!(iam.permission_sets.lock().unwrap().len(), 1);

    // Refused before any permission set was made: the undo has nothing to do.
    let never = grant(ResourceType::Ec2Instance, &carol);
    iam.fail_next("sso:CreatePermissionSet", AwsErrorKind::AccessDenied);
    assert!(!apply(&iam, &mut ledger, &never, &QUOTAS).await.unwrap().unwrap_err().is_retryable());
    iam.calls();
    revoke(&iam, &mut ledger, &never).await.unwrap().unwrap();
    assert!(iam.calls().is_empty());
}

#[tokio::test]
async fn a_temporary_permission_set_edited_unassigned_or_deleted_is_found_and_put_back() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let mut g = grant(ResourceType::IamRole, &carol);
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    let arn = ledger.permission_sets[&g.grant_id].clone();
    g.policy_arn = Some(arn.clone());
    assert!(!drift::covers(&g), "read from Identity Center, not the IAM snapshot");
    let g2 = g;
    assert!(drift::of_identity_center_grant(&iam, &mut ledger, &g2).await.unwrap().unwrap().is_empty());

    // Edited and unassigned by an admin: both found, both put back.
    iam.permission_sets.lock().unwrap().get_mut(&arn).unwrap().1 = r#"{"Statement":[]}"#.into();
    iam.assignments.lock().unwrap().clear();
    let found = drift::of_identity_center_grant(&iam, &mut ledger, &g2).await.unwrap().unwrap();
    let kinds: Vec<_> = found.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, [FindingKind::PolicyModified, FindingKind::AccessMissing]);
    for finding in &found {
        let snapshot = IamSnapshot::default();
        drift::repair(&iam, &mut ledger, &snapshot, &g2, None, finding, Uuid::nil()).await.unwrap().unwrap();
    }
    assert!(iam.calls().contains(&"sso:ProvisionPermissionSet"), "the account's role takes the document again");
    assert!(drift::of_identity_center_grant(&iam, &mut ledger, &g2).await.unwrap().unwrap().is_empty());

    // Deleted: made again, and the new one recorded.
    iam.permission_sets.lock().unwrap().clear();
    iam.assignments.lock().unwrap().clear();
    let found = drift::of_identity_center_grant(&iam, &mut ledger, &g2).await.unwrap().unwrap();
    assert_eq!(found.iter().map(|d| d.kind).collect::<Vec<_>>(), [FindingKind::AccessMissing]);
    drift::repair(&iam, &mut ledger, &IamSnapshot::default(), &g2, None, &found[0], Uuid::nil())
        .await
        .unwrap()
        .unwrap();
    let remade = ledger.permission_sets[&g2.grant_id].clone();
    assert_ne!(remade, arn);
    assert_eq!(iam.assignments.lock().unwrap().len(), 1);
}

#[test]
fn a_temporary_permission_set_needs_room_in_the_instance_and_the_account() {
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let bucket = resource(ResourceType::S3Bucket, "arn:aws:s3:::data");
    let principal = resource(ResourceType::IdentityCenterUser, "arn:aws:identitystore:::user/id-carol");
    let plan_with = |room: PermissionSetRoom| {
        let request =
            Request { permission_set_room: Some(&room), ..request(&bucket, AccessLevel::Read, &carol, &principal) };
        plan(&request, &QUOTAS)
    };
    let plan = plan_with(PermissionSetRoom { in_instance: 1999, in_account: 49 }).unwrap();
    assert_eq!(plan.mechanism, Mechanism::TemporaryPermissionSet);
    assert!(plan.policy.is_some(), "the inline policy is the generated document");
    for full in
        [PermissionSetRoom { in_instance: 2000, in_account: 0 }, PermissionSetRoom { in_instance: 0, in_account: 50 }]
    {
        assert!(matches!(plan_with(full), Err(Refusal::Quota { field: "resource_id", .. })), "{full:?}");
    }
}

#[tokio::test]
async fn a_permission_set_made_by_a_try_that_died_before_recording_it_is_adopted_and_no_other() {
    let (iam, mut ledger) = (MemoryIam::default(), MemoryLedger::default());
    let carol = grantee(PrincipalType::IdentityCenterUser, "carol");
    let g = grant(ResourceType::S3Bucket, &carol);
    // The first try made it; the process died before its ARN was recorded.
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    let made = ledger.permission_sets.remove(&g.grant_id).unwrap();
    iam.assignments.lock().unwrap().clear();
    iam.calls();
    apply(&iam, &mut ledger, &g, &QUOTAS).await.unwrap().unwrap();
    assert_eq!(ledger.permission_sets[&g.grant_id], made, "adopted, not made twice");
    assert_eq!(iam.permission_sets.lock().unwrap().len(), 1);

    // Someone else's permission set under the name: never adopted.
    let other = grant(ResourceType::S3Bucket, &carol);
    let taken = TemporaryPermissionSet {
        description: "an admin's".into(),
        ..TemporaryPermissionSet::for_grant(other.grant_id, None)
    };
    iam.create_permission_set(&taken, "PT1H").await.unwrap();
    let error = apply(&iam, &mut ledger, &other, &QUOTAS).await.unwrap().unwrap_err();
    assert_eq!(error.into_grant_error().code, GrantErrorCode::PolicyConflict);
}
