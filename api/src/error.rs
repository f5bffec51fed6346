//! [`ApiError`]: the one HTTP error type. Every error leaves as
//! `application/problem+json` (RFC 9457); 5xx bodies stay opaque and the
//! full error chain is logged instead.

use aggregates::ErrorKind;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use commands::ExecuteError;
use event_store::StoreError;
use projections::operations::OperationsError;
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, a field has the wrong type, or a query or
    /// header value cannot be parsed.
    #[error("{0}")]
    BadRequest(String),
    #[error("this endpoint needs an Authorization: Bearer token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than the limit of 1 MiB")]
    PayloadTooLarge,
    /// Well-formed but invalid.
    #[error("{0}")]
    Unprocessable(String),
    /// The database cannot be reached: worth retrying later.
    #[error("the database is unavailable")]
    Unavailable(#[source] Source),
    /// A bug, a broken schema or a corrupted store.
    #[error("internal error")]
    Internal(#[source] Source),
}

/// The problem+json body (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

impl ApiError {
    pub fn internal(error: impl Into<Source>) -> Self {
        ApiError::Internal(error.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A domain refusal, by its kind.
    pub fn from_domain(kind: ErrorKind, message: String) -> Self {
        match kind {
            ErrorKind::NotFound => ApiError::NotFound(message),
            ErrorKind::Conflict => ApiError::Conflict(message),
            ErrorKind::Invalid => ApiError::Unprocessable(message),
        }
    }

    /// A failed command: the domain's refusal by its kind, a lost race as
    /// 409, anything else by what the store says.
    pub fn from_execute<E: std::error::Error + Send + Sync + 'static>(
        error: ExecuteError<E>,
        kind: impl FnOnce(&E) -> ErrorKind,
    ) -> Self {
        match error {
            ExecuteError::Domain(domain) => {
                ApiError::from_domain(kind(&domain), domain.to_string())
            }
            conflict @ ExecuteError::Conflict { .. } => ApiError::Conflict(conflict.to_string()),
            ExecuteError::Store(store) => store.into(),
            other => ApiError::internal(other),
        }
    }

    /// The problem type: a stable URI per status.
    fn problem_type(status: StatusCode) -> String {
        format!(
            "https://orderstream.dev/problems/{}",
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace(' ', "-")
        )
    }
}

/// The problem+json response for `status` with `detail`.
pub fn problem_response(status: StatusCode, detail: String) -> Response {
    let problem = Problem {
        problem_type: ApiError::problem_type(status),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
    };
    let mut response = (status, axum::Json(problem)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Unavailable(_) => {
                tracing::warn!(error = %chain(&self), "database unavailable");
                "The database is unavailable; try again later.".to_owned()
            }
            ApiError::Internal(_) => {
                tracing::error!(error = %chain(&self), "request failed");
                "An internal error occurred; it has been logged.".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = problem_response(status, detail);
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `error: cause: cause...`, for logs.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            unavailable if unavailable.is_unavailable() => {
                ApiError::Unavailable(unavailable.into())
            }
            // Cancelled by statement_timeout: nothing written; later may do.
            timeout @ StoreError::Timeout(_) => ApiError::Unavailable(timeout.into()),
            StoreError::InvalidRequest(message) => ApiError::BadRequest(message),
            // Class 22 (data exception): a value the database cannot take,
            // such as text it cannot store. Rolled back, so nothing written.
            StoreError::Database(sqlx::Error::Database(database))
                if database.code().is_some_and(|code| code.starts_with("22")) =>
            {
                ApiError::Unprocessable(format!(
                    "the database refused a value of this request: {}",
                    database.message()
                ))
            }
            conflict @ (StoreError::WrongExpectedVersion { .. }
            | StoreError::EventIdConflict { .. }
            | StoreError::PartialRepeat) => ApiError::Conflict(conflict.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

impl From<OperationsError> for ApiError {
    fn from(error: OperationsError) -> Self {
        match error {
            OperationsError::UnknownSubscription(_) | OperationsError::UnknownProjection(_) => {
                ApiError::NotFound(error.to_string())
            }
            OperationsError::Store(store) => store.into(),
        }
    }
}
