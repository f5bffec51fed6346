//! Reservation state and how events evolve it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ReservationEvent;
use crate::values::{Shortage, Sku, Warehouse};

/// `quantity` units of `sku` held in `warehouse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuAllocation {
    pub sku: Sku,
    pub warehouse: Warehouse,
    pub quantity: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Nothing decided yet.
    #[default]
    None,
    Reserved,
    Failed,
    Released,
    Committed,
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Reserved => "reserved",
            Self::Failed => "failed",
            Self::Released => "released",
            Self::Committed => "committed",
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    /// `None` until the first event.
    pub order_id: Option<Uuid>,
    pub status: ReservationStatus,
    /// Where the stock is (or was) held; kept after release and commit for audit.
    pub allocations: Vec<SkuAllocation>,
    /// Set when failed.
    pub shortages: Vec<Shortage>,
}

impl Reservation {
    /// The SKUs this reservation holds stock of: the Inventory streams a
    /// release or commit touches.
    pub fn skus(&self) -> BTreeSet<Sku> {
        self.allocations.iter().map(|a| a.sku.clone()).collect()
    }

    pub(super) fn evolve(mut self, event: &ReservationEvent) -> Self {
        self.order_id = Some(event.order_id());
        match event {
            ReservationEvent::Reserved { allocations, .. } => {
                self.status = ReservationStatus::Reserved;
                self.allocations = allocations.clone();
            }
            ReservationEvent::Unavailable { shortages, .. } => {
                self.status = ReservationStatus::Failed;
                self.shortages = shortages.clone();
            }
            ReservationEvent::Released { .. } => self.status = ReservationStatus::Released,
            ReservationEvent::Committed { .. } => self.status = ReservationStatus::Committed,
        }
        self
    }
}
