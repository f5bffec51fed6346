//! Commands accepted by the Payment aggregate.

use rust_decimal::Decimal;
use uuid::Uuid;

use crate::values::{Currency, PaymentMethod};

#[derive(Clone, Debug, PartialEq)]
pub enum PaymentCommand {
    /// Start payment attempt `attempt`: 1 when the order ships, then the
    /// attempt of each `OrderPaymentRetryRequested`.
    Request {
        order_id: Uuid,
        amount: Decimal,
        currency: Currency,
        method: PaymentMethod,
        attempt: u32,
    },
    /// The gateway captured the current attempt.
    RecordCapture {
        reference: String,
    },
    /// The gateway refused the current attempt.
    RecordFailure {
        reason: String,
        retryable: bool,
    },
    Refund,
}
