//! Outcomes of other aggregates -> the order's state: reserved or
//! rejected, paid or payment_failed.

use async_trait::async_trait;
use commands::{CommandExecutor, DecisionBatch};
use event_store::RecordedEvent;
use uuid::Uuid;

use aggregates::order::{Order, OrderCommand};
use aggregates::payment::PaymentEvent;
use aggregates::reservation::ReservationEvent;
use aggregates::stream_id;

use super::{context_for, failed, id_in_stream};
use crate::reaction_span::reaction_span;
use crate::read_models::decode;
use crate::{HandlerError, Reactor};
use tracing::Instrument;

pub struct OrderReactor {
    pub executor: CommandExecutor,
}

pub const NAME: &str = "order-reactor";

#[async_trait]
impl Reactor for OrderReactor {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        let Some((order_id, command)) = command_for(event)? else {
            return Ok(());
        };
        self.executor
            .execute::<Order>(
                &stream_id::<Order>(order_id),
                &command,
                &context_for(NAME, event),
            )
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn decide_batch(
        &self,
        events: &[RecordedEvent],
    ) -> Option<Result<DecisionBatch, HandlerError>> {
        let mut batch = self.executor.decision_batch();
        for event in events {
            let (order_id, command) = match command_for(event) {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                Err(error) => return Some(Err(error)),
            };
            // Each decision in its own reaction span, as `react` runs: the
            // events it writes continue the trace of the event's request.
            let span = reaction_span(NAME, event);
            let context = span.in_scope(|| context_for(NAME, event));
            let decided = batch
                .decide::<Order>(&stream_id::<Order>(order_id), &command, &context)
                .instrument(span)
                .await;
            if let Err(error) = decided {
                return Some(Err(failed(error)));
            }
        }
        Some(Ok(batch))
    }
}

/// The order command an event of a reservation or payment calls for.
fn command_for(event: &RecordedEvent) -> Result<Option<(Uuid, OrderCommand)>, HandlerError> {
    let (order_id, command) = match event.category() {
        "reservation" => {
            let command = match decode::<ReservationEvent>(event)? {
                ReservationEvent::Reserved { .. } => OrderCommand::MarkReserved,
                ReservationEvent::Unavailable { shortages, .. } => {
                    OrderCommand::Reject { shortages }
                }
                _ => return Ok(None),
            };
            (id_in_stream(event, "reservation")?, command)
        }
        "payment" => {
            let command = match decode::<PaymentEvent>(event)? {
                PaymentEvent::Captured { amount, .. } => OrderCommand::MarkPaid { amount },
                // A transient failure is retried by the payment reactor;
                // only a final one reaches the order.
                PaymentEvent::Failed {
                    reason,
                    retryable: false,
                    ..
                } => OrderCommand::MarkPaymentFailed { reason },
                _ => return Ok(None),
            };
            (id_in_stream(event, "payment")?, command)
        }
        _ => return Ok(None),
    };
    Ok(Some((order_id, command)))
}
