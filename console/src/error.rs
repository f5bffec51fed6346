//! [`ConsoleError`]: every failure of a console endpoint, answered as
//! `application/problem+json` in the API's shape (5xx bodies opaque, the
//! chain logged).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use event_store::StoreError;
use projections::operations::OperationsError;
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";

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

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: String,
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
    let title = status.canonical_reason().unwrap_or("Error");
    let body = Problem {
        problem_type: format!(
            "https://orderstream.dev/problems/{}",
            title.to_ascii_lowercase().replace(' ', "-")
        ),
        title,
        status: status.as_u16(),
        detail,
    };
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
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
