//! The test harness: the real `jit-iam` binary on a fresh Postgres database,
//! talking to moto through the real AWS SDK.

#![allow(dead_code)]

mod moto;
mod server;

use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use rand::Rng;

pub use moto::{die_with_parent, free_port, Moto};
pub use server::{TestDb, TestServer};

/// A random 12-digit account id: each test works in accounts of its own.
pub fn random_account_id() -> String {
    let mut rng = rand::rng();
    format!("{}{:011}", rng.random_range(1..=9), rng.random_range(0..100_000_000_000u64))
}

/// A short random suffix for names that are global in AWS (buckets) or in the database.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple().to_string()[..12].to_string())
}

/// SDK clients acting inside one moto account, to seed and inspect it.
pub struct Account {
    pub id: String,
    pub config: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub organizations: aws_sdk_organizations::Client,
}

impl Account {
    pub fn new(id: &str, config: SdkConfig) -> Self {
        Self {
            id: id.to_string(),
            iam: aws_sdk_iam::Client::new(&config),
            s3: aws_sdk_s3::Client::new(&config),
            organizations: aws_sdk_organizations::Client::new(&config),
            config,
        }
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&self.config)
                .region(aws_config::Region::new(region.to_string()))
                .build(),
        )
    }

    pub fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.id)
    }
}

/// Polls `check` until it returns Some, or fails the test after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
