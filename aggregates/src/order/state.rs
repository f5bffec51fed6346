//! Order state, `OrderStatus`, `OrderLine`, and how events evolve the state.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::OrderEvent;
use crate::values::{Currency, PaymentMethod, Shortage, Sku};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Reserved,
    Rejected,
    Cancelled,
    Shipped,
    Paid,
    PaymentFailed,
}

impl OrderStatus {
    /// The status as `API.md` spells it, e.g. `"payment_failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Reserved => "reserved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Shipped => "shipped",
            Self::Paid => "paid",
            Self::PaymentFailed => "payment_failed",
        }
    }
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        Self::Pending,
        Self::Reserved,
        Self::Rejected,
        Self::Cancelled,
        Self::Shipped,
        Self::Paid,
        Self::PaymentFailed,
    ];
}

/// A status spelled as [`OrderStatus::as_str`] does not.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownOrderStatus(pub String);

impl std::str::FromStr for OrderStatus {
    type Err = UnknownOrderStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownOrderStatus(text.to_owned()))
    }
}

/// For read models that store the status as text.
impl TryFrom<String> for OrderStatus {
    type Error = UnknownOrderStatus;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price: Decimal,
}

impl OrderLine {
    /// `quantity * unit_price`, or `None` unless it is exact (see
    /// [`crate::limits`]: a price with more than `MAX_PRICE_SCALE` decimal
    /// places has no total).
    pub fn total(&self) -> Option<Decimal> {
        super::place::exact_total(std::slice::from_ref(self))
    }
}

/// The order; `placed` is `None` until `OrderPlaced`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub placed: Option<PlacedOrder>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacedOrder {
    pub order_id: Uuid,
    pub customer_id: String,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub total: Decimal,
    pub payment_method: PaymentMethod,
    pub status: OrderStatus,
    /// Set when rejected.
    pub shortages: Vec<Shortage>,
    pub cancel_reason: Option<String>,
    /// Reason of the latest payment failure.
    pub payment_failure: Option<String>,
    /// How many payment rounds have failed for good so far (one
    /// `OrderPaymentFailed` each; transient gateway failures within a
    /// round never reach the order).
    pub payment_failures: u32,
    pub paid_amount: Option<Decimal>,
}

impl Order {
    pub fn status(&self) -> Option<OrderStatus> {
        self.placed.as_ref().map(|order| order.status)
    }

    pub(super) fn evolve(mut self, event: &OrderEvent) -> Self {
        if let OrderEvent::Placed {
            order_id,
            customer_id,
            currency,
            lines,
            total,
            payment_method,
        } = event
        {
            self.placed = Some(PlacedOrder {
                order_id: *order_id,
                customer_id: customer_id.clone(),
                currency: *currency,
                lines: lines.clone(),
                total: *total,
                payment_method: *payment_method,
                status: OrderStatus::Pending,
                shortages: Vec::new(),
                cancel_reason: None,
                payment_failure: None,
                payment_failures: 0,
                paid_amount: None,
            });
            return self;
        }
        // Events before OrderPlaced cannot be decided; ignoring them keeps apply total.
        let Some(order) = self.placed.as_mut() else {
            return self;
        };
        match event {
            OrderEvent::Placed { .. } => {}
            OrderEvent::Reserved {} => order.status = OrderStatus::Reserved,
            OrderEvent::Rejected { shortages } => {
                order.status = OrderStatus::Rejected;
                order.shortages = shortages.clone();
            }
            OrderEvent::Cancelled { reason } => {
                order.status = OrderStatus::Cancelled;
                order.cancel_reason = Some(reason.clone());
            }
            OrderEvent::Shipped {} => order.status = OrderStatus::Shipped,
            OrderEvent::Paid { amount } => {
                order.status = OrderStatus::Paid;
                order.paid_amount = Some(*amount);
            }
            OrderEvent::PaymentFailed { reason } => {
                order.status = OrderStatus::PaymentFailed;
                order.payment_failure = Some(reason.clone());
                order.payment_failures = order.payment_failures.saturating_add(1);
            }
            OrderEvent::PaymentRetryRequested { .. } => order.status = OrderStatus::Shipped,
        }
        self
    }
}
