//! OrderShipped (or a payment retry) -> capture through the gateway ->
//! PaymentCaptured or PaymentFailed.
//!
//! OrderShipped asks for payment round 1, OrderPaymentRetryRequested for
//! the round it names; the payment decides which gateway attempt that
//! means ([`Payment::attempt_for_round`]), so a redelivered request for a
//! round already settled captures nothing and fails nothing again.
//!
//! A transient gateway failure is recorded (retryable) and returned as an
//! error, so the runtime retries the event with backoff; the retry makes
//! the round's next attempt. A permanent failure ends the round and
//! reaches the order.

use std::sync::Arc;

use async_trait::async_trait;
use commands::{CommandContext, CommandExecutor};
use event_store::RecordedEvent;
use uuid::Uuid;

use aggregates::order::{Order, OrderEvent};
use aggregates::payment::{GatewayOutcome, Payment, PaymentCommand};
use aggregates::stream_id;
use aggregates::Aggregate;

use super::{context_for, failed, id_in_stream};
use crate::gateway::{CaptureRequest, PaymentGateway};
use crate::read_models::decode;
use crate::{HandlerError, Reactor};

pub const NAME: &str = "payment-reactor";

pub struct PaymentReactor {
    pub executor: CommandExecutor,
    pub gateway: Arc<dyn PaymentGateway>,
}

#[async_trait]
impl Reactor for PaymentReactor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn category(&self) -> Option<&'static str> {
        Some(Order::CATEGORY)
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.category() != Order::CATEGORY {
            return Ok(());
        }
        let round = match decode::<OrderEvent>(event)? {
            OrderEvent::Shipped {} => 1,
            OrderEvent::PaymentRetryRequested { round } => round,
            _ => return Ok(()),
        };
        let order_id = id_in_stream(event, Order::CATEGORY)?;
        self.pay(order_id, round, &context_for(NAME, event)).await
    }
}

impl PaymentReactor {
    async fn pay(
        &self,
        order_id: Uuid,
        round: u32,
        context: &CommandContext,
    ) -> Result<(), HandlerError> {
        let order = self
            .executor
            .load::<Order>(&stream_id::<Order>(order_id))
            .await
            .map_err(failed)?;
        let Some(placed) = order.state.placed else {
            return Err(HandlerError::new(format!(
                "order {order_id} was never placed"
            )));
        };
        let stream = stream_id::<Payment>(order_id);
        let payment = self
            .executor
            .load::<Payment>(&stream)
            .await
            .map_err(failed)?;
        let Some(attempt) = payment.state.attempt_for_round(round) else {
            return Ok(());
        };
        let request = PaymentCommand::Request {
            order_id,
            amount: placed.total,
            currency: placed.currency,
            method: placed.payment_method,
            attempt,
        };
        self.executor
            .execute::<Payment>(&stream, &request, context)
            .await
            .map_err(failed)?;
        let outcome = self
            .gateway
            .capture(&CaptureRequest {
                order_id,
                attempt,
                amount: placed.total,
                currency: placed.currency,
                method: placed.payment_method,
            })
            .await;
        self.executor
            .execute::<Payment>(&stream, &outcome.to_command(order_id, attempt), context)
            .await
            .map_err(failed)?;
        match outcome {
            GatewayOutcome::TransientFailure => Err(HandlerError::new(format!(
                "payment attempt {attempt} of order {order_id} failed transiently; will retry"
            ))),
            GatewayOutcome::Captured | GatewayOutcome::PermanentFailure => Ok(()),
        }
    }
}
