//! Domain types and the rules that govern them, free of HTTP, SQL and AWS SDK concerns.

pub mod access;
pub mod arn;
pub mod grant;
pub mod integration;
pub mod policy;
pub mod resource;
pub mod sync;
pub mod tags;

/// A rule broken by one field of the input; the API answers it with 422 naming `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}
