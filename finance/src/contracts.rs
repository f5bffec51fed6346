//! The integration contracts Finance books, as Finance reads them.
//!
//! Tolerant reader: only the fields the rules need, unknown fields ignored,
//! so an additive change on the publisher's side never breaks Finance. These
//! are Finance's own types, not the relay's: the JSON on the wire is the
//! contract (docs: helper-briefs/contracts.md, README "Integration events").

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

pub const ORDER_SHIPPED_V1: &str = "order.shipped.v1";
pub const PAYMENT_CAPTURED_V1: &str = "payment.captured.v1";
pub const PAYMENT_FAILED_V1: &str = "payment.failed.v1";
pub const ORDER_CANCELLED_V1: &str = "order.cancelled.v1";

/// The routing keys the inbox queue is bound to: the contracts the rules
/// look at. Anything else that reaches the queue is acked and ignored.
pub const CONSUMED: [&str; 4] = [
    ORDER_SHIPPED_V1,
    PAYMENT_CAPTURED_V1,
    PAYMENT_FAILED_V1,
    ORDER_CANCELLED_V1,
];

#[derive(Debug, Clone, Deserialize)]
pub struct OrderShipped {
    pub order_id: String,
    pub currency: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
    pub shipped_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentCaptured {
    pub order_id: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    pub captured_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentFailed {
    pub order_id: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub currency: String,
    #[serde(default)]
    pub reason: String,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub failed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderCancelled {
    pub order_id: String,
}
