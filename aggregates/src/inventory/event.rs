//! `InventoryEvent`: the inventory stream's events and their stable names.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Allocation;
use crate::codec::{self, EventDecodeError};
use crate::values::{Sku, Warehouse};
use crate::DomainEvent;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum InventoryEvent {
    #[serde(rename = "StockReceived")]
    Received {
        sku: Sku,
        warehouse: Warehouse,
        quantity: u64,
    },
    #[serde(rename = "StockAdjusted")]
    Adjusted {
        sku: Sku,
        warehouse: Warehouse,
        delta: i64,
        reason: String,
    },
    #[serde(rename = "StockReserved")]
    Reserved {
        sku: Sku,
        order_id: Uuid,
        allocations: Vec<Allocation>,
    },
    #[serde(rename = "StockReleased")]
    Released {
        sku: Sku,
        order_id: Uuid,
        allocations: Vec<Allocation>,
    },
    #[serde(rename = "StockCommitted")]
    Committed {
        sku: Sku,
        order_id: Uuid,
        allocations: Vec<Allocation>,
    },
}

/// Every event type of the inventory stream with its current schema version.
pub const EVENT_TYPES: &[(&str, i32)] = &[
    ("StockReceived", 1),
    ("StockAdjusted", 1),
    ("StockReserved", 1),
    ("StockReleased", 1),
    ("StockCommitted", 1),
];

impl InventoryEvent {
    pub fn sku(&self) -> &Sku {
        match self {
            Self::Received { sku, .. }
            | Self::Adjusted { sku, .. }
            | Self::Reserved { sku, .. }
            | Self::Released { sku, .. }
            | Self::Committed { sku, .. } => sku,
        }
    }
}

impl DomainEvent for InventoryEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Received { .. } => "StockReceived",
            Self::Adjusted { .. } => "StockAdjusted",
            Self::Reserved { .. } => "StockReserved",
            Self::Released { .. } => "StockReleased",
            Self::Committed { .. } => "StockCommitted",
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
