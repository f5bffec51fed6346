//! `impl Aggregate for Inventory`: the inventory's decisions.

use super::{allocate, Inventory, InventoryCommand, InventoryError, InventoryEvent};
use crate::limits::{MAX_ON_HAND_PER_SKU, MAX_ON_HAND_PER_WAREHOUSE, MAX_STOCK_MOVEMENT};
use crate::values::{Sku, Warehouse};
use crate::Aggregate;

impl Aggregate for Inventory {
    const CATEGORY: &'static str = "inventory";
    const SNAPSHOT_VERSION: i32 = 1;

    type Command = InventoryCommand;
    type Event = InventoryEvent;
    type Error = InventoryError;

    fn apply(self, event: &InventoryEvent) -> Self {
        self.evolve(event)
    }

    fn decide(&self, command: &InventoryCommand) -> Result<Vec<InventoryEvent>, InventoryError> {
        if let Some(expected) = &self.sku {
            if expected != command.sku() {
                return Err(InventoryError::SkuMismatch {
                    expected: expected.clone(),
                    actual: command.sku().clone(),
                });
            }
        }
        match command {
            InventoryCommand::Receive {
                sku,
                warehouse,
                quantity,
            } => {
                if *quantity == 0 {
                    return Err(InventoryError::ZeroQuantity);
                }
                check_movement(*quantity)?;
                self.check_increase(sku, warehouse, *quantity)?;
                Ok(vec![InventoryEvent::Received {
                    sku: sku.clone(),
                    warehouse: warehouse.clone(),
                    quantity: *quantity,
                }])
            }
            InventoryCommand::Adjust {
                sku,
                warehouse,
                delta,
                reason,
            } => {
                if *delta == 0 {
                    return Err(InventoryError::ZeroAdjustment);
                }
                check_movement(delta.unsigned_abs())?;
                let stock = self.warehouses.get(warehouse).copied().unwrap_or_default();
                let after = i128::from(stock.on_hand) + i128::from(*delta);
                if after < 0 {
                    return Err(InventoryError::NegativeOnHand {
                        warehouse: warehouse.clone(),
                        on_hand: stock.on_hand,
                        delta: *delta,
                    });
                }
                if after < i128::from(stock.reserved) {
                    return Err(InventoryError::BelowReserved {
                        warehouse: warehouse.clone(),
                        delta: *delta,
                        reserved: stock.reserved,
                    });
                }
                if *delta > 0 {
                    self.check_increase(sku, warehouse, delta.unsigned_abs())?;
                }
                Ok(vec![InventoryEvent::Adjusted {
                    sku: sku.clone(),
                    warehouse: warehouse.clone(),
                    delta: *delta,
                    reason: reason.clone(),
                }])
            }
            InventoryCommand::Reserve {
                sku,
                order_id,
                quantity,
            } => {
                if *quantity == 0 {
                    return Err(InventoryError::ZeroQuantity);
                }
                if self.reservations.contains_key(order_id) {
                    return Ok(Vec::new());
                }
                let allocations = allocate(*quantity, &self.availability()).map_err(|short| {
                    InventoryError::InsufficientStock {
                        sku: sku.clone(),
                        requested: short.requested,
                        available: short.available,
                    }
                })?;
                Ok(vec![InventoryEvent::Reserved {
                    sku: sku.clone(),
                    order_id: *order_id,
                    allocations,
                }])
            }
            InventoryCommand::Release { sku, order_id } => Ok(self
                .reservation(*order_id)
                .map(|allocations| InventoryEvent::Released {
                    sku: sku.clone(),
                    order_id: *order_id,
                    allocations: allocations.to_vec(),
                })
                .into_iter()
                .collect()),
            InventoryCommand::Commit { sku, order_id } => {
                let allocations =
                    self.reservation(*order_id)
                        .ok_or(InventoryError::NoReservation {
                            order_id: *order_id,
                        })?;
                Ok(vec![InventoryEvent::Committed {
                    sku: sku.clone(),
                    order_id: *order_id,
                    allocations: allocations.to_vec(),
                }])
            }
        }
    }
}

/// A receipt or adjustment moves at most [`MAX_STOCK_MOVEMENT`] units.
fn check_movement(quantity: u64) -> Result<(), InventoryError> {
    if quantity > MAX_STOCK_MOVEMENT {
        return Err(InventoryError::MovementTooLarge {
            quantity,
            max: MAX_STOCK_MOVEMENT,
        });
    }
    Ok(())
}

impl Inventory {
    /// On hand may rise by `increase` in `warehouse` without passing the
    /// per-warehouse or the per-SKU limit. Sums in `u128`: stock recorded
    /// before the limits existed may be anywhere up to `u64::MAX`.
    fn check_increase(
        &self,
        sku: &Sku,
        warehouse: &Warehouse,
        increase: u64,
    ) -> Result<(), InventoryError> {
        let in_warehouse = self.warehouses.get(warehouse).map_or(0, |s| s.on_hand);
        if u128::from(in_warehouse) + u128::from(increase) > u128::from(MAX_ON_HAND_PER_WAREHOUSE) {
            return Err(InventoryError::WarehouseLimitExceeded {
                warehouse: warehouse.clone(),
                on_hand: in_warehouse,
                increase,
                max: MAX_ON_HAND_PER_WAREHOUSE,
            });
        }
        let on_hand: u128 = self
            .warehouses
            .values()
            .map(|stock| u128::from(stock.on_hand))
            .sum();
        if on_hand + u128::from(increase) > u128::from(MAX_ON_HAND_PER_SKU) {
            return Err(InventoryError::SkuLimitExceeded {
                sku: sku.clone(),
                on_hand,
                increase,
                max: MAX_ON_HAND_PER_SKU,
            });
        }
        Ok(())
    }
}
