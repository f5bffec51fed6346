//! Inventory state and how events evolve it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Allocation, InventoryEvent, StockLevel};
use crate::values::{Sku, Warehouse};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseStock {
    pub on_hand: u64,
    pub reserved: u64,
}

impl WarehouseStock {
    pub fn available(&self) -> u64 {
        self.on_hand.saturating_sub(self.reserved)
    }
}

/// Stock of one SKU. `BTreeMap`s keep iteration (and so decisions) deterministic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// `None` until the first event.
    pub sku: Option<Sku>,
    pub warehouses: BTreeMap<Warehouse, WarehouseStock>,
    /// Open reservations: order id -> where its units are held.
    pub reservations: BTreeMap<Uuid, Vec<Allocation>>,
}

impl Inventory {
    /// Totals over all warehouses.
    pub fn level(&self) -> StockLevel {
        self.warehouses
            .values()
            .map(|stock| StockLevel::new(stock.on_hand, stock.reserved))
            .fold(StockLevel::default(), StockLevel::plus)
    }

    /// Level of each warehouse, by name.
    pub fn warehouse_levels(&self) -> Vec<(Warehouse, StockLevel)> {
        self.warehouses
            .iter()
            .map(|(name, stock)| (name.clone(), StockLevel::new(stock.on_hand, stock.reserved)))
            .collect()
    }

    /// Available stock of each warehouse, the input of [`super::allocate`].
    pub fn availability(&self) -> Vec<(Warehouse, u64)> {
        self.warehouses
            .iter()
            .map(|(name, stock)| (name.clone(), stock.available()))
            .collect()
    }

    /// The open reservation of an order, if any.
    pub fn reservation(&self, order_id: Uuid) -> Option<&[Allocation]> {
        self.reservations.get(&order_id).map(Vec::as_slice)
    }

    pub(super) fn evolve(mut self, event: &InventoryEvent) -> Self {
        if self.sku.is_none() {
            self.sku = Some(event.sku().clone());
        }
        match event {
            InventoryEvent::Received {
                warehouse,
                quantity,
                ..
            } => {
                let stock = self.warehouses.entry(warehouse.clone()).or_default();
                stock.on_hand = stock.on_hand.saturating_add(*quantity);
            }
            InventoryEvent::Adjusted {
                warehouse, delta, ..
            } => {
                let stock = self.warehouses.entry(warehouse.clone()).or_default();
                stock.on_hand = stock.on_hand.saturating_add_signed(*delta);
            }
            InventoryEvent::Reserved {
                order_id,
                allocations,
                ..
            } => {
                for allocation in allocations {
                    let stock = self
                        .warehouses
                        .entry(allocation.warehouse.clone())
                        .or_default();
                    stock.reserved = stock.reserved.saturating_add(allocation.quantity);
                }
                self.reservations.insert(*order_id, allocations.clone());
            }
            InventoryEvent::Released {
                order_id,
                allocations,
                ..
            } => {
                self.take_reserved(allocations, false);
                self.reservations.remove(order_id);
            }
            InventoryEvent::Committed {
                order_id,
                allocations,
                ..
            } => {
                self.take_reserved(allocations, true);
                self.reservations.remove(order_id);
            }
        }
        self
    }

    /// Removes allocations from reserved, and from on hand too when shipped.
    fn take_reserved(&mut self, allocations: &[Allocation], shipped: bool) {
        for allocation in allocations {
            let stock = self
                .warehouses
                .entry(allocation.warehouse.clone())
                .or_default();
            stock.reserved = stock.reserved.saturating_sub(allocation.quantity);
            if shipped {
                stock.on_hand = stock.on_hand.saturating_sub(allocation.quantity);
            }
        }
    }
}
