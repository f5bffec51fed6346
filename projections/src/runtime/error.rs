//! Why a subscription's worker stopped. Every variant but `Fenced` and
//! `InjectedCrash` is worth taking ownership again for, after a pause.

use event_store::{FailureClass, StoreError};

use crate::HandlerError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another process has taken the subscription (a newer checkpoint
    /// lease): this worker must stop acting for it at once.
    #[error("lost ownership of the subscription")]
    LostOwnership,
    #[error("stopped by the crash hook before saving a checkpoint")]
    InjectedCrash,
    #[error("handler failed: {0}")]
    Handler(#[source] HandlerError),
    #[error("rebuild failed: {0}")]
    Rebuild(#[source] HandlerError),
    /// A member of a split subscription that another process is now the
    /// one to run (`group_registry.rs`): it lets go, cleanly.
    #[error("handed over to the process preferred for it")]
    HandedOver,
    #[error("the runtime is stopping")]
    Stopping,
    #[error("the log subscription ended")]
    SubscriptionEnded,
}

impl From<sqlx::Error> for RuntimeError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

impl RuntimeError {
    /// Fencing, seen through the store's error: a newer owner exists.
    pub(crate) fn or_lost_ownership(self) -> RuntimeError {
        match self {
            RuntimeError::Store(StoreError::Fenced { .. }) => RuntimeError::LostOwnership,
            other => other,
        }
    }
}

impl RuntimeError {
    /// Whether this is the database being unreachable, to be waited out.
    pub(crate) fn is_outage(&self) -> bool {
        match self {
            RuntimeError::Store(store) => store.class() == FailureClass::Unavailable,
            RuntimeError::Handler(handler) | RuntimeError::Rebuild(handler) => {
                handler.class() == FailureClass::Unavailable
            }
            _ => false,
        }
    }
}

impl From<RuntimeError> for HandlerError {
    fn from(error: RuntimeError) -> Self {
        let class = match &error {
            RuntimeError::Store(store) => store.class(),
            _ => FailureClass::Permanent,
        };
        HandlerError::with_class(class, error)
    }
}
