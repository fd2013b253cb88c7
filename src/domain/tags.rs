//! Tag filters: which resources an integration offers.
//!
//! A resource passes when, for every key of the filter, it carries that key with
//! one of the values listed for it: values of one key are OR'd, keys are AND'd,
//! like EC2 filters. The same rule is evaluated in SQL (`tags_match_filter`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::FieldError;

/// One `key`/`value` pair, as the product page's `options.tags` lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagPair {
    /// 1-128 characters, no control characters.
    pub key: String,
    /// At most 256 characters, no control characters.
    pub value: String,
}

pub const MAX_TAG_KEY_LEN: usize = 128;
pub const MAX_TAG_VALUE_LEN: usize = 256;

pub fn validate_tag(key: &str, value: &str, field: &str) -> Result<(), FieldError> {
    let key_len = key.chars().count();
    if key_len == 0 || key_len > MAX_TAG_KEY_LEN {
        return Err(FieldError::new(format!("{field}.key"), "a tag key must be 1-128 characters"));
    }
    if value.chars().count() > MAX_TAG_VALUE_LEN {
        return Err(FieldError::new(format!("{field}.value"), "a tag value must be at most 256 characters"));
    }
    if key.chars().chain(value.chars()).any(char::is_control) {
        return Err(FieldError::new(field, "tags may not contain control characters"));
    }
    Ok(())
}

/// The filter in the form SQL evaluates: key -> accepted values.
pub fn filter_document(pairs: &[TagPair]) -> serde_json::Value {
    let mut by_key: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for pair in pairs {
        by_key.entry(&pair.key).or_default().insert(&pair.value);
    }
    serde_json::json!(by_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_one_key_are_grouped() {
        let pairs = [
            TagPair { key: "env".into(), value: "prod".into() },
            TagPair { key: "env".into(), value: "dev".into() },
            TagPair { key: "team".into(), value: "".into() },
        ];
        assert_eq!(filter_document(&pairs), serde_json::json!({"env": ["dev", "prod"], "team": [""]}));
    }

    #[test]
    fn tag_lengths() {
        assert!(validate_tag("k", "", "t").is_ok());
        assert_eq!(validate_tag("", "v", "t").unwrap_err().field, "t.key");
        assert_eq!(validate_tag(&"k".repeat(129), "v", "t").unwrap_err().field, "t.key");
        assert_eq!(validate_tag("k", &"v".repeat(257), "t").unwrap_err().field, "t.value");
        assert!(validate_tag(&"k".repeat(128), &"v".repeat(256), "t").is_ok());
    }
}
