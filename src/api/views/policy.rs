//! IAM policy documents.

use super::enum_schema;
use crate::domain::policy::Effect;

enum_schema!(Effect);
