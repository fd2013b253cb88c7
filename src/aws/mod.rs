//! Everything that talks to AWS: the pool of assumed-role clients, error
//! classification, the connection check, inventory listing (IAM Identity
//! Center's included), IAM changes and the IAM snapshots reconciliation
//! compares grants with.

pub mod check;
pub mod error;
pub mod iam_changes;
pub mod identity_center;
pub mod inventory;
pub mod metrics;
pub mod permissions;
pub mod pool;
pub mod reconcile;
pub mod throttle;

pub use error::{AwsError, AwsErrorKind};
pub use pool::{AwsClients, AwsPool};
