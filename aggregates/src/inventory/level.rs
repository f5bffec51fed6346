//! `StockLevel`: the on hand / reserved / available view of stock.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub on_hand: u64,
    pub reserved: u64,
    /// `on_hand - reserved`, never negative.
    pub available: u64,
}

impl StockLevel {
    pub fn new(on_hand: u64, reserved: u64) -> Self {
        Self {
            on_hand,
            reserved,
            available: on_hand.saturating_sub(reserved),
        }
    }

    /// Sum of two levels (saturating).
    pub fn plus(self, other: Self) -> Self {
        Self::new(
            self.on_hand.saturating_add(other.on_hand),
            self.reserved.saturating_add(other.reserved),
        )
    }
}
