//! Payment state and how events evolve it.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::PaymentEvent;
use crate::values::{Currency, PaymentMethod};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Requested,
    Captured,
    Failed,
    Refunded,
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Requested => "requested",
            Self::Captured => "captured",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
        })
    }
}

/// What is being paid (from the latest `PaymentRequested`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentRequest {
    pub order_id: Uuid,
    pub amount: Decimal,
    pub currency: Currency,
    pub method: PaymentMethod,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailure {
    pub reason: String,
    pub retryable: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// `None` until the first `PaymentRequested`.
    pub request: Option<PaymentRequest>,
    pub status: Option<PaymentStatus>,
    /// Number of the latest attempt (0 before any).
    pub attempts: u32,
    /// Gateway reference of the capture.
    pub reference: Option<String>,
    /// The latest failure, if the latest attempt failed.
    pub last_failure: Option<PaymentFailure>,
    /// Rounds ended by a permanent failure (see the module doc).
    pub rounds_failed: u32,
}

impl Payment {
    /// The gateway attempt to make for payment round `round`, or `None`
    /// when that round needs nothing more: it failed for good already (a
    /// redelivered request), or the payment is captured. An attempt
    /// requested but never answered is asked again under its own number,
    /// which the gateway takes as its idempotency key.
    pub fn attempt_for_round(&self, round: u32) -> Option<u32> {
        if round <= self.rounds_failed {
            return None;
        }
        match self.status {
            None => Some(1),
            Some(PaymentStatus::Requested) => Some(self.attempts),
            Some(PaymentStatus::Failed) => Some(self.attempts.saturating_add(1)),
            Some(PaymentStatus::Captured | PaymentStatus::Refunded) => None,
        }
    }

    pub(super) fn evolve(mut self, event: &PaymentEvent) -> Self {
        match event {
            PaymentEvent::Requested {
                order_id,
                amount,
                currency,
                method,
                attempt,
            } => {
                self.request = Some(PaymentRequest {
                    order_id: *order_id,
                    amount: *amount,
                    currency: *currency,
                    method: *method,
                });
                self.status = Some(PaymentStatus::Requested);
                self.attempts = *attempt;
                self.last_failure = None;
            }
            PaymentEvent::Captured { reference, .. } => {
                self.status = Some(PaymentStatus::Captured);
                self.reference = Some(reference.clone());
            }
            PaymentEvent::Failed {
                reason, retryable, ..
            } => {
                self.status = Some(PaymentStatus::Failed);
                if !retryable {
                    self.rounds_failed = self.rounds_failed.saturating_add(1);
                }
                self.last_failure = Some(PaymentFailure {
                    reason: reason.clone(),
                    retryable: *retryable,
                });
            }
            PaymentEvent::Refunded { .. } => self.status = Some(PaymentStatus::Refunded),
        }
        self
    }
}
