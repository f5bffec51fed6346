//! The choreography: each reactor turns one kind of event into a command,
//! with no central orchestrator.
//!
//! | event | reactor | result |
//! |---|---|---|
//! | OrderPlaced | inventory | reserve every line at once -> InventoryReserved / InventoryUnavailable |
//! | OrderCancelled | inventory | release the reservation -> InventoryReleased |
//! | InventoryReserved / InventoryUnavailable | order | order reserved / rejected |
//! | OrderReserved (auto fulfilment) | fulfilment | reservation committed, OrderShipped |
//! | OrderShipped, OrderPaymentRetryRequested | payment | PaymentRequested, capture -> PaymentCaptured / PaymentFailed |
//! | PaymentCaptured / PaymentFailed (final) | order | paid / payment_failed |
//!
//! Fulfilment follows `OrderReserved` rather than `InventoryReserved`: the
//! order reactor marks the order reserved in reaction to the latter, and
//! shipping must come after that, not race it.

pub mod fulfilment;
pub mod inventory;
pub mod order;
pub mod payment;

use async_trait::async_trait;
use commands::{CommandContext, CommandExecutor, DecisionBatch, ExecuteError};
use event_store::{FailureClass, RecordedEvent, Traceparent};
use tracing::Instrument;

use crate::reaction_span::reaction_span;
use crate::{BatchDecisions, HandlerError};

/// A reactor whose effects are only appends, decided one event at a time
/// into a [`DecisionBatch`] (see [`crate::Reactor::decide_batch`]).
#[async_trait]
pub(crate) trait DecidesInBatches: Send + Sync {
    const NAME: &'static str;
    fn executor(&self) -> &CommandExecutor;
    /// Adds the effect of `event`, if it has one, to `batch`.
    async fn decide_into(
        &self,
        batch: &mut DecisionBatch,
        event: &RecordedEvent,
        context: &CommandContext,
    ) -> Result<(), HandlerError>;
}

/// Decides every event of a batch, each in its reaction span as `react`
/// would run it, so the events it writes continue the event's trace.
pub(crate) async fn decide_batch<R: DecidesInBatches>(
    reactor: &R,
    events: &[RecordedEvent],
) -> Option<Result<BatchDecisions, HandlerError>> {
    let mut batch = reactor.executor().decision_batch();
    for event in events {
        let span = reaction_span(R::NAME, event);
        let context = span.in_scope(|| context_for(R::NAME, event));
        let decided = reactor
            .decide_into(&mut batch, event, &context)
            .instrument(span)
            .await;
        if let Err(error) = decided {
            return Some(Err(error));
        }
    }
    Some(Ok(batch.into()))
}

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
