//! `PaymentEvent`: the payment stream's events and their stable names.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::EventSchema;
use crate::values::{Currency, PaymentMethod};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PaymentEvent {
    #[serde(rename = "PaymentRequested")]
    Requested {
        order_id: Uuid,
        amount: Decimal,
        currency: Currency,
        method: PaymentMethod,
        attempt: u32,
    },
    #[serde(rename = "PaymentCaptured")]
    Captured {
        reference: String,
        amount: Decimal,
        attempt: u32,
    },
    #[serde(rename = "PaymentFailed")]
    Failed {
        reason: String,
        retryable: bool,
        attempt: u32,
    },
    #[serde(rename = "PaymentRefunded")]
    Refunded { amount: Decimal },
}

/// Every event type of the payment stream with its current schema version.
pub const EVENT_TYPES: &[(&str, i32)] = &[
    ("PaymentRequested", 1),
    ("PaymentCaptured", 1),
    ("PaymentFailed", 1),
    ("PaymentRefunded", 1),
];

impl EventSchema for PaymentEvent {
    const EVENT_TYPES: &'static [(&'static str, i32)] = EVENT_TYPES;

    fn type_name(&self) -> &'static str {
        match self {
            Self::Requested { .. } => "PaymentRequested",
            Self::Captured { .. } => "PaymentCaptured",
            Self::Failed { .. } => "PaymentFailed",
            Self::Refunded { .. } => "PaymentRefunded",
        }
    }
}
