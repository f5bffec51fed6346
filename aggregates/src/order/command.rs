//! Commands accepted by the Order aggregate.

use rust_decimal::Decimal;
use uuid::Uuid;

use super::OrderLine;
use crate::values::{Currency, PaymentMethod, Shortage};

/// Place a new order. Values are already parsed (`Sku`, `Currency`,
/// `PaymentMethod`); `decide` checks the rules that span fields and the
/// bounds of [`crate::limits`] on every line.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaceOrder {
    pub order_id: Uuid,
    pub customer_id: String,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub payment_method: PaymentMethod,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OrderCommand {
    Place(PlaceOrder),
    /// Stock is reserved for every line.
    MarkReserved,
    /// Some line could not be reserved.
    Reject {
        shortages: Vec<Shortage>,
    },
    /// Allowed while pending or reserved.
    Cancel {
        reason: String,
    },
    /// Allowed once reserved.
    Ship,
    /// Payment captured; `amount` must equal the order total.
    MarkPaid {
        amount: Decimal,
    },
    MarkPaymentFailed {
        reason: String,
    },
    /// Allowed when payment failed: back to shipped, awaiting a new payment attempt.
    RetryPayment,
}
