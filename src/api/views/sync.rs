//! Inventory sync runs and accounts.

use super::enum_schema;
use crate::domain::sync::{AccountSyncStatus, SyncStatus, SyncTrigger};

enum_schema!(SyncTrigger);
enum_schema!(SyncStatus);
enum_schema!(AccountSyncStatus);
