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
    #[error("stock of {warehouse} would exceed the largest representable quantity")]
    QuantityOverflow { warehouse: Warehouse },
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
            | Self::QuantityOverflow { .. } => ErrorKind::Invalid,
            Self::InsufficientStock { .. } | Self::NoReservation { .. } => ErrorKind::Conflict,
        }
    }
}
