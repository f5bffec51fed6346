//! The warehouse allocation policy: which warehouses serve a line.

use serde::{Deserialize, Serialize};

use crate::values::Warehouse;

/// `quantity` units taken from `warehouse`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub warehouse: Warehouse,
    pub quantity: u64,
}

/// Not enough stock across all warehouses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shortfall {
    pub requested: u64,
    pub available: u64,
}

/// Chooses warehouses for `quantity` units, given each warehouse's available
/// stock (names are expected to be unique).
///
/// 1. If some warehouse can fill the whole quantity, take it all from one:
///    the one with most available, ties broken by name (ascending).
/// 2. Otherwise split: take from the warehouse with most available first
///    (ties by name), then the next, until the quantity is filled.
///
/// A quantity of 0 needs no warehouse. Warehouses with nothing available are
/// never allocated. Fails with the total available when it is not enough.
pub fn allocate(
    quantity: u64,
    warehouses: &[(Warehouse, u64)],
) -> Result<Vec<Allocation>, Shortfall> {
    let total: u64 = warehouses
        .iter()
        .fold(0u64, |sum, (_, available)| sum.saturating_add(*available));
    if total < quantity {
        return Err(Shortfall {
            requested: quantity,
            available: total,
        });
    }
    if quantity == 0 {
        return Ok(Vec::new());
    }
    let mut by_stock: Vec<&(Warehouse, u64)> = warehouses
        .iter()
        .filter(|(_, available)| *available > 0)
        .collect();
    by_stock.sort_by(|(a_name, a), (b_name, b)| b.cmp(a).then_with(|| a_name.cmp(b_name)));

    // Sorted by most stock first: if any warehouse fills the line, the first does.
    if let Some((warehouse, available)) = by_stock.first() {
        if *available >= quantity {
            return Ok(vec![Allocation {
                warehouse: warehouse.clone(),
                quantity,
            }]);
        }
    }
    let mut remaining = quantity;
    let mut allocations = Vec::new();
    for (warehouse, available) in by_stock {
        if remaining == 0 {
            break;
        }
        let take = remaining.min(*available);
        allocations.push(Allocation {
            warehouse: warehouse.clone(),
            quantity: take,
        });
        remaining -= take;
    }
    Ok(allocations)
}
