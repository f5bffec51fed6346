//! Asking for an order's payment round: which gateway attempt it calls for,
//! and its `PaymentRequested`, decided on the order and its payment.
//!
//! The order is read but not checked by the append: what the request takes
//! from it (total, currency, payment method) is fixed by `OrderPlaced` and
//! never changes, so any state of the order that has it, cached or stored,
//! gives the same request. The payment is checked: the attempt depends on
//! where it stands.

use aggregates::order::Order;
use aggregates::payment::{Payment, PaymentCommand, PaymentError, PaymentRequest};
use aggregates::{stream_id, Aggregate};
use async_trait::async_trait;
use event_store::AppendResult;
use uuid::Uuid;

use crate::decision::{Decided, Decision, States};
use crate::executor::Basis;
use crate::{CommandContext, CommandExecutor, ExecuteError};

/// The gateway attempt a payment round calls for, once its
/// `PaymentRequested` is written or found stored: the attempt number is
/// the gateway's idempotency key with the order id.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentAttempt {
    pub attempt: u32,
    pub request: PaymentRequest,
}

impl CommandExecutor {
    /// Requests payment round `round` of `order_id` (1 when it ships, n + 1
    /// after a retry request following n failed rounds): appends the
    /// attempt's `PaymentRequested` unless it is stored already, and returns
    /// the attempt to make; `None` when the round needs nothing more (it
    /// failed for good already, or the payment is captured). Retried on
    /// conflicts like any command.
    #[tracing::instrument(skip(self, context), fields(correlation_id = %context.correlation_id))]
    pub async fn request_payment(
        &self,
        order_id: Uuid,
        round: u32,
        context: &CommandContext,
    ) -> Result<Option<PaymentAttempt>, ExecuteError<PaymentError>> {
        let decision = RequestPayment {
            order_id,
            round,
            context,
        };
        self.run(&decision, decision.first_basis()).await
    }
}

/// [`CommandExecutor::request_payment`]'s command.
pub(crate) struct RequestPayment<'a> {
    pub(crate) order_id: Uuid,
    pub(crate) round: u32,
    pub(crate) context: &'a CommandContext,
}

impl RequestPayment<'_> {
    /// The first round creates the payment stream: guess it is new. Later
    /// rounds follow a failure this process has most likely seen.
    pub(crate) fn first_basis(&self) -> Basis {
        if self.round <= 1 {
            Basis::Presumed
        } else {
            Basis::Cached
        }
    }
}

#[async_trait]
impl Decision for RequestPayment<'_> {
    type Decided = Option<PaymentAttempt>;
    type Outcome = Option<PaymentAttempt>;
    type Error = PaymentError;

    async fn decide(
        &self,
        states: &mut States<'_>,
    ) -> Result<Decided<Option<PaymentAttempt>>, ExecuteError<PaymentError>> {
        let order_id = self.order_id;
        let order_stream = stream_id::<Order>(order_id);
        let mut order = states
            .get_existing::<Order, PaymentError>(&order_stream)
            .await?;
        if order.state.placed.is_none() {
            // A state remembered from before the order was placed: only
            // the stored order can say it never was.
            order = states
                .get_stored::<Order, PaymentError>(&order_stream)
                .await?;
        }
        let Some(placed) = order.state.placed else {
            return Err(ExecuteError::Inconsistent(format!(
                "order {order_id} asks for payment but was never placed"
            )));
        };
        let payment = states
            .get::<Payment, PaymentError>(&stream_id::<Payment>(order_id))
            .await?;
        let mut decided = Decided::new(());
        let Some(attempt) = payment.state.attempt_for_round(self.round) else {
            // Still checked: "settled" read from a guess must hold.
            decided.write(states.executor(), &payment, &[], self.context);
            return Ok(decided.with_value(None));
        };
        let request = PaymentRequest {
            order_id,
            amount: placed.total,
            currency: placed.currency,
            method: placed.payment_method,
        };
        let events = payment
            .state
            .decide(&PaymentCommand::Request {
                order_id,
                amount: request.amount,
                currency: request.currency,
                method: request.method,
                attempt,
            })
            .map_err(ExecuteError::Domain)?;
        decided.write(states.executor(), &payment, &events, self.context);
        Ok(decided.with_value(Some(PaymentAttempt { attempt, request })))
    }

    fn outcome(
        &self,
        attempt: Option<PaymentAttempt>,
        _: Option<AppendResult>,
    ) -> Option<PaymentAttempt> {
        attempt
    }
}
