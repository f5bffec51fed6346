//! `PaymentError`: every way a payment command can be refused.

use rust_decimal::Decimal;
use uuid::Uuid;

use super::PaymentStatus;
use crate::ErrorKind;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("no payment has been requested")]
    NotRequested,
    #[error("amount must not be negative, got {amount}")]
    NegativeAmount { amount: Decimal },
    #[error("command for order {actual} sent to the payment of order {expected}")]
    OrderMismatch { expected: Uuid, actual: Uuid },
    #[error("expected payment attempt {expected}, got {actual}")]
    UnexpectedAttempt { expected: u32, actual: u32 },
    #[error("attempt {attempt} is still awaiting the gateway's answer")]
    AttemptInProgress { attempt: u32 },
    #[error("the payment is already {status}")]
    AlreadyCaptured { status: PaymentStatus },
    #[error("the payment is {status}, not awaiting a gateway answer")]
    NotAwaitingResult { status: PaymentStatus },
    #[error("only a captured payment can be refunded; it is {status}")]
    NotCaptured { status: PaymentStatus },
}

impl PaymentError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotRequested => ErrorKind::NotFound,
            Self::NegativeAmount { .. } | Self::OrderMismatch { .. } => ErrorKind::Invalid,
            Self::UnexpectedAttempt { .. }
            | Self::AttemptInProgress { .. }
            | Self::AlreadyCaptured { .. }
            | Self::NotAwaitingResult { .. }
            | Self::NotCaptured { .. } => ErrorKind::Conflict,
        }
    }
}
