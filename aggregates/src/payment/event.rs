//! `PaymentEvent`: the payment stream's events and their stable names.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::codec::{self, EventDecodeError};
use crate::values::{Currency, PaymentMethod};
use crate::DomainEvent;

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

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Requested { .. } => "PaymentRequested",
            Self::Captured { .. } => "PaymentCaptured",
            Self::Failed { .. } => "PaymentFailed",
            Self::Refunded { .. } => "PaymentRefunded",
        }
    }

    fn schema_version(&self) -> i32 {
        codec::current_version(EVENT_TYPES, self.event_type()).unwrap_or(1)
    }

    fn to_json(&self) -> Value {
        codec::encode_data(self)
    }

    fn from_stored(
        event_type: &str,
        schema_version: i32,
        data: Value,
    ) -> Result<Self, EventDecodeError> {
        codec::check_version(EVENT_TYPES, event_type, schema_version)?;
        codec::decode_data(event_type, schema_version, data)
    }
}
