//! `ReservationEvent`: the reservation stream's events (names from DESIGN.md).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SkuAllocation;
use crate::codec::EventSchema;
use crate::values::Shortage;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ReservationEvent {
    #[serde(rename = "InventoryReserved")]
    Reserved {
        order_id: Uuid,
        allocations: Vec<SkuAllocation>,
    },
    #[serde(rename = "InventoryUnavailable")]
    Unavailable {
        order_id: Uuid,
        shortages: Vec<Shortage>,
    },
    #[serde(rename = "InventoryReleased")]
    Released { order_id: Uuid },
    #[serde(rename = "InventoryCommitted")]
    Committed { order_id: Uuid },
}

/// Every event type of the reservation stream with its current schema version.
pub const EVENT_TYPES: &[(&str, i32)] = &[
    ("InventoryReserved", 1),
    ("InventoryUnavailable", 1),
    ("InventoryReleased", 1),
    ("InventoryCommitted", 1),
];

impl ReservationEvent {
    pub fn order_id(&self) -> Uuid {
        match self {
            Self::Reserved { order_id, .. }
            | Self::Unavailable { order_id, .. }
            | Self::Released { order_id }
            | Self::Committed { order_id } => *order_id,
        }
    }
}

impl EventSchema for ReservationEvent {
    const EVENT_TYPES: &'static [(&'static str, i32)] = EVENT_TYPES;

    fn type_name(&self) -> &'static str {
        match self {
            Self::Reserved { .. } => "InventoryReserved",
            Self::Unavailable { .. } => "InventoryUnavailable",
            Self::Released { .. } => "InventoryReleased",
            Self::Committed { .. } => "InventoryCommitted",
        }
    }
}
