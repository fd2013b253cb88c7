//! Domain types and the rules that govern them, free of HTTP, SQL and AWS SDK concerns.

pub mod access;
pub mod arn;
pub mod audit;
pub mod caller;
pub mod grant;
pub mod integration;
pub mod policy;
pub mod reconcile;
pub mod resource;
pub mod sync;
pub mod tags;
pub mod webhook;

/// An enum whose values go over the wire and into the database by name: each
/// name is written once, and serde, `as_str`, `parse` and `ALL` all take it from there.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $($(#[$variant_meta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(value: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == value)
            }
        }
    };
}
pub(crate) use wire_enum;

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

/// An AWS error, as answers, runs and grants record it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AwsErrorBody {
    /// The AWS error code, e.g. `AccessDenied`, `NoSuchEntity`.
    pub code: Option<String>,
    pub message: String,
    /// The AWS call, e.g. `sts:AssumeRole`; for access denied, the permission that is missing.
    pub operation: String,
    pub request_id: Option<String>,
    pub http_status: Option<u16>,
    /// For access denied: the IAM permission the call needs, to add to the role's policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
}
