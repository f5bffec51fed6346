//! Commands accepted by the Payment aggregate.

use rust_decimal::Decimal;
use uuid::Uuid;

use crate::values::{Currency, PaymentMethod};

#[derive(Clone, Debug, PartialEq)]
pub enum PaymentCommand {
    /// Start gateway attempt `attempt`: 1 when the order ships, then one
    /// more after each failure (see [`Payment::attempt_for_round`]).
    ///
    /// [`Payment::attempt_for_round`]: super::Payment::attempt_for_round
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
