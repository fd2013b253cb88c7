//! Resources of the inventory.

use super::enum_schema;
use crate::domain::resource::{AccessLevel, ResourceType};

enum_schema!(ResourceType);
enum_schema!(AccessLevel);
