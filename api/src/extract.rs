//! Extractors whose rejections are [`ApiError`]s (problem+json): JSON
//! bodies (400 for bad JSON or types, 413 over the limit), query strings
//! and path segments (400), the correlation id and the admin token.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body. The `Content-Type` is not checked: a body that parses is
/// accepted, one that does not is a 400 with the path of the bad field.
pub struct JsonBody<T>(pub T);

/// A JSON body that may be absent (empty, or JSON `null`: the OpenAPI
/// document states such a body as nullable), for commands with optional
/// input.
pub struct OptionalJsonBody<T>(pub Option<T>);

async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::BadRequest(format!(
                "could not read the request body: {}",
                rejection.body_text()
            )),
        })
}

/// Parses JSON, naming the offending field on a type error. Text fields
/// are checked where they are turned into commands (`dto::convert`, the
/// domain): no control characters, NUL among them, ever reaches the store.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|error| ApiError::BadRequest(format!("the body is not valid JSON: {error}")))?;
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let what = match inner.classify() {
            serde_json::error::Category::Data if path != "." => {
                format!("invalid field `{path}`: {inner}")
            }
            serde_json::error::Category::Data => format!("invalid body: {inner}"),
            _ => format!("the body is not valid JSON: {inner}"),
        };
        ApiError::BadRequest(what)
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        parse_json::<Option<T>>(&bytes).map(OptionalJsonBody)
    }
}

/// Query parameters; a value that does not parse is a 400.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection| {
                ApiError::BadRequest(format!("invalid query string: {}", rejection.body_text()))
            })
    }
}

/// Path segments as strings; each handler parses its own ids so that an
/// id that cannot exist is a 404 for it, not a routing error.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParams(value))
            .map_err(|rejection| {
                ApiError::BadRequest(format!("invalid path: {}", rejection.body_text()))
            })
    }
}

/// The request's correlation id (see `correlation.rs`).
pub use crate::correlation::CorrelationId;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Reason {
        reason: String,
    }

    async fn optional(body: &'static str) -> Result<Option<Reason>, ApiError> {
        let request = Request::builder()
            .body(axum::body::Body::from(body))
            .expect("a request");
        OptionalJsonBody::<Reason>::from_request(request, &())
            .await
            .map(|OptionalJsonBody(body)| body)
    }

    #[tokio::test]
    async fn an_optional_body_may_be_empty_or_null_but_not_of_another_type() {
        assert_eq!(optional("").await.ok(), Some(None));
        assert_eq!(optional(" \n").await.ok(), Some(None));
        assert_eq!(optional("null").await.ok(), Some(None));
        assert_eq!(
            optional(r#"{"reason":"changed my mind"}"#).await.ok(),
            Some(Some(Reason {
                reason: "changed my mind".into()
            }))
        );
        assert!(matches!(optional("5").await, Err(ApiError::BadRequest(_))));
        assert!(matches!(optional("{").await, Err(ApiError::BadRequest(_))));
    }
}
