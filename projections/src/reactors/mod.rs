//! The choreography: each reactor turns one kind of event into a command,
//! with no central orchestrator.
//!
//! | event | reactor | result |
//! |---|---|---|
//! | OrderPlaced | inventory | reserve every line at once -> InventoryReserved / InventoryUnavailable |
//! | OrderCancelled | inventory | release the reservation -> InventoryReleased |
//! | InventoryReserved / InventoryUnavailable | order | order reserved / rejected |
//! | OrderReserved (auto fulfilment) | fulfilment | reservation committed, OrderShipped |
//! | OrderShipped, OrderPaymentRetryRequested | payment | capture -> PaymentCaptured / PaymentFailed |
//! | PaymentCaptured / PaymentFailed (final) | order | paid / payment_failed |
//!
//! Fulfilment follows `OrderReserved` rather than `InventoryReserved`: the
//! order reactor marks the order reserved in reaction to the latter, and
//! shipping must come after that, not race it.

pub mod fulfilment;
pub mod inventory;
pub mod order;
pub mod payment;

use commands::{CommandContext, ExecuteError};
use event_store::{FailureClass, RecordedEvent, Traceparent};

use crate::HandlerError;

/// The context of a command a reactor issues for `event`: correlation
/// carried over, the event as cause, ids derived from both; the trace
/// context is the reaction's span (a child of the event's), which the
/// ids do not depend on.
pub(crate) fn context_for(reactor: &str, event: &RecordedEvent) -> CommandContext {
    CommandContext::caused_by_event(reactor, event.event_id, event.correlation_id.clone())
        .with_traceparent(Traceparent::current())
}

/// A failed command as a handler failure of the same class: an outage or
/// lost races are waited out; a domain refusal (the reactor met a state it
/// does not expect), an undecodable event or an inconsistency count toward
/// parking.
pub(crate) fn failed<E>(error: ExecuteError<E>) -> HandlerError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let class = match &error {
        ExecuteError::Store(store) => store.class(),
        ExecuteError::Conflict { .. } => FailureClass::Contention,
        ExecuteError::Domain(_) | ExecuteError::Decode { .. } | ExecuteError::Inconsistent(_) => {
            FailureClass::Permanent
        }
    };
    HandlerError::with_class(class, error)
}

/// `prefix-{uuid}` -> the uuid.
pub(crate) fn id_in_stream(
    event: &RecordedEvent,
    prefix: &str,
) -> Result<uuid::Uuid, HandlerError> {
    event
        .stream_id
        .strip_prefix(prefix)
        .and_then(|id| id.strip_prefix('-'))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| HandlerError::new(format!("{} is not a {prefix} stream", event.stream_id)))
}
