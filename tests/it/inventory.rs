//! The inventory: syncs from moto into Postgres, and browsing it.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_credential_types::Credentials;
use serde_json::{json, Value};

use crate::support::{eventually, random_account_id, unique, Account, Moto, TestServer};

fn single_account(name: &str, account_id: &str, options: Value) -> Value {
    json!({
        "name": name,
        "connection": "single_account",
        "root_account": {
            "account_id": account_id,
            "access_role_arn": format!("arn:aws:iam::{account_id}:role/jit-iam-access"),
            "external_id": "external-id-123",
            "region": "us-east-1"
        },
        "options": options
    })
}

fn names(items: &[Value]) -> BTreeSet<String> {
    items.iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn single_account_sync_stores_every_type_with_tags_and_regions() {
    let moto = Moto::shared();
    let account = moto.account(&random_account_id()).await;
    let bucket = unique("bkt");
    let untagged_bucket = unique("bare");
    account.create_user("alice", &[("team", "a")]).await;
    account.create_group("devs").await;
    account.create_role("reader", &[("env", "prod")]).await;
    account.create_policy("readonly", "/", &[("env", "prod")]).await;
    // jit-iam's own grant policies are never offered.
    account.create_policy("jit-iam-previous-grant", "/jit-iam/", &[]).await;
    account.create_bucket(&bucket, &[("env", "prod")]).await;
    account.create_bucket(&untagged_bucket, &[]).await;
    let east = account.run_instances("us-east-1", 2, &[("Name", "web"), ("env", "prod")]).await;
    account.run_instances("eu-west-1", 1, &[]).await;
    let outside = account.run_instances("ap-south-1", 1, &[]).await;
    account.ec2("us-east-1").terminate_instances().instance_ids(&east[1]).send().await.unwrap();

    let server = TestServer::start().await;
    let integration = server
        .create_integration(single_account("inventory", &account.id, json!({"regions": ["us-east-1", "eu-west-1"]})))
        .await;
    let id = integration["id"].as_str().unwrap();
    let run = server.wait_for_sync(id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["trigger"], "created");
    assert_eq!(
        run["counts"],
        json!({"ec2_instance": 2, "iam_group": 1, "iam_policy": 1, "iam_role": 1, "iam_user": 1, "s3_bucket": 2})
    );
    assert!(run["aws_calls"].as_i64().unwrap() >= 8, "{run}");
    assert_eq!(run["accounts"][0]["account_id"], account.id.as_str());
    assert_eq!(run["accounts"][0]["status"], "succeeded");

    let all = server.browse_all(&format!("integration_id={id}")).await;
    assert_eq!(all.len(), 8, "{all:?}");
    let by_type = |t: &str| all.iter().filter(|r| r["type"] == t).cloned().collect::<Vec<_>>();
    let instances = by_type("ec2_instance");
    let web = instances.iter().find(|i| i["name"] == "web").expect("the running us-east-1 instance");
    assert_eq!(web["arn"], format!("arn:aws:ec2:us-east-1:{}:instance/{}", account.id, east[0]));
    assert_eq!(web["region"], "us-east-1");
    assert_eq!(web["tags"], json!({"Name": "web", "env": "prod"}));
    assert_eq!(web["access_levels"], json!(["connect", "operate", "admin"]));
    assert!(!all.iter().any(|r| r["arn"].as_str().unwrap().contains(&outside[0])), "ap-south-1 is not listed");
    let buckets = by_type("s3_bucket");
    let tagged = buckets.iter().find(|b| b["name"] == bucket.as_str()).unwrap();
    assert_eq!(
        (tagged["arn"].as_str().unwrap(), &tagged["tags"]),
        (format!("arn:aws:s3:::{bucket}").as_str(), &json!({"env": "prod"}))
    );
    assert_eq!(tagged["region"], "us-east-1");
    assert_eq!(tagged["access_levels"], json!(["read", "write", "admin"]));
    assert_eq!(buckets.iter().find(|b| b["name"] == untagged_bucket.as_str()).unwrap()["tags"], json!({}));
    assert_eq!(by_type("iam_role")[0]["tags"], json!({"env": "prod"}));
    assert_eq!(by_type("iam_role")[0]["access_levels"], json!(["assume"]));
    assert_eq!(by_type("iam_policy")[0]["name"], "readonly");
    assert_eq!(by_type("iam_policy")[0]["access_levels"], json!(["attach"]));
    assert_eq!(by_type("iam_group")[0]["access_levels"], json!(["member"]));
    let alice = &by_type("iam_user")[0];
    assert_eq!(
        (alice["name"].as_str(), &alice["tags"], &alice["access_levels"]),
        (Some("alice"), &json!({"team": "a"}), &json!([]))
    );

    let (status, one) = server.get(&format!("/v1/resources/{}", web["id"].as_str().unwrap())).await;
    assert_eq!((status.as_u16(), &one), (200, web));
    let east_only = server.browse_all(&format!("integration_id={id}&region=eu-west-1")).await;
    assert_eq!(east_only.len(), 1);
    let found = server.browse_all(&format!("integration_id={id}&q=WEB")).await;
    assert_eq!(names(&found), set(&["web"]));
    let found = server.browse_all(&format!("integration_id={id}&q={}", &bucket[4..])).await;
    assert_eq!(names(&found), set(&[&bucket]));

    // The rows in Postgres: the accounts table knows the last sync.
    let db = server.db().await;
    let (status, synced): (String, Option<String>) =
        sqlx::query_as("select last_sync_status, last_sync_id::text from accounts where account_id = $1")
            .bind(&account.id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!((status.as_str(), synced.as_deref()), ("succeeded", run["id"].as_str()));
}

/// AWS-managed policies, when asked for, come with the next sync.
#[tokio::test]
async fn aws_managed_policies_are_offered_on_request() {
    let moto = Moto::start_with(&[("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")]);
    let account = moto.account(&random_account_id()).await;
    account.create_policy("mine", "/", &[]).await;
    let server = TestServer::builder(&moto).start().await;
    let integration =
        server.create_integration(single_account("managed", &account.id, json!({"regions": ["us-east-1"]}))).await;
    let id = integration["id"].as_str().unwrap();
    server.wait_for_sync(id).await;
    let policies = server.browse_all(&format!("integration_id={id}&type=iam_policy")).await;
    assert_eq!(names(&policies), set(&["mine"]));

    let (status, _) = server
        .patch(&format!("/v1/integrations/{id}"), json!({"options": {"include_aws_managed_policies": true}}))
        .await;
    assert_eq!(status, 200);
    let run = eventually(Duration::from_secs(60), "the sync after the change", || async {
        let run = server.wait_for_sync(id).await;
        (run["trigger"] == "updated").then_some(run)
    })
    .await;
    assert_eq!(run["status"], "succeeded");
    let policies = server.browse_all(&format!("integration_id={id}&type=iam_policy&limit=1000")).await;
    assert!(policies.len() > 100, "AWS-managed policies listed: {}", policies.len());
    assert!(policies.iter().any(|p| p["arn"] == "arn:aws:iam::aws:policy/ReadOnlyAccess"));
}

#[tokio::test]
async fn tag_filters_or_values_and_and_keys() {
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_role("prod-a", &[("env", "prod"), ("team", "a")]).await;
    account.create_role("dev-a", &[("env", "dev"), ("team", "a")]).await;
    account.create_role("prod-only", &[("env", "prod")]).await;
    account.create_role("test-a", &[("env", "test"), ("team", "a")]).await;
    account.create_role("untagged", &[]).await;
    account.create_user("bob", &[]).await;

    let server = TestServer::start().await;
    let options = json!({"regions": ["us-east-1"],
                         "tags": [{"key": "env", "value": "prod"}, {"key": "env", "value": "dev"}, {"key": "team", "value": "a"}]});
    let integration = server.create_integration(single_account("filtered", &account.id, options)).await;
    let id = integration["id"].as_str().unwrap();
    assert_eq!(server.wait_for_sync(id).await["status"], "succeeded");

    let roles = server.browse_all(&format!("integration_id={id}&type=iam_role")).await;
    assert_eq!(names(&roles), set(&["prod-a", "dev-a"]));
    // Users are grantees: never filtered by tags.
    assert_eq!(names(&server.browse_all(&format!("integration_id={id}&type=iam_user")).await), set(&["bob"]));
    // Every tag of every resource is stored, offered or not.
    let stored: i64 = sqlx::query_scalar("select count(*) from resources where type = 'iam_role' and tags <> '{}'")
        .fetch_one(&server.db().await)
        .await
        .unwrap();
    assert_eq!(stored, 4);

    // Browse filters follow the same rule.
    for (query, expected) in [
        ("tag=env:prod", vec!["prod-a"]),
        ("tag=env:prod&tag=env:dev", vec!["prod-a", "dev-a"]),
        ("tag=team:a&tag=env:dev", vec!["dev-a"]),
        ("tag=env:nope", vec![]),
    ] {
        let found = server.browse_all(&format!("integration_id={id}&type=iam_role&{query}")).await;
        assert_eq!(names(&found), set(&expected), "{query}");
    }

    // A new filter applies at once, before any sync.
    let (status, _) = server
        .patch(&format!("/v1/integrations/{id}"), json!({"options": {"tags": [{"key": "env", "value": "prod"}]}}))
        .await;
    assert_eq!(status, 200);
    let roles = server.browse_all(&format!("integration_id={id}&type=iam_role")).await;
    assert_eq!(names(&roles), set(&["prod-a", "prod-only"]));
    let (status, _) = server.patch(&format!("/v1/integrations/{id}"), json!({"options": {"tags": []}})).await;
    assert_eq!(status, 200);
    let roles = server.browse_all(&format!("integration_id={id}&type=iam_role")).await;
    assert_eq!(roles.len(), 5);
}

/// Pages are served from a cache, yet whatever changes the inventory through
/// any replica shows at once on every replica: pages are cached per inventory
/// version, which every such change bumps.
#[tokio::test]
async fn cached_browse_pages_follow_every_change_on_every_replica() {
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_role("prod-a", &[("env", "prod")]).await;
    account.create_role("dev-a", &[("env", "dev")]).await;
    let first = TestServer::start().await;
    let second = TestServer::builder(Moto::shared()).database(first.db.clone()).start().await;
    let integration =
        first.create_integration(single_account("cached", &account.id, json!({"regions": ["us-east-1"]}))).await;
    let id = integration["id"].as_str().unwrap();
    first.wait_for_sync(id).await;
    let roles = format!("integration_id={id}&type=iam_role");

    assert_eq!(names(&first.browse_all(&roles).await), set(&["prod-a", "dev-a"]));
    let hits = first.metric(r#"jit_iam_browse_pages_total{cache="hit"}"#).await;
    assert_eq!(names(&first.browse_all(&roles).await), set(&["prod-a", "dev-a"]));
    assert_eq!(first.metric(r#"jit_iam_browse_pages_total{cache="hit"}"#).await, hits + 1.0, "served from the cache");

    // A new tag filter, through the other replica.
    let (status, _) = second
        .patch(&format!("/v1/integrations/{id}"), json!({"options": {"tags": [{"key": "env", "value": "prod"}]}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(names(&first.browse_all(&roles).await), set(&["prod-a"]));

    // A sync, run by either replica.
    account.create_role("prod-b", &[("env", "prod")]).await;
    let (status, _) = second.post(&format!("/v1/integrations/{id}/sync"), json!({})).await;
    assert_eq!(status, 202);
    second.wait_for_sync(id).await;
    assert_eq!(names(&first.browse_all(&roles).await), set(&["prod-a", "prod-b"]));

    // Deleting the integration takes its inventory off every page.
    let by_account = format!("account_id={}", account.id);
    assert!(names(&first.browse_all(&by_account).await).contains("prod-b"));
    let (status, _) = second.delete(&format!("/v1/integrations/{id}")).await;
    assert_eq!(status, 204);
    assert!(first.browse_all(&by_account).await.is_empty());
}

#[tokio::test]
async fn resync_removes_what_disappeared_and_keeps_ids() {
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_role("stays", &[]).await;
    account.create_role("goes", &[]).await;
    let server = TestServer::start().await;
    let integration =
        server.create_integration(single_account("resync", &account.id, json!({"regions": ["us-east-1"]}))).await;
    let id = integration["id"].as_str().unwrap();
    server.wait_for_sync(id).await;
    let before = server.browse_all(&format!("integration_id={id}&type=iam_role")).await;
    let id_of = |items: &[Value], name: &str| {
        items.iter().find(|r| r["name"] == name).map(|r| r["id"].as_str().unwrap().to_string())
    };
    let goes = id_of(&before, "goes").unwrap();

    account.iam.delete_role().role_name("goes").send().await.unwrap();
    account.create_role("arrives", &[]).await;
    let (status, run) = server.post(&format!("/v1/integrations/{id}/sync"), json!({})).await;
    assert_eq!(status, 202, "{run}");
    assert_eq!(run["trigger"], "manual");
    assert!(matches!(run["status"].as_str(), Some("queued" | "running")));
    let finished = server.wait_for_sync(id).await;
    assert_eq!((finished["id"].as_str(), finished["status"].as_str()), (run["id"].as_str(), Some("succeeded")));

    let after = server.browse_all(&format!("integration_id={id}&type=iam_role")).await;
    assert_eq!(names(&after), set(&["stays", "arrives"]));
    assert_eq!(id_of(&after, "stays"), id_of(&before, "stays"), "a resource keeps its id across syncs");
    let (status, body) = server.get(&format!("/v1/resources/{goes}")).await;
    assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (404, Some("not_found")));
    let left: i64 = sqlx::query_scalar("select count(*) from resources where resource_id = $1::uuid")
        .bind(&goes)
        .fetch_one(&server.db().await)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// An organization: the root and two members are inventoried; 21 members make
/// organizations:ListAccounts page (moto pages it by 20).
#[tokio::test]
async fn organization_accounts_are_listed_page_by_page_and_synced() {
    let moto = Moto::shared();
    let root = moto.account(&random_account_id()).await;
    root.organizations.create_organization().send().await.unwrap();
    let mut members = Vec::new();
    for i in 0..21 {
        let created = root
            .organizations
            .create_account()
            .email(format!("member{i}@example.com"))
            .account_name(format!("member-{i}"))
            .send()
            .await
            .unwrap();
        members.push(created.create_account_status.unwrap().account_id.unwrap());
    }
    root.create_role("root-role", &[]).await;
    let first = moto.account(&members[0]).await;
    first.create_role("member-role", &[]).await;
    let second = moto.account(&members[1]).await;
    second.create_user("carol", &[]).await;

    let server = TestServer::start().await;
    let mut body = single_account(
        &unique("org"),
        &root.id,
        json!({"regions": ["us-east-1"], "member_role_name": "jit-iam-member"}),
    );
    body["connection"] = json!("organization");
    let integration = server.create_integration(body).await;
    let id = integration["id"].as_str().unwrap();
    let run = server.wait_for_sync(id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["accounts"].as_array().unwrap().len(), 22);

    let (status, page) = server.get(&format!("/v1/integrations/{id}/accounts?limit=1000")).await;
    assert_eq!(status, 200);
    let accounts = page["items"].as_array().unwrap();
    assert_eq!(accounts.len(), 22);
    let root_entry = accounts.iter().find(|a| a["account_id"] == root.id.as_str()).unwrap();
    assert_eq!((root_entry["is_root"].as_bool(), root_entry["status"].as_str()), (Some(true), Some("ACTIVE")));
    let member_entry = accounts.iter().find(|a| a["account_id"] == first.id.as_str()).unwrap();
    assert_eq!(member_entry["name"], "member-0");
    assert_eq!(member_entry["last_sync"]["status"], "succeeded");
    // Paged in account order.
    let (_, first_page) = server.get(&format!("/v1/integrations/{id}/accounts?limit=10")).await;
    let cursor = first_page["next_cursor"].as_str().unwrap();
    let (_, second_page) = server.get(&format!("/v1/integrations/{id}/accounts?limit=10&cursor={cursor}")).await;
    assert!(second_page["items"][0]["account_id"].as_str() > first_page["items"][9]["account_id"].as_str());

    let roles = server.browse_all(&format!("integration_id={id}&type=iam_role")).await;
    // moto, like AWS, creates OrganizationAccountAccessRole in every new member.
    assert_eq!(names(&roles), set(&["root-role", "member-role", "OrganizationAccountAccessRole"]));
    let member_roles = server.browse_all(&format!("integration_id={id}&type=iam_role&account_id={}", first.id)).await;
    assert_eq!(names(&member_roles), set(&["member-role", "OrganizationAccountAccessRole"]));
    let carol = server.browse_all(&format!("integration_id={id}&type=iam_user")).await;
    assert_eq!(carol[0]["account_id"], second.id.as_str());
}

/// IAM enforced: the root's role has exactly the setup policy; one member's
/// role lacks S3 access. That member fails with access denied naming the
/// permission; the root and the other member sync.
#[tokio::test]
async fn a_failing_member_account_does_not_stop_the_others() {
    let moto = Moto::start();
    let root = Account::new(
        "123456789012",
        moto.config(Credentials::new("AKIAIOSFODNN7EXAMPLE", "admin", None, None, "tests"), "us-east-1").await,
    );
    root.create_user("jit-iam-service", &[]).await;
    root.iam
        .put_user_policy()
        .user_name("jit-iam-service")
        .policy_name("assume")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let key = root.iam.create_access_key().user_name("jit-iam-service").send().await.unwrap().access_key.unwrap();
    root.organizations.create_organization().send().await.unwrap();
    let mut members = Vec::new();
    for name in ["healthy", "broken"] {
        let created = root
            .organizations
            .create_account()
            .email(format!("{name}@example.com"))
            .account_name(name)
            .send()
            .await
            .unwrap();
        members.push(moto.account(&created.create_account_status.unwrap().account_id.unwrap()).await);
    }

    let server = TestServer::builder(&moto)
        .env("AWS_ACCESS_KEY_ID", &key.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &key.secret_access_key)
        .start()
        .await;
    // Created before the roles exist: the first sync fails everywhere, which is fine.
    let mut body = single_account(&unique("org"), &root.id, json!({"regions": ["us-east-1"]}));
    body["connection"] = json!("organization");
    let integration = server.create_integration(body).await;
    let id = integration["id"].as_str().unwrap();
    server.wait_for_sync(id).await;
    let (_, setup) = server.get(&format!("/v1/integrations/{id}/setup")).await;
    let trust = setup["root_account"]["trust_policy"].to_string();
    let member_policy = setup["member_accounts"]["permission_policy"].to_string();
    for (account, policy) in [
        (&root, setup["root_account"]["permission_policy"].to_string()),
        (&members[0], member_policy.clone()),
        (&members[1], member_policy.replace("s3:", "s3-denied:")),
    ] {
        account.iam.create_role().role_name("jit-iam-access").assume_role_policy_document(&trust).send().await.unwrap();
        account
            .iam
            .put_role_policy()
            .role_name("jit-iam-access")
            .policy_name("jit-iam")
            .policy_document(policy)
            .send()
            .await
            .unwrap();
    }
    root.create_role("root-role", &[]).await;
    members[0].create_role("healthy-role", &[]).await;
    members[1].create_role("broken-role", &[]).await;
    moto.enforce_iam().await;

    let (status, _) = server.post(&format!("/v1/integrations/{id}/sync"), json!({})).await;
    assert_eq!(status, 202);
    let run = server.wait_for_sync(id).await;
    assert_eq!(run["status"], "partial", "{run}");
    let result_of = |account: &str| {
        run["accounts"].as_array().unwrap().iter().find(|a| a["account_id"] == account).unwrap().clone()
    };
    assert_eq!(result_of(&root.id)["status"], "succeeded", "{run}");
    assert_eq!(result_of(&members[0].id)["status"], "succeeded", "{run}");
    let broken = result_of(&members[1].id);
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["error"]["http_status"], 403, "{broken}");
    assert_eq!(broken["error"]["permission"], "s3:ListAllMyBuckets", "{broken}");
    // The run says why at run level too, naming the account.
    let summary = run["error"]["message"].as_str().unwrap_or_default();
    assert!(summary.starts_with(&format!("account {}: ", members[1].id)), "{run}");
    assert_eq!(run["error"]["permission"], "s3:ListAllMyBuckets", "{run}");

    let roles = server.browse_all(&format!("integration_id={id}&type=iam_role")).await;
    let listed = names(&roles);
    assert!(listed.contains("root-role") && listed.contains("healthy-role"), "{listed:?}");
    assert!(!listed.contains("broken-role"));
    let (_, accounts) = server.get(&format!("/v1/integrations/{id}/accounts")).await;
    let broken_account = accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == members[1].id.as_str())
        .unwrap()
        .clone();
    assert_eq!(broken_account["last_sync"]["status"], "failed");
    assert_eq!(broken_account["last_sync"]["error"]["permission"], "s3:ListAllMyBuckets");
}

/// moto answers ListPolicies with an empty last page when the count is a
/// multiple of the page size (1,000): the sync follows the token, not the count.
#[tokio::test]
async fn a_thousand_policies_are_listed_across_pages() {
    let account = Moto::shared().account(&random_account_id()).await;
    let creates: Vec<_> = (0..1000)
        .map(|i| {
            let account = &account;
            async move { account.create_policy(&format!("policy-{i:04}"), "/", &[]).await }
        })
        .collect();
    futures::stream::iter(creates).buffer_unordered(8).collect::<Vec<_>>().await;
    let server = TestServer::start().await;
    let integration =
        server.create_integration(single_account("many", &account.id, json!({"regions": ["us-east-1"]}))).await;
    let id = integration["id"].as_str().unwrap();
    let run = server.wait_for_sync(id).await;
    assert_eq!(run["counts"]["iam_policy"], 1000, "{run}");
    let policies = server.browse_all(&format!("integration_id={id}&type=iam_policy&limit=1000")).await;
    assert_eq!(policies.len(), 1000);
}

use futures::StreamExt;

/// Two replicas on one database, many sync requests at once: one run at a time.
#[tokio::test]
async fn concurrent_sync_requests_on_two_replicas_run_one_sync_at_a_time() {
    let account = Moto::shared().account(&random_account_id()).await;
    account.create_role("r", &[]).await;
    let first = TestServer::start().await;
    let second = TestServer::builder(Moto::shared()).database(first.db.clone()).start().await;
    let integration =
        first.create_integration(single_account("replicated", &account.id, json!({"regions": ["us-east-1"]}))).await;
    let id = integration["id"].as_str().unwrap().to_string();
    first.wait_for_sync(&id).await;

    let path = format!("/v1/integrations/{id}/sync");
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let server = if i % 2 == 0 { &first } else { &second };
            let path = path.clone();
            async move { server.post(&path, json!({})).await }
        })
        .collect();
    let answers = futures::future::join_all(requests).await;
    assert!(answers.iter().all(|(status, _)| status.as_u16() == 202));
    let distinct: BTreeSet<&str> = answers.iter().map(|(_, run)| run["id"].as_str().unwrap()).collect();
    assert!(distinct.len() <= 3, "20 concurrent requests made {} runs", distinct.len());
    first.wait_for_sync(&id).await;

    // No two runs of the integration ever overlapped in time.
    let runs: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "select started_at, finished_at from sync_runs where integration_id = $1::uuid order by started_at",
    )
    .bind(&id)
    .fetch_all(&first.db().await)
    .await
    .unwrap();
    assert_eq!(runs.len(), distinct.len() + 1);
    for pair in runs.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlap: {pair:?}");
    }
}

#[tokio::test]
async fn a_sync_is_scheduled_every_interval() {
    let account = Moto::shared().account(&random_account_id()).await;
    let server = TestServer::builder(Moto::shared()).env("JIT_IAM_SYNC_INTERVAL", "10s").start().await;
    let integration =
        server.create_integration(single_account("scheduled", &account.id, json!({"regions": ["us-east-1"]}))).await;
    let id = integration["id"].as_str().unwrap();
    eventually(Duration::from_secs(40), "a scheduled sync", || async {
        let (_, page) = server.get(&format!("/v1/integrations/{id}/syncs")).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["trigger"] == "scheduled" && r["status"] == "succeeded")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn browse_pages_are_stable_and_complete() {
    let account = Moto::shared().account(&random_account_id()).await;
    for i in 0..25 {
        account.create_role(&format!("role-{i:02}"), &[]).await;
    }
    let server = TestServer::start().await;
    let integration =
        server.create_integration(single_account("paged", &account.id, json!({"regions": ["us-east-1"]}))).await;
    let id = integration["id"].as_str().unwrap();
    server.wait_for_sync(id).await;
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/resources?integration_id={id}&type=iam_role&limit=10&cursor={c}"),
            None => format!("/v1/resources?integration_id={id}&type=iam_role&limit=10"),
        };
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200, "{page}");
        pages.push(page["items"].as_array().unwrap().len());
        let ids: Vec<&str> = page["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "stable id order");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, [10, 10, 5]);
    let all = server.browse_all(&format!("integration_id={id}&type=iam_role&limit=7")).await;
    assert_eq!(names(&all).len(), 25);
}

#[tokio::test]
async fn bad_browse_input_is_400_naming_the_parameter_and_unknown_ids_are_404() {
    let server = TestServer::start().await;
    for (query, field) in [
        ("type=ec2", "type"),
        ("tag=novalue", "tag"),
        ("tag=:value", "tag"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("account_id=12", "account_id"),
        ("region=moon-1", "region"),
        ("integration_id=abc", "integration_id"),
        ("type=iam_role&type=iam_user", "type"),
        ("sort=name", "sort"),
    ] {
        let (status, body) = server.get(&format!("/v1/resources?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(
            (body["error"]["code"].as_str(), body["error"]["field"].as_str()),
            (Some("invalid_parameter"), Some(field)),
            "{query}"
        );
    }
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/v1/resources?integration_id={unknown}"),
        format!("/v1/resources/{unknown}"),
        format!("/v1/integrations/{unknown}/syncs"),
        format!("/v1/integrations/{unknown}/syncs/{unknown}"),
        format!("/v1/integrations/{unknown}/accounts"),
    ] {
        let (status, body) = server.get(&path).await;
        assert_eq!((status.as_u16(), body["error"]["code"].as_str()), (404, Some("not_found")), "{path}");
    }
    let (status, _) = server.post(&format!("/v1/integrations/{unknown}/sync"), json!({})).await;
    assert_eq!(status, 404);
}
