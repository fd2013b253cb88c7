//! Listing what an account holds: every page of every list call, with the
//! largest page size each API allows, a bounded number of calls in flight, and
//! every call counted. Throttling is retried with backoff by the SDK.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_ec2::types::InstanceStateName;
use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput;
use aws_sdk_iam::types::{EntityType, PolicyScopeType};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Semaphore;

use super::error::{AwsError, AwsErrorKind};
use super::identity_center;
use super::pool::AwsClients;
use crate::domain::arn::Partition;
use crate::domain::integration::IntegrationOptions;
use crate::domain::policy::JIT_IAM_POLICY_PATH;
use crate::domain::resource::{DiscoveredResource, PrincipalDetails, ResourceType};

/// Bounds the calls in flight for one account and counts them.
pub struct CallLimiter {
    concurrency: usize,
    permits: Semaphore,
    calls: AtomicU64,
}

impl CallLimiter {
    pub fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self { concurrency, permits: Semaphore::new(concurrency), calls: AtomicU64::new(0) }
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Sends one AWS call (`operation` names it in errors) within the bound.
    pub(crate) async fn send<T, E, Fut>(&self, operation: &str, call: Fut) -> Result<T, AwsError>
    where
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        self.calls.fetch_add(1, Ordering::Relaxed);
        call.await.map_err(|e| AwsError::from_sdk(operation, &e))
    }
}

/// One page of a list call: its items and the token of the next page, if any.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Follows pages until the API says there are no more. Loops on the token,
/// never on item counts: an API may return an empty page that is not the last.
pub async fn all_pages<T, F, Fut>(operation: &str, mut fetch_page: F) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, AwsError>>,
{
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = fetch_page(token.clone()).await?;
        items.extend(page.items);
        match page.next.filter(|next| !next.is_empty()) {
            None => return Ok(items),
            Some(next) if token.as_ref() == Some(&next) => {
                return Err(AwsError::new(
                    AwsErrorKind::Rejected,
                    operation,
                    "the endpoint returned the same page token twice",
                ))
            }
            Some(next) => token = Some(next),
        }
    }
}

/// Lists everything jit-iam inventories in one account; in the root account
/// (`is_root`), IAM Identity Center too when the integration has it.
pub async fn list_account(
    clients: &AwsClients,
    account_id: &str,
    is_root: bool,
    options: &IntegrationOptions,
    limiter: &CallLimiter,
) -> Result<Vec<DiscoveredResource>, AwsError> {
    let identity_center = async {
        match (is_root, &options.identity_center) {
            (true, Some(identity_center)) => identity_center::list(clients, identity_center, limiter).await,
            _ => Ok(Vec::new()),
        }
    };
    let (principals, policies, buckets, instances, identity_center) = tokio::try_join!(
        list_iam_principals(clients, limiter),
        list_policies(clients, options.include_aws_managed_policies, limiter),
        list_buckets(clients, limiter),
        list_instances(clients, account_id, options.regions.as_deref(), limiter),
        identity_center,
    )?;
    Ok([principals, policies, buckets, instances, identity_center].into_iter().flatten().collect())
}

/// The ARNs of a principal's attached managed policies.
pub fn policy_arns(policies: &[aws_sdk_iam::types::AttachedPolicy]) -> Vec<String> {
    policies.iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect()
}

fn iam_tags(tags: &[aws_sdk_iam::types::Tag]) -> BTreeMap<String, String> {
    tags.iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
}

/// Every page of iam:GetAccountAuthorizationDetails for `filters`, 1,000
/// entities a page: the one read both the inventory and reconciliation make.
pub async fn authorization_details(
    clients: &AwsClients,
    limiter: &CallLimiter,
    filters: &[EntityType],
) -> Result<Vec<GetAccountAuthorizationDetailsOutput>, AwsError> {
    const OPERATION: &str = "iam:GetAccountAuthorizationDetails";
    all_pages(OPERATION, |marker| async move {
        let request = clients.iam.get_account_authorization_details().set_filter(Some(filters.to_vec()));
        let page = limiter.send(OPERATION, request.max_items(1000).set_marker(marker).send()).await?;
        let next = if page.is_truncated() { page.marker().map(str::to_string) } else { None };
        Ok(Page { items: vec![page], next })
    })
    .await
}

/// Users (with their groups and attached policies), roles (with tags) and
/// groups, all from iam:GetAccountAuthorizationDetails in pages of 1,000.
async fn list_iam_principals(clients: &AwsClients, limiter: &CallLimiter) -> Result<Vec<DiscoveredResource>, AwsError> {
    let pages =
        authorization_details(clients, limiter, &[EntityType::User, EntityType::Role, EntityType::Group]).await?;
    let mut items = Vec::new();
    for page in pages {
        for user in page.user_detail_list() {
            let details = PrincipalDetails {
                attached_policy_arns: policy_arns(user.attached_managed_policies()),
                group_names: user.group_list().to_vec(),
                unique_id: user.user_id().map(str::to_string),
            };
            items.push(DiscoveredResource {
                resource_type: ResourceType::IamUser,
                arn: user.arn().unwrap_or_default().to_string(),
                name: user.user_name().unwrap_or_default().to_string(),
                region: None,
                tags: iam_tags(user.tags()),
                details: serde_json::to_value(details).expect("user details serialize"),
            });
        }
        for role in page.role_detail_list() {
            // Roles are resources (to assume) and grantees (of other grants).
            let details = PrincipalDetails {
                attached_policy_arns: policy_arns(role.attached_managed_policies()),
                group_names: Vec::new(),
                unique_id: role.role_id().map(str::to_string),
            };
            items.push(DiscoveredResource {
                resource_type: ResourceType::IamRole,
                arn: role.arn().unwrap_or_default().to_string(),
                name: role.role_name().unwrap_or_default().to_string(),
                region: None,
                tags: iam_tags(role.tags()),
                details: serde_json::to_value(details).expect("role details serialize"),
            });
        }
        for group in page.group_detail_list() {
            // IAM groups cannot carry tags.
            items.push(DiscoveredResource {
                resource_type: ResourceType::IamGroup,
                arn: group.arn().unwrap_or_default().to_string(),
                name: group.group_name().unwrap_or_default().to_string(),
                region: None,
                tags: BTreeMap::new(),
                details: serde_json::json!({}),
            });
        }
    }
    Ok(items.into_iter().filter(|r| !r.arn.is_empty()).collect())
}

/// Customer-managed policies with their tags (one iam:ListPolicyTags each),
/// and AWS-managed policies when asked for (they carry no customer tags).
async fn list_policies(
    clients: &AwsClients,
    include_aws_managed: bool,
    limiter: &CallLimiter,
) -> Result<Vec<DiscoveredResource>, AwsError> {
    let mut scopes = vec![PolicyScopeType::Local];
    if include_aws_managed {
        scopes.push(PolicyScopeType::Aws);
    }
    let mut found = Vec::new();
    for scope in scopes {
        const OPERATION: &str = "iam:ListPolicies";
        let policies = all_pages(OPERATION, |marker| {
            let scope = scope.clone();
            async move {
                let page = limiter
                    .send(OPERATION, clients.iam.list_policies().scope(scope).max_items(1000).set_marker(marker).send())
                    .await?;
                let next = if page.is_truncated() { page.marker().map(str::to_string) } else { None };
                Ok(Page { items: page.policies().to_vec(), next })
            }
        })
        .await?;
        let local = scope == PolicyScopeType::Local;
        let policies = policies.into_iter().filter(|p| p.path() != Some(JIT_IAM_POLICY_PATH) && p.arn().is_some());
        let with_tags: Vec<DiscoveredResource> = futures::stream::iter(policies)
            .map(|policy| async move {
                let arn = policy.arn().unwrap_or_default().to_string();
                let tags = if local { policy_tags(clients, &arn, limiter).await? } else { BTreeMap::new() };
                Ok::<_, AwsError>(DiscoveredResource {
                    resource_type: ResourceType::IamPolicy,
                    name: policy.policy_name().unwrap_or_default().to_string(),
                    arn,
                    region: None,
                    tags,
                    details: serde_json::json!({}),
                })
            })
            .buffer_unordered(limiter.concurrency)
            .try_collect()
            .await?;
        found.extend(with_tags);
    }
    Ok(found)
}

pub async fn policy_tags(
    clients: &AwsClients,
    arn: &str,
    limiter: &CallLimiter,
) -> Result<BTreeMap<String, String>, AwsError> {
    const OPERATION: &str = "iam:ListPolicyTags";
    let tags = all_pages(OPERATION, |marker| async move {
        let page = limiter
            .send(OPERATION, clients.iam.list_policy_tags().policy_arn(arn).max_items(1000).set_marker(marker).send())
            .await?;
        let next = if page.is_truncated() { page.marker().map(str::to_string) } else { None };
        Ok(Page { items: page.tags().to_vec(), next })
    })
    .await?;
    Ok(iam_tags(&tags))
}

/// Buckets, each with its region and tags.
async fn list_buckets(clients: &AwsClients, limiter: &CallLimiter) -> Result<Vec<DiscoveredResource>, AwsError> {
    const OPERATION: &str = "s3:ListBuckets";
    let buckets = all_pages(OPERATION, |token| async move {
        let page = limiter
            .send(OPERATION, clients.s3.list_buckets().max_buckets(10_000).set_continuation_token(token).send())
            .await?;
        Ok(Page { items: page.buckets().to_vec(), next: page.continuation_token().map(str::to_string) })
    })
    .await?;
    let partition = clients.role.partition.as_str();
    futures::stream::iter(
        buckets.into_iter().filter_map(|b| Some((b.name()?.to_string(), b.bucket_region().map(str::to_string)))),
    )
    .map(|(name, listed_region)| async move {
        let region = match listed_region {
            Some(region) => region,
            None => bucket_region(clients, &name, limiter).await?,
        };
        let tags = bucket_tags(clients, &name, &region, limiter).await?;
        Ok::<_, AwsError>(DiscoveredResource {
            resource_type: ResourceType::S3Bucket,
            arn: format!("arn:{partition}:s3:::{name}"),
            name,
            region: Some(region),
            tags,
            details: serde_json::json!({}),
        })
    })
    .buffer_unordered(limiter.concurrency)
    .try_collect()
    .await
}

/// For endpoints whose ListBuckets does not say where a bucket lives.
async fn bucket_region(clients: &AwsClients, bucket: &str, limiter: &CallLimiter) -> Result<String, AwsError> {
    let location = limiter.send("s3:GetBucketLocation", clients.s3.get_bucket_location().bucket(bucket).send()).await?;
    Ok(match location.location_constraint().map(|c| c.as_str()) {
        None | Some("") => "us-east-1".to_string(),
        // The legacy name of eu-west-1.
        Some("EU") => "eu-west-1".to_string(),
        Some(region) => region.to_string(),
    })
}

async fn bucket_tags(
    clients: &AwsClients,
    bucket: &str,
    region: &str,
    limiter: &CallLimiter,
) -> Result<BTreeMap<String, String>, AwsError> {
    let answer =
        limiter.send("s3:GetBucketTagging", clients.s3_in(region).get_bucket_tagging().bucket(bucket).send()).await;
    match answer {
        Ok(output) => Ok(output.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()),
        // An untagged bucket answers NoSuchTagSet.
        Err(e) if e.code.as_deref().is_some_and(|c| c.starts_with("NoSuchTagSet")) => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

/// Instances of the configured regions, or of every enabled region.
async fn list_instances(
    clients: &AwsClients,
    account_id: &str,
    regions: Option<&[String]>,
    limiter: &CallLimiter,
) -> Result<Vec<DiscoveredResource>, AwsError> {
    let regions = match regions {
        Some(regions) => regions.to_vec(),
        None => enabled_regions(clients, limiter).await?,
    };
    let per_region: Vec<Vec<DiscoveredResource>> = futures::stream::iter(regions)
        .map(|region| instances_in(clients, account_id, region, limiter))
        .buffer_unordered(limiter.concurrency)
        .try_collect()
        .await?;
    Ok(per_region.into_iter().flatten().collect())
}

async fn enabled_regions(clients: &AwsClients, limiter: &CallLimiter) -> Result<Vec<String>, AwsError> {
    let home = clients.home_region();
    let answer = limiter.send("ec2:DescribeRegions", clients.ec2(&home).describe_regions().send()).await?;
    // Regions of another partition cannot be reached with this partition's credentials.
    let partition = clients.role.partition;
    Ok(answer
        .regions()
        .iter()
        .filter(|r| r.opt_in_status() != Some("not-opted-in"))
        .filter_map(|r| r.region_name().map(str::to_string))
        .filter(|region| Partition::of_region(region) == partition)
        .collect())
}

async fn instances_in(
    clients: &AwsClients,
    account_id: &str,
    region: String,
    limiter: &CallLimiter,
) -> Result<Vec<DiscoveredResource>, AwsError> {
    const OPERATION: &str = "ec2:DescribeInstances";
    let ec2 = clients.ec2(&region);
    let partition = clients.role.partition.as_str();
    let reservations = all_pages(OPERATION, |token| {
        let ec2 = ec2.clone();
        async move {
            let page = limiter
                .send(OPERATION, ec2.describe_instances().max_results(1000).set_next_token(token).send())
                .await?;
            Ok(Page { items: page.reservations().to_vec(), next: page.next_token().map(str::to_string) })
        }
    })
    .await?;
    Ok(reservations
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated))
        .filter_map(|instance| {
            let id = instance.instance_id()?;
            let tags: BTreeMap<String, String> = instance
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                .collect();
            Some(DiscoveredResource {
                resource_type: ResourceType::Ec2Instance,
                arn: format!("arn:{partition}:ec2:{region}:{account_id}:instance/{id}"),
                // The Name tag when there is one: that is what people call it.
                name: tags.get("Name").cloned().unwrap_or_else(|| id.to_string()),
                region: Some(region.clone()),
                tags,
                details: serde_json::json!({}),
            })
        })
        .collect())
}

/// An account of an organization, as organizations:ListAccounts reports it.
pub struct OrganizationAccount {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
}

/// Every account of the organization, in pages of 20 (the API's maximum).
pub async fn list_organization_accounts(
    clients: &AwsClients,
    limiter: &CallLimiter,
) -> Result<Vec<OrganizationAccount>, AwsError> {
    const OPERATION: &str = "organizations:ListAccounts";
    all_pages(OPERATION, |token| async move {
        let page = limiter
            .send(OPERATION, clients.organizations.list_accounts().max_results(20).set_next_token(token).send())
            .await?;
        let items = page
            .accounts()
            .iter()
            .filter_map(|a| {
                Some(OrganizationAccount {
                    id: a.id()?.to_string(),
                    name: a.name().map(str::to_string),
                    status: a.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "ACTIVE".into()),
                })
            })
            .collect();
        Ok(Page { items, next: page.next_token().map(str::to_string) })
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Serves pages from a script, recording the tokens asked for.
    async fn run(pages: Vec<(Vec<u32>, Option<&str>)>) -> (Result<Vec<u32>, AwsError>, Vec<Option<String>>) {
        let asked = Mutex::new(Vec::new());
        let pages = Mutex::new(pages.into_iter());
        let result = all_pages("test:List", |token| {
            asked.lock().unwrap().push(token);
            let (items, next) = pages.lock().unwrap().next().expect("asked for a page past the last");
            async move { Ok(Page { items, next: next.map(str::to_string) }) }
        })
        .await;
        (result, asked.into_inner().unwrap())
    }

    #[tokio::test]
    async fn follows_every_page_by_its_token() {
        let (items, asked) = run(vec![(vec![1, 2], Some("a")), (vec![3], Some("b")), (vec![4], None)]).await;
        assert_eq!(items.unwrap(), [1, 2, 3, 4]);
        assert_eq!(asked, [None, Some("a".into()), Some("b".into())]);
    }

    #[tokio::test]
    async fn an_empty_page_with_a_token_is_not_the_end() {
        let (items, asked) = run(vec![(vec![1], Some("a")), (vec![], Some("b")), (vec![2], None)]).await;
        assert_eq!(items.unwrap(), [1, 2]);
        assert_eq!(asked.len(), 3);
    }

    #[tokio::test]
    async fn an_empty_last_page_ends_and_empty_tokens_end() {
        let (items, _) = run(vec![(vec![1], Some("a")), (vec![], None)]).await;
        assert_eq!(items.unwrap(), [1]);
        let (items, asked) = run(vec![(vec![1], Some(""))]).await;
        assert_eq!((items.unwrap(), asked.len()), (vec![1], 1));
    }

    #[tokio::test]
    async fn a_repeated_token_is_an_error_not_a_loop() {
        let (items, _) = run(vec![(vec![1], Some("a")), (vec![2], Some("a"))]).await;
        assert_eq!(items.unwrap_err().operation, "test:List");
    }
}
