//! [`ApiError`]: the one HTTP error type. Every error leaves as
//! `application/problem+json` (RFC 9457); 5xx bodies stay opaque and the
//! full error chain is logged instead.

use aggregates::ErrorKind;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use commands::ExecuteError;
use event_store::StoreError;
use http_hardening::ProblemTypes;
use projections::operations::OperationsError;
use serde::Serialize;
use utoipa::ToSchema;

pub use http_hardening::PROBLEM_JSON;

/// One problem type per status, titled with its reason phrase.
pub(crate) const PROBLEM_TYPES: ProblemTypes = ProblemTypes::PerStatus {
    base: "https://orderstream.dev/problems/",
};

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
}

/// The problem+json response for `status` with `detail` (the body is
/// [`Problem`], written by the hardening shared with Finance).
pub fn problem_response(status: StatusCode, detail: String) -> Response {
    http_hardening::problem(PROBLEM_TYPES, status, "", detail)
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
            StoreError::Database(sqlx::Error::Database(database)) if refused(&*database) => {
                refusal(&*database)
            }
            conflict @ (StoreError::WrongExpectedVersion { .. }
            | StoreError::EventIdConflict { .. }
            | StoreError::PartialRepeat) => ApiError::Conflict(conflict.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// Class 22 (data exception: a value the database cannot take), 23505 (a
/// concurrent write of the same key) and 23514 (a value beyond a CHECK
/// limit): the statement was rolled back, nothing was written, and the
/// request, not the server, is at odds with the store. A missing reference
/// or a NULL where none may be is a bug, and stays a 500.
fn refused(database: &dyn sqlx::error::DatabaseError) -> bool {
    database
        .code()
        .is_some_and(|code| code.starts_with("22") || code == "23505" || code == "23514")
}

/// The refusal in the project's words: the database's own text names
/// tables, columns and values of the schema, so it goes to the log only.
fn refusal(database: &dyn sqlx::error::DatabaseError) -> ApiError {
    let code = database.code().unwrap_or_default();
    tracing::info!(
        sqlstate = %code,
        constraint = database.constraint().unwrap_or(""),
        message = database.message(),
        "the database refused a request's write"
    );
    if database.is_unique_violation() {
        return ApiError::Conflict(
            match database.constraint() {
                Some("events_stream_version_key") => {
                    "another request wrote to the same stream at the same time; retry"
                }
                Some("events_event_id_key") => {
                    "another request stored an event with the same id at the same time; retry"
                }
                Some("idempotency_keys_pkey") => {
                    "another request claimed this Idempotency-Key at the same time; retry"
                }
                _ => "another request wrote the same thing at the same time; retry",
            }
            .into(),
        );
    }
    ApiError::Unprocessable(
        match code.as_ref() {
            "22001" => "a text of this request is longer than can be stored",
            "22003" | "22008" | "22015" => {
                "a number of this request is out of the range that can be stored"
            }
            "22021" | "22P05" => "a text of this request has characters that cannot be stored",
            "23514" => "a value of this request is beyond a limit of the store",
            _ => "a value of this request cannot be stored",
        }
        .into(),
    )
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

impl From<OperationsError> for ApiError {
    fn from(error: OperationsError) -> Self {
        match error {
            OperationsError::UnknownSubscription(_)
            | OperationsError::UnknownProjection(_)
            | OperationsError::UnknownParkedEvent { .. }
            | OperationsError::UnknownRequest { .. } => ApiError::NotFound(error.to_string()),
            OperationsError::EarlierParkedInStream { .. } => ApiError::Conflict(error.to_string()),
            OperationsError::Store(store) => store.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Real refusals from PostgreSQL, as the API words them.

    use event_store::MIGRATOR;
    use http_body_util::BodyExt;
    use test_support::TestDatabase;

    use super::*;

    async fn detail_of(error: ApiError) -> (StatusCode, String) {
        let response = error.into_response();
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("problem json");
        (status, body["detail"].as_str().unwrap_or("").to_owned())
    }

    #[tokio::test]
    async fn database_refusals_are_told_in_the_projects_words() {
        let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
        let pool = sqlx::PgPool::connect(database.url())
            .await
            .expect("connect");

        let overflow = sqlx::query("SELECT 9223372036854775807::bigint + 1")
            .execute(&pool)
            .await
            .expect_err("bigint out of range");
        let (status, detail) = detail_of(overflow.into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            detail,
            "a number of this request is out of the range that can be stored"
        );

        let insert_key = || {
            sqlx::query(
                "INSERT INTO idempotency_keys (key, request_hash, order_id) \
                 VALUES ('k', '\\x00', gen_random_uuid())",
            )
            .execute(&pool)
        };
        insert_key().await.expect("first insert");
        let duplicate = insert_key().await.expect_err("unique violation");
        let (status, detail) = detail_of(duplicate.into()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            detail,
            "another request claimed this Idempotency-Key at the same time; retry"
        );
    }
}
