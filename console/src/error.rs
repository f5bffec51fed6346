//! [`ConsoleError`]: every failure of a console endpoint, answered as
//! `application/problem+json` in the API's shape (5xx bodies opaque, the
//! chain logged).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use event_store::StoreError;
use http_hardening::ProblemTypes;
use projections::operations::OperationsError;

/// The API's problem types (`api/src/error.rs`), so a console answer reads
/// like the API's.
const PROBLEM_TYPES: ProblemTypes = ProblemTypes::PerStatus {
    base: "https://orderstream.dev/problems/",
};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("log in to the console first: POST /console/session with the admin token")]
    NoSession,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the request body is larger than the limit of 1 MiB")]
    PayloadTooLarge,
    /// The API answered a status the console cannot turn into a page; its
    /// problem detail is passed on.
    #[error("the API answered {status}: {detail}")]
    Api { status: StatusCode, detail: String },
    /// The API's body was not the JSON the console expects: a bug.
    #[error("unexpected answer from {path}")]
    UnexpectedAnswer {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the database is unavailable")]
    Store(#[from] StoreError),
    #[error("the database is unavailable")]
    Operations(#[from] OperationsError),
}

impl ConsoleError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::NoSession => StatusCode::UNAUTHORIZED,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ConsoleError::Api { status, .. } => *status,
            ConsoleError::UnexpectedAnswer { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ConsoleError::Store(error) => store_status(error),
            ConsoleError::Operations(
                OperationsError::UnknownProjection(_)
                | OperationsError::UnknownSubscription(_)
                | OperationsError::UnknownParkedEvent { .. }
                | OperationsError::UnknownRequest { .. },
            ) => StatusCode::NOT_FOUND,
            ConsoleError::Operations(OperationsError::EarlierParkedInStream { .. }) => {
                StatusCode::CONFLICT
            }
            ConsoleError::Operations(OperationsError::Store(error)) => store_status(error),
        }
    }
}

fn store_status(error: &StoreError) -> StatusCode {
    match error {
        StoreError::Unavailable(_) | StoreError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The problem+json response for `status` with `detail`.
pub fn problem(status: StatusCode, detail: String) -> Response {
    http_hardening::problem(PROBLEM_TYPES, status, "", detail)
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match self {
            // The API's own words, whatever its status.
            ConsoleError::Api { detail, .. } => detail,
            error if status.is_server_error() => {
                tracing::warn!(error = %chain(&error), "console request failed");
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    "The database is unavailable; try again later.".to_owned()
                } else {
                    "An internal error occurred; it has been logged.".to_owned()
                }
            }
            error => error.to_string(),
        };
        problem(status, detail)
    }
}

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
