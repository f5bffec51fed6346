//! Outcomes of other aggregates -> the order's state: reserved or
//! rejected, paid or payment_failed.

use async_trait::async_trait;
use commands::CommandExecutor;
use event_store::RecordedEvent;

use aggregates::order::{Order, OrderCommand};
use aggregates::payment::PaymentEvent;
use aggregates::reservation::ReservationEvent;
use aggregates::stream_id;

use super::{context_for, failed, id_in_stream};
use crate::read_models::decode;
use crate::{HandlerError, Reactor};

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
        let (order_id, command) = match event.category() {
            "reservation" => {
                let command = match decode::<ReservationEvent>(event)? {
                    ReservationEvent::Reserved { .. } => OrderCommand::MarkReserved,
                    ReservationEvent::Unavailable { shortages, .. } => {
                        OrderCommand::Reject { shortages }
                    }
                    _ => return Ok(()),
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
                    _ => return Ok(()),
                };
                (id_in_stream(event, "payment")?, command)
            }
            _ => return Ok(()),
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
}
