//! `impl Aggregate for Payment`: the payment's decisions.

use rust_decimal::Decimal;

use super::{Payment, PaymentCommand, PaymentError, PaymentEvent, PaymentStatus};
use crate::Aggregate;

use PaymentStatus as S;

impl Aggregate for Payment {
    const CATEGORY: &'static str = "payment";
    // 2: the state counts `rounds_failed`; older snapshots lack it and are
    // ignored, so the count is folded from the events.
    const SNAPSHOT_VERSION: i32 = 2;

    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;

    fn apply(self, event: &PaymentEvent) -> Self {
        self.evolve(event)
    }

    fn decide(&self, command: &PaymentCommand) -> Result<Vec<PaymentEvent>, PaymentError> {
        if let PaymentCommand::Request {
            order_id,
            amount,
            currency,
            method,
            attempt,
        } = command
        {
            return self
                .request_attempt(*order_id, *amount, *attempt)
                .map(|emit| {
                    emit.then_some(PaymentEvent::Requested {
                        order_id: *order_id,
                        amount: *amount,
                        currency: *currency,
                        method: *method,
                        attempt: *attempt,
                    })
                    .into_iter()
                    .collect()
                });
        }
        let (Some(request), Some(status)) = (&self.request, self.status) else {
            return Err(PaymentError::NotRequested);
        };
        let attempt = self.attempts;
        match command {
            PaymentCommand::Request { .. } => Ok(Vec::new()),
            PaymentCommand::RecordCapture { reference } => match status {
                S::Requested => Ok(vec![PaymentEvent::Captured {
                    reference: reference.clone(),
                    amount: request.amount,
                    attempt,
                }]),
                S::Captured | S::Refunded => Ok(Vec::new()),
                S::Failed => Err(PaymentError::NotAwaitingResult { status }),
            },
            PaymentCommand::RecordFailure { reason, retryable } => match status {
                S::Requested => Ok(vec![PaymentEvent::Failed {
                    reason: reason.clone(),
                    retryable: *retryable,
                    attempt,
                }]),
                S::Failed => Ok(Vec::new()),
                S::Captured | S::Refunded => Err(PaymentError::AlreadyCaptured { status }),
            },
            PaymentCommand::Refund => match status {
                S::Captured => Ok(vec![PaymentEvent::Refunded {
                    amount: request.amount,
                }]),
                S::Refunded => Ok(Vec::new()),
                S::Requested | S::Failed => Err(PaymentError::NotCaptured { status }),
            },
        }
    }
}

impl Payment {
    /// Whether a `Request` for `attempt` starts a new attempt (`true`), is a
    /// redelivery of one already made (`false`), or is refused.
    fn request_attempt(
        &self,
        order_id: uuid::Uuid,
        amount: Decimal,
        attempt: u32,
    ) -> Result<bool, PaymentError> {
        if amount < Decimal::ZERO {
            return Err(PaymentError::NegativeAmount { amount });
        }
        let (Some(request), Some(status)) = (&self.request, self.status) else {
            return match attempt {
                1 => Ok(true),
                actual => Err(PaymentError::UnexpectedAttempt {
                    expected: 1,
                    actual,
                }),
            };
        };
        if request.order_id != order_id {
            return Err(PaymentError::OrderMismatch {
                expected: request.order_id,
                actual: order_id,
            });
        }
        if attempt >= 1 && attempt <= self.attempts {
            return Ok(false);
        }
        match status {
            S::Failed if attempt == self.attempts.saturating_add(1) => Ok(true),
            S::Failed => Err(PaymentError::UnexpectedAttempt {
                expected: self.attempts.saturating_add(1),
                actual: attempt,
            }),
            S::Requested => Err(PaymentError::AttemptInProgress {
                attempt: self.attempts,
            }),
            S::Captured | S::Refunded => Err(PaymentError::AlreadyCaptured { status }),
        }
    }
}
