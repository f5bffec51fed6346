//! `Shortage`: a SKU that cannot be reserved in full.

use serde::{Deserialize, Serialize};

use super::Sku;

/// Not enough available stock of `sku`: `requested` units wanted, `available` free.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortage {
    pub sku: Sku,
    pub requested: u64,
    pub available: u64,
}
