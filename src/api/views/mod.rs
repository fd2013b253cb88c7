//! The JSON shapes of the API with their schemas, one module per resource,
//! built from the domain's entities and values: what the API sends can change
//! without touching them, and `domain` never carries schema annotations.

pub mod audit;
pub mod aws_error;
pub mod check;
pub mod grant;
pub mod integration;
pub mod policy;
pub mod reconcile;
pub mod resource;
pub mod setup;
pub mod sync;
pub mod webhook;

/// The schema of a domain enum sent by name (`wire_enum!`): a string of its
/// names, in declaration order, with the description the document gives it.
macro_rules! enum_schema {
    ($name:path $(, $description:literal)?) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .enum_values(Some(<$name>::ALL.iter().map(|value| value.as_str())))
                    $(.description(Some($description)))?
                    .build()
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
use enum_schema;
