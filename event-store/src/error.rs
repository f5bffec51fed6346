//! The store's error type: one variant for each case a caller handles
//! differently.

use uuid::Uuid;

use crate::ExpectedVersion;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream was not at the version the append expected.
    #[error(
        "wrong expected version for stream {stream_id}: expected {expected}, actual version {actual}"
    )]
    WrongExpectedVersion {
        stream_id: String,
        expected: ExpectedVersion,
        actual: i64,
    },
    /// An event id is already stored with different content.
    #[error("event {event_id} is already stored with other content")]
    EventIdConflict { event_id: Uuid },
    /// Some, but not all, of an append's event ids are already stored: the
    /// append is neither new nor a repeat.
    #[error("this append is a partial repeat: some of its event ids are already stored")]
    PartialRepeat,
    /// The request itself is malformed (empty stream id, repeated stream...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A newer owner has taken the subscription's checkpoint lease: this
    /// process must stop acting for the subscription at once.
    #[error("subscription {subscription} has a newer owner than epoch {epoch}")]
    Fenced { subscription: String, epoch: i64 },
    /// A statement ran longer than the store's `statement_timeout` (a slow
    /// query, or a wait for a lock held too long) and was cancelled;
    /// nothing of it was written. Worth retrying later.
    #[error("a database statement ran longer than the statement timeout: {0}")]
    Timeout(#[source] sqlx::Error),
    /// The database cannot be reached (connection refused or lost, pool
    /// exhausted): worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database failure: a bug or a broken schema.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// True for errors that a later retry may not get: the database was
    /// unreachable.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Which of the failures a later attempt may not meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The database cannot be reached or is shutting down: wait it out.
    Unavailable,
    /// Lost a race with another transaction (serialization failure,
    /// deadlock, lock or statement timeout, concurrent writers): try again.
    Contention,
    /// Anything else: the same attempt will fail the same way.
    Permanent,
}

impl StoreError {
    /// What kind of failure this is, for callers that retry.
    pub fn class(&self) -> FailureClass {
        match self {
            StoreError::Unavailable(_) => FailureClass::Unavailable,
            StoreError::WrongExpectedVersion { .. } | StoreError::Timeout(_) => {
                FailureClass::Contention
            }
            StoreError::Database(sqlx::Error::Database(database))
                if database
                    .code()
                    .is_some_and(|code| is_contention_sqlstate(&code)) =>
            {
                FailureClass::Contention
            }
            _ => FailureClass::Permanent,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            sqlx::Error::Database(ref database)
                if database
                    .code()
                    .is_some_and(|code| is_unavailable_sqlstate(&code)) =>
            {
                StoreError::Unavailable(error)
            }
            sqlx::Error::Database(ref database)
                if database.code().as_deref() == Some(STATEMENT_TIMEOUT) =>
            {
                StoreError::Timeout(error)
            }
            other => StoreError::Database(other),
        }
    }
}

/// 57014 query_canceled: what `statement_timeout` raises (also a
/// cancel request, which the store never sends).
const STATEMENT_TIMEOUT: &str = "57014";

/// 40001 serialization failure, 40P01 deadlock, 55P03 lock not available
/// (`lock_timeout`), 57014 query cancelled (`statement_timeout`).
fn is_contention_sqlstate(code: &str) -> bool {
    matches!(code, "40001" | "40P01" | "55P03" | "57014")
}

/// Class 08 (connection exception) and 57P0x (shutdown, cannot connect now).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P0")
}
