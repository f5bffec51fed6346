//! `ReservationError`: every way a reservation decision can be refused.

use uuid::Uuid;

use super::ReservationStatus;
use crate::inventory::InventoryError;
use crate::values::Sku;
use crate::ErrorKind;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    #[error("command for order {actual} sent to the reservation of order {expected}")]
    OrderMismatch { expected: Uuid, actual: Uuid },
    #[error("cannot commit a reservation that is {status}")]
    NotReserved { status: ReservationStatus },
    #[error("the reservation is committed (shipped) and cannot be released")]
    AlreadyCommitted,
    #[error("the inventory state of {sku} was not provided")]
    MissingInventory { sku: Sku },
    #[error(transparent)]
    Inventory(#[from] InventoryError),
}

impl ReservationError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::OrderMismatch { .. } | Self::MissingInventory { .. } => ErrorKind::Invalid,
            Self::NotReserved { .. } | Self::AlreadyCommitted => ErrorKind::Conflict,
            Self::Inventory(error) => error.kind(),
        }
    }
}
