//! Outcomes of other aggregates -> the order's state: reserved or
//! rejected, paid or payment_failed.

use async_trait::async_trait;
use commands::{CommandContext, CommandExecutor, DecisionBatch};
use event_store::RecordedEvent;
use uuid::Uuid;

use aggregates::order::{Order, OrderCommand};
use aggregates::payment::PaymentEvent;
use aggregates::reservation::ReservationEvent;
use aggregates::stream_id;

use super::{context_for, decide_batch, failed, id_in_stream, DecidesInBatches};
use crate::read_models::decode;
use crate::runtime::FencedCommit;
use crate::{BatchDecisions, HandlerError, Reactor};

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
        _early: &FencedCommit,
    ) -> Option<Result<BatchDecisions, HandlerError>> {
        decide_batch(self, events).await
    }
}

#[async_trait]
impl DecidesInBatches for OrderReactor {
    const NAME: &'static str = NAME;

    fn executor(&self) -> &CommandExecutor {
        &self.executor
    }

    async fn decide_into(
        &self,
        batch: &mut DecisionBatch,
        event: &RecordedEvent,
        context: &CommandContext,
    ) -> Result<(), HandlerError> {
        let Some((order_id, command)) = command_for(event)? else {
            return Ok(());
        };
        batch
            .decide::<Order>(&stream_id::<Order>(order_id), &command, context)
            .await
            .map_err(failed)
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
