//! `OrderEvent`: the order stream's events, their stable names and the
//! `OrderPlaced` v1 -> v2 upcaster.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::OrderLine;
use crate::codec::EventSchema;
use crate::values::{Currency, PaymentMethod, Shortage};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum OrderEvent {
    /// v2. v1 had no `currency`; it is upcast with `"USD"`.
    #[serde(rename = "OrderPlaced")]
    Placed {
        order_id: Uuid,
        customer_id: String,
        currency: Currency,
        lines: Vec<OrderLine>,
        total: Decimal,
        payment_method: PaymentMethod,
    },
    #[serde(rename = "OrderReserved")]
    Reserved {},
    #[serde(rename = "OrderRejected")]
    Rejected { shortages: Vec<Shortage> },
    #[serde(rename = "OrderCancelled")]
    Cancelled { reason: String },
    #[serde(rename = "OrderShipped")]
    Shipped {},
    #[serde(rename = "OrderPaid")]
    Paid { amount: Decimal },
    #[serde(rename = "OrderPaymentFailed")]
    PaymentFailed { reason: String },
    /// `round` numbers the request for payment: the order's shipment is
    /// round 1, the retry after its n-th payment failure round n + 1. The
    /// payment stream counts the rounds that failed for good, so it
    /// recognises a redelivered request by its number. Stored as
    /// `attempt`, its name from before rounds and gateway attempts were
    /// told apart: the numbers were the same.
    #[serde(rename = "OrderPaymentRetryRequested")]
    PaymentRetryRequested {
        #[serde(rename = "attempt")]
        round: u32,
    },
}

/// Every event type of the order stream with its current schema version.
pub const EVENT_TYPES: &[(&str, i32)] = &[
    ("OrderPlaced", 2),
    ("OrderReserved", 1),
    ("OrderRejected", 1),
    ("OrderCancelled", 1),
    ("OrderShipped", 1),
    ("OrderPaid", 1),
    ("OrderPaymentFailed", 1),
    ("OrderPaymentRetryRequested", 1),
];

impl EventSchema for OrderEvent {
    const EVENT_TYPES: &'static [(&'static str, i32)] = EVENT_TYPES;

    fn type_name(&self) -> &'static str {
        match self {
            Self::Placed { .. } => "OrderPlaced",
            Self::Reserved {} => "OrderReserved",
            Self::Rejected { .. } => "OrderRejected",
            Self::Cancelled { .. } => "OrderCancelled",
            Self::Shipped {} => "OrderShipped",
            Self::Paid { .. } => "OrderPaid",
            Self::PaymentFailed { .. } => "OrderPaymentFailed",
            Self::PaymentRetryRequested { .. } => "OrderPaymentRetryRequested",
        }
    }

    fn upcast(event_type: &str, schema_version: i32, data: Value) -> Value {
        match (event_type, schema_version) {
            ("OrderPlaced", 1) => upcast_order_placed_v1(data),
            _ => data,
        }
    }
}

/// OrderPlaced v1 predates multi-currency orders: every order was in USD.
fn upcast_order_placed_v1(mut data: Value) -> Value {
    if let Value::Object(fields) = &mut data {
        fields
            .entry("currency")
            .or_insert_with(|| Value::String(Currency::Usd.code().to_owned()));
    }
    data
}
