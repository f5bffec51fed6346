//! Commands accepted by the Reservation aggregate (usually issued through
//! [`super::reserve_order`], [`super::release_order`] and [`super::commit_order`]).

use uuid::Uuid;

use super::SkuAllocation;
use crate::values::Shortage;

#[derive(Clone, Debug, PartialEq)]
pub enum ReservationCommand {
    /// Every line fits: record where the stock is held.
    Reserve {
        order_id: Uuid,
        allocations: Vec<SkuAllocation>,
    },
    /// Some line does not fit: record every shortage; nothing is held.
    MarkUnavailable {
        order_id: Uuid,
        shortages: Vec<Shortage>,
    },
    Release {
        order_id: Uuid,
    },
    Commit {
        order_id: Uuid,
    },
}

impl ReservationCommand {
    pub fn order_id(&self) -> uuid::Uuid {
        match self {
            Self::Reserve { order_id, .. }
            | Self::MarkUnavailable { order_id, .. }
            | Self::Release { order_id }
            | Self::Commit { order_id } => *order_id,
        }
    }
}
