//! `InventoryEvent`: the inventory stream's events and their stable names.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Allocation;
use crate::codec::EventSchema;
use crate::values::{Sku, Warehouse};

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

impl EventSchema for InventoryEvent {
    const EVENT_TYPES: &'static [(&'static str, i32)] = EVENT_TYPES;

    fn type_name(&self) -> &'static str {
        match self {
            Self::Received { .. } => "StockReceived",
            Self::Adjusted { .. } => "StockAdjusted",
            Self::Reserved { .. } => "StockReserved",
            Self::Released { .. } => "StockReleased",
            Self::Committed { .. } => "StockCommitted",
        }
    }
}
