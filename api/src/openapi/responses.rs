//! The error answers many operations share, defined once as components
//! (`#/components/responses/...`) and referenced by each operation's
//! `responses(...)` (e.g. `(status = 400, response = BadRequest)`). Answers
//! particular to one operation (a 404 or 409 with its own meaning) keep
//! their own description there.

// The structs are never built: each only describes an answer in the document.
#![allow(dead_code)]

use utoipa::ToResponse;

use crate::error::Problem;

/// A malformed request: a parameter or body field of the wrong type or
/// outside the bounds this document states.
#[derive(ToResponse)]
#[response(
    description = "Malformed: a parameter or a body field of the wrong type, or outside its documented bounds",
    content_type = "application/problem+json"
)]
pub struct BadRequest(#[to_schema] Problem);

/// A well-formed command the domain refuses.
#[derive(ToResponse)]
#[response(
    description = "Well-formed but refused by the domain's rules (the detail says which)",
    content_type = "application/problem+json"
)]
pub struct Unprocessable(#[to_schema] Problem);

/// A body over the limit.
#[derive(ToResponse)]
#[response(
    description = "The body is over 1 MiB",
    content_type = "application/problem+json"
)]
pub struct PayloadTooLarge(#[to_schema] Problem);

/// No or a wrong admin token.
#[derive(ToResponse)]
#[response(
    description = "No `Authorization: Bearer` admin token",
    content_type = "application/problem+json"
)]
pub struct Unauthorized(#[to_schema] Problem);

#[derive(ToResponse)]
#[response(
    description = "A wrong admin token, or no admin token is configured",
    content_type = "application/problem+json"
)]
pub struct Forbidden(#[to_schema] Problem);

/// Overload, a request over its time limit, or the database unreachable:
/// worth retrying later.
#[derive(ToResponse)]
#[response(
    description = "Overloaded (with `Retry-After`), over the request time limit, or the database is unavailable: try again later",
    content_type = "application/problem+json",
    headers(("Retry-After" = String, description = "Seconds to wait, when the service is overloaded"))
)]
pub struct Unavailable(#[to_schema] Problem);
