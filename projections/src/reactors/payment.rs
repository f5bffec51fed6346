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
//!
//! A batch is paid in three steps ([`Reactor::decide_batch`]): every
//! `PaymentRequested` of the batch is decided (on the order and payment
//! states the executor remembers, so usually without a read) and appended
//! in one transaction, fenced like the checkpoint; then the gateway is
//! asked for every attempt, a few at a time; then every outcome is
//! appended with the checkpoint in one transaction. A crash between the two
//! transactions is harmless: the redelivered events find their requests
//! stored (no new event) and the gateway is asked again for the same
//! attempts, its idempotency keys. An attempt that failed transiently is
//! recorded with the other outcomes, and the runtime retries that event
//! alone, with backoff, before the checkpoint passes it. A batch that asks
//! one order for two rounds goes event by event, in order.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use commands::{CommandContext, CommandExecutor, PaymentAttempt};
use event_store::RecordedEvent;
use futures::StreamExt;
use tracing::Instrument;
use uuid::Uuid;

use aggregates::order::{Order, OrderEvent};
use aggregates::payment::{GatewayOutcome, Payment};
use aggregates::stream_id;
use aggregates::Aggregate;

use super::{context_for, failed, id_in_stream};
use crate::gateway::{CaptureRequest, PaymentGateway};
use crate::reaction_span::reaction_span;
use crate::read_models::decode;
use crate::runtime::FencedCommit;
use crate::{BatchDecisions, HandlerError, Reactor};

pub const NAME: &str = "payment-reactor";

/// Gateway calls of one batch in flight at once: a batch of hundreds of
/// orders must not open as many requests to the gateway at the same time.
const GATEWAY_CALLS_IN_FLIGHT: usize = 16;

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
        let Some(round) = round_asked(event)? else {
            return Ok(());
        };
        let order_id = id_in_stream(event, Order::CATEGORY)?;
        self.pay(order_id, round, &context_for(NAME, event)).await
    }

    async fn decide_batch(
        &self,
        events: &[RecordedEvent],
        early: &FencedCommit,
    ) -> Option<Result<BatchDecisions, HandlerError>> {
        match asks(events) {
            Ok(Some(asks)) => Some(self.pay_batch(&asks, early).await),
            Ok(None) => None,
            Err(error) => Some(Err(error)),
        }
    }
}

/// An event of a batch that asks for a payment round, with the span and
/// context its commands and gateway call run in.
struct Ask<'e> {
    event: &'e RecordedEvent,
    order_id: Uuid,
    round: u32,
    span: tracing::Span,
    context: CommandContext,
}

/// The events of `events` that ask for a payment; `None` when one order is
/// asked for two rounds (its second round depends on the first's outcome:
/// event by event, in order).
fn asks(events: &[RecordedEvent]) -> Result<Option<Vec<Ask<'_>>>, HandlerError> {
    let mut asks = Vec::new();
    let mut orders = HashSet::new();
    for event in events {
        let Some(round) = round_asked(event)? else {
            continue;
        };
        if !orders.insert(event.stream_id.as_str()) {
            return Ok(None);
        }
        let span = reaction_span(NAME, event);
        let context = span.in_scope(|| context_for(NAME, event));
        asks.push(Ask {
            event,
            order_id: id_in_stream(event, Order::CATEGORY)?,
            round,
            span,
            context,
        });
    }
    Ok(Some(asks))
}

/// The payment round `event` asks for, if any.
fn round_asked(event: &RecordedEvent) -> Result<Option<u32>, HandlerError> {
    // Most of the category is other events: skip them undecoded.
    if event.category() != Order::CATEGORY
        || !matches!(
            event.event_type.as_str(),
            "OrderShipped" | "OrderPaymentRetryRequested"
        )
    {
        return Ok(None);
    }
    Ok(match decode::<OrderEvent>(event)? {
        OrderEvent::Shipped {} => Some(1),
        OrderEvent::PaymentRetryRequested { round } => Some(round),
        _ => None,
    })
}

impl PaymentReactor {
    async fn pay(
        &self,
        order_id: Uuid,
        round: u32,
        context: &CommandContext,
    ) -> Result<(), HandlerError> {
        let Some(attempt) = self
            .executor
            .request_payment(order_id, round, context)
            .await
            .map_err(failed)?
        else {
            return Ok(());
        };
        let outcome = self.gateway.capture(&capture_request(&attempt)).await;
        self.executor
            .execute::<Payment>(
                &stream_id::<Payment>(order_id),
                &outcome.to_command(order_id, attempt.attempt),
                context,
            )
            .await
            .map_err(failed)?;
        finished(order_id, attempt.attempt, outcome)
    }

    /// The three steps of the module documentation: the requests committed
    /// through `early`, the gateway, the outcomes left for the runtime to
    /// commit with the checkpoint.
    async fn pay_batch(
        &self,
        asks: &[Ask<'_>],
        early: &FencedCommit,
    ) -> Result<BatchDecisions, HandlerError> {
        let mut requests = self.executor.decision_batch();
        let mut attempts = Vec::with_capacity(asks.len());
        for ask in asks {
            let attempt = requests
                .request_payment(ask.order_id, ask.round, &ask.context)
                .instrument(ask.span.clone())
                .await
                .map_err(failed)?;
            if let Some(attempt) = attempt {
                attempts.push((ask, attempt));
            }
        }
        if attempts.is_empty() {
            // Every round asked is settled: nothing to ask the gateway, and
            // the checks of what was read go with the checkpoint.
            return Ok(requests.into());
        }
        early.commit(requests).await?;
        // Owned futures: the gateway's, each in its event's span.
        let calls: Vec<_> = attempts
            .iter()
            .map(|(ask, attempt)| {
                let gateway = self.gateway.clone();
                let request = capture_request(attempt);
                let span = ask.span.clone();
                async move { gateway.capture(&request).instrument(span).await }
            })
            .collect();
        let outcomes: Vec<GatewayOutcome> = futures::stream::iter(calls)
            .buffered(GATEWAY_CALLS_IN_FLIGHT)
            .collect()
            .await;
        let mut settled = self.executor.decision_batch();
        let mut unfinished = Vec::new();
        for ((ask, attempt), outcome) in attempts.iter().zip(outcomes) {
            settled
                .decide::<Payment>(
                    &stream_id::<Payment>(ask.order_id),
                    &outcome.to_command(ask.order_id, attempt.attempt),
                    &ask.context,
                )
                .instrument(ask.span.clone())
                .await
                .map_err(failed)?;
            if let Err(error) = finished(ask.order_id, attempt.attempt, outcome) {
                unfinished.push((ask.event.position, error));
            }
        }
        Ok(BatchDecisions {
            effects: settled,
            unfinished,
        })
    }
}

fn capture_request(attempt: &PaymentAttempt) -> CaptureRequest {
    CaptureRequest {
        order_id: attempt.request.order_id,
        attempt: attempt.attempt,
        amount: attempt.request.amount,
        currency: attempt.request.currency,
        method: attempt.request.method,
    }
}

/// An outcome that ends the attempt's event, or the error that makes the
/// runtime retry it (a transient failure: the next attempt).
fn finished(order_id: Uuid, attempt: u32, outcome: GatewayOutcome) -> Result<(), HandlerError> {
    match outcome {
        GatewayOutcome::TransientFailure => Err(HandlerError::new(format!(
            "payment attempt {attempt} of order {order_id} failed transiently; will retry"
        ))),
        GatewayOutcome::Captured | GatewayOutcome::PermanentFailure => Ok(()),
    }
}
