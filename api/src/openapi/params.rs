//! The bounds of the query, path and header parameters, stated in the
//! document from the constants the handlers check, by parameter name: one
//! place says what `limit` or `after` accepts, for every operation that
//! takes it. `routes::paging` and the handlers refuse exactly what these
//! schemas exclude (a schemathesis run in CI holds them to it).

use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{OpenApi, RefOr, Schema};
use utoipa::Modify;

use crate::routes::paging::{
    EVENTS_AFTER_PATTERN, HISTORY_AFTER_PATTERN, LOG_CURSOR_PATTERN, MAX_LIMIT,
};

/// A SKU in a path: an identifier, but not `.` or `..`, which URL
/// normalisation would remove from the path before it is sent.
pub const SKU_PATH_PATTERN: &str = r"^(?!\.\.?$)[A-Za-z0-9._-]{1,64}$";
/// Idempotency keys: 1-255 visible ASCII characters.
pub const IDEMPOTENCY_KEY_PATTERN: &str = r"^[!-~]{1,255}$";

pub struct ParameterBounds;

impl Modify for ParameterBounds {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                bound_parameters(path, operation);
            }
        }
    }
}

fn bound_parameters(path: &str, operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if let Some(schema) = bounds(path, parameter) {
            parameter.schema = Some(RefOr::T(schema));
        }
    }
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn bounds(path: &str, parameter: &Parameter) -> Option<Schema> {
    let schema = match (parameter.parameter_in.clone(), parameter.name.as_str()) {
        (ParameterIn::Query, "limit") => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT)),
        (ParameterIn::Query, "from_version") => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(0)),
        (ParameterIn::Query, "after") => {
            let pattern = if path == "/events" {
                EVENTS_AFTER_PATTERN
            } else if path.ends_with("/history") && path.starts_with("/inventory") {
                HISTORY_AFTER_PATTERN
            } else {
                LOG_CURSOR_PATTERN
            };
            string().pattern(Some(pattern))
        }
        (ParameterIn::Query, "at" | "from" | "to" | "as_of") => {
            string().format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        }
        (ParameterIn::Query, "direction") => string().enum_values(Some(["forward", "backward"])),
        (ParameterIn::Path, "sku") => string().pattern(Some(SKU_PATH_PATTERN)),
        (ParameterIn::Header, "Idempotency-Key") => string().pattern(Some(IDEMPOTENCY_KEY_PATTERN)),
        _ => return None,
    };
    Some(schema.build().into())
}
