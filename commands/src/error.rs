//! What can go wrong executing a command.

use aggregates::EventDecodeError;
use event_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E> {
    /// The domain refused the command: a broken business rule.
    #[error(transparent)]
    Domain(E),
    /// Other writers kept changing the streams involved; gave up after
    /// the configured attempts.
    #[error(
        "concurrent writers kept changing stream {stream_id}; gave up after {attempts} attempts"
    )]
    Conflict { stream_id: String, attempts: u32 },
    /// A stored event could not be decoded into the domain's types: a
    /// missing upcaster or a corrupted store, never the caller's fault.
    #[error("stored event {version} of stream {stream_id} cannot be decoded: {source}")]
    Decode {
        stream_id: String,
        version: i64,
        #[source]
        source: EventDecodeError,
    },
    /// Aggregates that must agree do not (a reservation missing for a
    /// shipped order): a bug or a hand-edited store, never the caller's fault.
    #[error("inconsistent state: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E> ExecuteError<E> {
    /// The same failure with another domain error type.
    pub fn map_domain<F>(self, map: impl FnOnce(E) -> F) -> ExecuteError<F> {
        self.replace_domain(|error| ExecuteError::Domain(map(error)))
    }

    /// The same failure for a caller with another domain error type, to
    /// whom this domain's refusal is an inconsistency, not a rule it broke.
    pub fn domain_as_inconsistent<F>(self) -> ExecuteError<F>
    where
        E: std::fmt::Display,
    {
        self.replace_domain(|error| ExecuteError::Inconsistent(error.to_string()))
    }

    fn replace_domain<F>(self, replace: impl FnOnce(E) -> ExecuteError<F>) -> ExecuteError<F> {
        match self {
            ExecuteError::Domain(error) => replace(error),
            ExecuteError::Conflict {
                stream_id,
                attempts,
            } => ExecuteError::Conflict {
                stream_id,
                attempts,
            },
            ExecuteError::Decode {
                stream_id,
                version,
                source,
            } => ExecuteError::Decode {
                stream_id,
                version,
                source,
            },
            ExecuteError::Inconsistent(message) => ExecuteError::Inconsistent(message),
            ExecuteError::Store(error) => ExecuteError::Store(error),
        }
    }
}
