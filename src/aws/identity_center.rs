//! IAM Identity Center: finding the instance, and listing its users, groups
//! and permission sets for the inventory. The instance lives in the
//! integration's root account (an organization's management account or its
//! delegated administrator) and region; only that account lists it.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::error::{AwsError, AwsErrorKind};
use super::inventory::{all_pages, CallLimiter, Page};
use super::pool::AwsClients;
use crate::domain::integration::IdentityCenterOptions;
use crate::domain::resource::{DiscoveredResource, ResourceType};

/// The largest page every Identity Center list call accepts.
const PAGE_SIZE: i32 = 100;

/// An Identity Center instance and its identity store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub instance_arn: String,
    pub identity_store_id: String,
}

/// What the inventory records of an Identity Center user or group: its
/// identity-store id (`unique_id`, read by grantee lookups as for IAM
/// principals), which a recreated user or group of the same name does not have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalDetails {
    pub unique_id: String,
    pub identity_store_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// What the inventory records of a permission set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionSetDetails {
    pub instance_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// ISO 8601 (`PT1H`): how long the sessions it gives last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_duration: Option<String>,
    /// The accounts it is provisioned to.
    pub account_ids: Vec<String>,
}

/// Every instance the caller's account sees (sso:ListInstances).
pub async fn list_instances(
    sso_admin: &aws_sdk_ssoadmin::Client,
    limiter: &CallLimiter,
) -> Result<Vec<Instance>, AwsError> {
    const OPERATION: &str = "sso:ListInstances";
    all_pages(OPERATION, |token| async move {
        let page = limiter
            .send(OPERATION, sso_admin.list_instances().max_results(PAGE_SIZE).set_next_token(token).send())
            .await?;
        let items = page
            .instances()
            .iter()
            .filter_map(|i| {
                Some(Instance {
                    instance_arn: i.instance_arn()?.to_string(),
                    identity_store_id: i.identity_store_id()?.to_string(),
                })
            })
            .collect();
        Ok(Page { items, next: page.next_token().map(str::to_string) })
    })
    .await
}

/// The instance `options` names, among those listed: the one given, or the
/// only one there is.
pub fn choose(listed: &[Instance], options: &IdentityCenterOptions) -> Result<Instance, AwsError> {
    let refuse = |message: String| AwsError::new(AwsErrorKind::NotFound, "sso:ListInstances", message);
    if let Some(arn) = &options.instance_arn {
        return match listed.iter().find(|i| i.instance_arn == *arn) {
            Some(found) if Some(&found.identity_store_id) == options.identity_store_id.as_ref() => Ok(found.clone()),
            Some(found) => Err(refuse(format!(
                "instance {arn} has identity store {}, not {}",
                found.identity_store_id,
                options.identity_store_id.as_deref().unwrap_or_default()
            ))),
            None => Err(refuse(format!("instance {arn} is not visible to the root account in this region"))),
        };
    }
    match listed {
        [only] => Ok(only.clone()),
        [] => Err(refuse("no IAM Identity Center instance is visible to the root account in this region".into())),
        _ => Err(refuse(format!(
            "{} Identity Center instances are visible: set options.identity_center.instance_arn and identity_store_id",
            listed.len()
        ))),
    }
}

/// The instance of the integration: as configured (no call), or discovered
/// once per revision of the integration (the clients are built per revision,
/// so changed options discover afresh; a failure is not remembered).
pub async fn instance(
    clients: &AwsClients,
    options: &IdentityCenterOptions,
    limiter: &CallLimiter,
) -> Result<Instance, AwsError> {
    if let (Some(instance_arn), Some(identity_store_id)) = (&options.instance_arn, &options.identity_store_id) {
        return Ok(Instance { instance_arn: instance_arn.clone(), identity_store_id: identity_store_id.clone() });
    }
    clients
        .identity_center_instance
        .get_or_try_init(|| async { choose(&list_instances(&clients.sso_admin, limiter).await?, options) })
        .await
        .cloned()
}

/// Users, groups and permission sets of the integration's instance.
pub async fn list(
    clients: &AwsClients,
    options: &IdentityCenterOptions,
    limiter: &CallLimiter,
) -> Result<Vec<DiscoveredResource>, AwsError> {
    let instance = instance(clients, options, limiter).await?;
    let (users, groups, permission_sets) = tokio::try_join!(
        list_users(clients, &instance, limiter),
        list_groups(clients, &instance, limiter),
        list_permission_sets(clients, &instance, limiter),
    )?;
    Ok([users, groups, permission_sets].into_iter().flatten().collect())
}

fn principal(resource_type: ResourceType, arn: String, name: String, details: PrincipalDetails) -> DiscoveredResource {
    DiscoveredResource {
        resource_type,
        arn,
        name,
        region: None,
        // Identity Center users and groups carry no tags.
        tags: BTreeMap::new(),
        details: serde_json::to_value(details).expect("principal details serialize"),
    }
}

async fn list_users(
    clients: &AwsClients,
    instance: &Instance,
    limiter: &CallLimiter,
) -> Result<Vec<DiscoveredResource>, AwsError> {
    const OPERATION: &str = "identitystore:ListUsers";
    let store = &instance.identity_store_id;
    let users = all_pages(OPERATION, |token| async move {
        let request = clients.identity_store.list_users().identity_store_id(store).max_results(PAGE_SIZE);
        let page = limiter.send(OPERATION, request.set_next_token(token).send()).await?;
        Ok(Page { items: page.users().to_vec(), next: page.next_token().map(str::to_string) })
    })
    .await?;
    let partition = clients.role.partition.as_str();
    Ok(users
        .into_iter()
        .filter(|user| !user.user_id().is_empty())
        .map(|user| {
            let id = user.user_id().to_string();
            let details = PrincipalDetails {
                unique_id: id.clone(),
                identity_store_id: store.clone(),
                display_name: user.display_name().map(str::to_string),
            };
            principal(
                ResourceType::IdentityCenterUser,
                format!("arn:{partition}:identitystore:::user/{id}"),
                user.user_name().unwrap_or(&id).to_string(),
                details,
            )
        })
        .collect())
}

async fn list_groups(
    clients: &AwsClients,
    instance: &Instance,
    limiter: &CallLimiter,
) -> Result<Vec<DiscoveredResource>, AwsError> {
    const OPERATION: &str = "identitystore:ListGroups";
    let store = &instance.identity_store_id;
    let groups = all_pages(OPERATION, |token| async move {
        let request = clients.identity_store.list_groups().identity_store_id(store).max_results(PAGE_SIZE);
        let page = limiter.send(OPERATION, request.set_next_token(token).send()).await?;
        Ok(Page { items: page.groups().to_vec(), next: page.next_token().map(str::to_string) })
    })
    .await?;
    let partition = clients.role.partition.as_str();
    Ok(groups
        .into_iter()
        .filter(|group| !group.group_id().is_empty())
        .map(|group| {
            let id = group.group_id().to_string();
            let details = PrincipalDetails {
                unique_id: id.clone(),
                identity_store_id: store.clone(),
                display_name: group.display_name().map(str::to_string),
            };
            principal(
                ResourceType::IdentityCenterGroup,
                format!("arn:{partition}:identitystore:::group/{id}"),
                group.display_name().unwrap_or(&id).to_string(),
                details,
            )
        })
        .collect())
}

/// Permission sets, each with its description, session duration, tags and
/// the accounts it is provisioned to (three calls each).
async fn list_permission_sets(
    clients: &AwsClients,
    instance: &Instance,
    limiter: &CallLimiter,
) -> Result<Vec<DiscoveredResource>, AwsError> {
    const OPERATION: &str = "sso:ListPermissionSets";
    let instance_arn = &instance.instance_arn;
    let arns = all_pages(OPERATION, |token| async move {
        let request = clients.sso_admin.list_permission_sets().instance_arn(instance_arn).max_results(PAGE_SIZE);
        let page = limiter.send(OPERATION, request.set_next_token(token).send()).await?;
        Ok(Page { items: page.permission_sets().to_vec(), next: page.next_token().map(str::to_string) })
    })
    .await?;
    futures::stream::iter(arns)
        .map(|arn| permission_set(clients, instance_arn, arn, limiter))
        .buffer_unordered(limiter.concurrency())
        .try_collect()
        .await
}

async fn permission_set(
    clients: &AwsClients,
    instance_arn: &str,
    arn: String,
    limiter: &CallLimiter,
) -> Result<DiscoveredResource, AwsError> {
    let describe = clients.sso_admin.describe_permission_set().instance_arn(instance_arn).permission_set_arn(&arn);
    let (described, tags, account_ids) = tokio::try_join!(
        limiter.send("sso:DescribePermissionSet", describe.send()),
        permission_set_tags(clients, instance_arn, &arn, limiter),
        provisioned_accounts(clients, instance_arn, &arn, limiter),
    )?;
    let described = described.permission_set();
    let details = PermissionSetDetails {
        instance_arn: instance_arn.to_string(),
        description: described.and_then(|p| p.description()).map(str::to_string),
        session_duration: described.and_then(|p| p.session_duration()).map(str::to_string),
        account_ids,
    };
    Ok(DiscoveredResource {
        resource_type: ResourceType::PermissionSet,
        name: described.and_then(|p| p.name()).unwrap_or(&arn).to_string(),
        arn,
        region: None,
        tags,
        details: serde_json::to_value(details).expect("permission set details serialize"),
    })
}

async fn permission_set_tags(
    clients: &AwsClients,
    instance_arn: &str,
    arn: &str,
    limiter: &CallLimiter,
) -> Result<BTreeMap<String, String>, AwsError> {
    const OPERATION: &str = "sso:ListTagsForResource";
    let tags = all_pages(OPERATION, |token| async move {
        let request = clients.sso_admin.list_tags_for_resource().instance_arn(instance_arn).resource_arn(arn);
        let page = limiter.send(OPERATION, request.set_next_token(token).send()).await?;
        Ok(Page { items: page.tags().to_vec(), next: page.next_token().map(str::to_string) })
    })
    .await?;
    Ok(tags.iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())
}

async fn provisioned_accounts(
    clients: &AwsClients,
    instance_arn: &str,
    arn: &str,
    limiter: &CallLimiter,
) -> Result<Vec<String>, AwsError> {
    const OPERATION: &str = "sso:ListAccountsForProvisionedPermissionSet";
    let mut accounts = all_pages(OPERATION, |token| async move {
        let request = clients
            .sso_admin
            .list_accounts_for_provisioned_permission_set()
            .instance_arn(instance_arn)
            .permission_set_arn(arn)
            .max_results(PAGE_SIZE);
        let page = limiter.send(OPERATION, request.set_next_token(token).send()).await?;
        Ok(Page { items: page.account_ids().to_vec(), next: page.next_token().map(str::to_string) })
    })
    .await?;
    accounts.sort_unstable();
    accounts.dedup();
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(n: u8) -> Instance {
        Instance {
            instance_arn: format!("arn:aws:sso:::instance/ssoins-{n}234567890abcdef"),
            identity_store_id: format!("d-{n}234567890"),
        }
    }

    #[test]
    fn the_only_instance_is_discovered_and_a_given_one_must_be_listed() {
        let discover = IdentityCenterOptions::default();
        assert_eq!(choose(&[instance(1)], &discover).unwrap(), instance(1));
        assert_eq!(choose(&[], &discover).unwrap_err().kind, AwsErrorKind::NotFound);
        let two = choose(&[instance(1), instance(2)], &discover).unwrap_err();
        assert!(two.message.contains("instance_arn"), "{two}");

        let given = |i: &Instance| IdentityCenterOptions {
            instance_arn: Some(i.instance_arn.clone()),
            identity_store_id: Some(i.identity_store_id.clone()),
        };
        assert_eq!(choose(&[instance(1), instance(2)], &given(&instance(2))).unwrap(), instance(2));
        assert!(choose(&[instance(1)], &given(&instance(2))).is_err());
        let wrong_store =
            IdentityCenterOptions { identity_store_id: Some("d-9999999999".into()), ..given(&instance(1)) };
        assert!(choose(&[instance(1)], &wrong_store).unwrap_err().message.contains("d-9999999999"));
    }
}
