//! `InventoryError`: every way an inventory command can be refused.

use uuid::Uuid;

use crate::values::{Sku, Warehouse};
use crate::ErrorKind;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("quantity must be positive")]
    ZeroQuantity,
    #[error("an adjustment must change the stock")]
    ZeroAdjustment,
    #[error("command for {actual} sent to the stream of {expected}")]
    SkuMismatch { expected: Sku, actual: Sku },
    #[error(
        "adjusting {warehouse} by {delta} would make on-hand stock negative (on hand {on_hand})"
    )]
    NegativeOnHand {
        warehouse: Warehouse,
        on_hand: u64,
        delta: i64,
    },
    #[error(
        "adjusting {warehouse} by {delta} would leave less on hand than reserved ({reserved})"
    )]
    BelowReserved {
        warehouse: Warehouse,
        delta: i64,
        reserved: u64,
    },
    #[error("quantity {quantity} is more than the {max} units one receipt or adjustment may move")]
    MovementTooLarge { quantity: u64, max: u64 },
    #[error(
        "warehouse {warehouse} holds {on_hand} units of this SKU; {increase} more would exceed \
         the limit of {max} units of one SKU per warehouse"
    )]
    WarehouseLimitExceeded {
        warehouse: Warehouse,
        on_hand: u64,
        increase: u64,
        max: u64,
    },
    /// `on_hand` is over all warehouses: `u128`, as stock recorded before
    /// the limits existed may sum beyond `u64`.
    #[error(
        "{sku} has {on_hand} units on hand over all warehouses; {increase} more would exceed \
         the limit of {max} units per SKU"
    )]
    SkuLimitExceeded {
        sku: Sku,
        on_hand: u128,
        increase: u64,
        max: u64,
    },
    #[error("insufficient stock of {sku}: requested {requested}, available {available}")]
    InsufficientStock {
        sku: Sku,
        requested: u64,
        available: u64,
    },
    #[error("order {order_id} holds no reservation of this SKU")]
    NoReservation { order_id: Uuid },
}

impl InventoryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::ZeroQuantity
            | Self::ZeroAdjustment
            | Self::SkuMismatch { .. }
            | Self::NegativeOnHand { .. }
            | Self::BelowReserved { .. }
            | Self::MovementTooLarge { .. }
            | Self::WarehouseLimitExceeded { .. }
            | Self::SkuLimitExceeded { .. } => ErrorKind::Invalid,
            Self::InsufficientStock { .. } | Self::NoReservation { .. } => ErrorKind::Conflict,
        }
    }
}
