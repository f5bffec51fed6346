//! Commands accepted by the Inventory aggregate.

use uuid::Uuid;

use crate::values::{Sku, Warehouse};

/// Every command names its SKU: the first one creates the stream, and errors
/// such as `InsufficientStock` report it.
#[derive(Clone, Debug, PartialEq)]
pub enum InventoryCommand {
    /// Goods arrive at a warehouse. `quantity > 0`.
    Receive {
        sku: Sku,
        warehouse: Warehouse,
        quantity: u64,
    },
    /// Correct on-hand stock (damage, counts). Never below zero, never below reserved.
    Adjust {
        sku: Sku,
        warehouse: Warehouse,
        delta: i64,
        reason: String,
    },
    /// Reserve `quantity > 0` for an order, following the allocation policy.
    Reserve {
        sku: Sku,
        order_id: Uuid,
        quantity: u64,
    },
    /// Give back an order's reservation (no-op if it holds none).
    Release { sku: Sku, order_id: Uuid },
    /// The order ships: its reservation leaves reserved and on hand.
    Commit { sku: Sku, order_id: Uuid },
}

impl InventoryCommand {
    pub fn sku(&self) -> &Sku {
        match self {
            Self::Receive { sku, .. }
            | Self::Adjust { sku, .. }
            | Self::Reserve { sku, .. }
            | Self::Release { sku, .. }
            | Self::Commit { sku, .. } => sku,
        }
    }
}
