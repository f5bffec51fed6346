//! Multi-stream decisions: reserve, release or commit a whole order across
//! its reservation stream and the Inventory stream of every SKU, for one
//! atomic multi-stream append.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{
    Reservation, ReservationCommand, ReservationError, ReservationEvent, ReservationStatus,
    SkuAllocation,
};
use crate::inventory::{Inventory, InventoryCommand, InventoryError, InventoryEvent};
use crate::order::OrderLine;
use crate::values::{Shortage, Sku};
use crate::{fold_from, stream_id, Aggregate, EncodedEvent, StreamEvents};

/// Events to append, per stream. Empty when the decision is already in effect.
#[derive(Clone, Debug, PartialEq)]
pub struct ReservationDecision {
    pub order_id: Uuid,
    /// For `reservation-{order_id}`.
    pub reservation: Vec<ReservationEvent>,
    /// For `inventory-{sku}`; only SKUs with events are present.
    pub inventory: BTreeMap<Sku, Vec<InventoryEvent>>,
}

impl ReservationDecision {
    fn empty(order_id: Uuid) -> Self {
        Self {
            order_id,
            reservation: Vec::new(),
            inventory: BTreeMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.reservation.is_empty() && self.inventory.values().all(Vec::is_empty)
    }

    /// Encoded events per stream id: the reservation stream first, then
    /// inventory streams by SKU. Streams without events are left out.
    pub fn streams(&self) -> Vec<StreamEvents> {
        let mut streams = Vec::new();
        if !self.reservation.is_empty() {
            streams.push(StreamEvents {
                stream_id: stream_id::<Reservation>(self.order_id),
                events: self.reservation.iter().map(EncodedEvent::of).collect(),
            });
        }
        for (sku, events) in &self.inventory {
            if !events.is_empty() {
                streams.push(StreamEvents {
                    stream_id: stream_id::<Inventory>(sku),
                    events: events.iter().map(EncodedEvent::of).collect(),
                });
            }
        }
        streams
    }
}

/// Reserves every line of an order, all or nothing.
///
/// `inventories` holds the current state of every SKU in `lines`; a SKU
/// missing from it has never had stock. Lines of the same SKU are merged.
/// Result: `InventoryReserved` plus one `StockReserved` per SKU when all
/// lines fit, else only `InventoryUnavailable` listing every shortage.
/// Empty once the reservation has an outcome (or was released first).
pub fn reserve_order(
    reservation: &Reservation,
    order_id: Uuid,
    lines: &[OrderLine],
    inventories: &BTreeMap<Sku, Inventory>,
) -> Result<ReservationDecision, ReservationError> {
    if reservation.status != ReservationStatus::None {
        if let Some(expected) = reservation.order_id.filter(|id| *id != order_id) {
            return Err(ReservationError::OrderMismatch {
                expected,
                actual: order_id,
            });
        }
        return Ok(ReservationDecision::empty(order_id));
    }
    let mut wanted: BTreeMap<&Sku, u64> = BTreeMap::new();
    for line in lines {
        let quantity = wanted.entry(&line.sku).or_default();
        *quantity = quantity.saturating_add(u64::from(line.quantity));
    }
    let never_stocked = Inventory::default();
    let mut decision = ReservationDecision::empty(order_id);
    let mut allocations = Vec::new();
    let mut shortages = Vec::new();
    for (sku, quantity) in wanted {
        let inventory = inventories.get(sku).unwrap_or(&never_stocked);
        let command = InventoryCommand::Reserve {
            sku: sku.clone(),
            order_id,
            quantity,
        };
        match inventory.decide(&command) {
            Ok(events) => {
                let after = fold_from(inventory.clone(), &events);
                allocations.extend(after.reservation(order_id).unwrap_or_default().iter().map(
                    |allocation| SkuAllocation {
                        sku: sku.clone(),
                        warehouse: allocation.warehouse.clone(),
                        quantity: allocation.quantity,
                    },
                ));
                decision.inventory.insert(sku.clone(), events);
            }
            Err(InventoryError::InsufficientStock {
                sku,
                requested,
                available,
            }) => shortages.push(Shortage {
                sku,
                requested,
                available,
            }),
            Err(other) => return Err(other.into()),
        }
    }
    if !shortages.is_empty() {
        decision.inventory.clear();
        decision.reservation = reservation.decide(&ReservationCommand::MarkUnavailable {
            order_id,
            shortages,
        })?;
        return Ok(decision);
    }
    decision.inventory.retain(|_, events| !events.is_empty());
    decision.reservation = reservation.decide(&ReservationCommand::Reserve {
        order_id,
        allocations,
    })?;
    Ok(decision)
}

/// Releases an order's reservation (the order was cancelled):
/// `InventoryReleased` plus `StockReleased` per SKU held. `inventories` must
/// hold every SKU of [`Reservation::skus`].
pub fn release_order(
    reservation: &Reservation,
    order_id: Uuid,
    inventories: &BTreeMap<Sku, Inventory>,
) -> Result<ReservationDecision, ReservationError> {
    let events = reservation.decide(&ReservationCommand::Release { order_id })?;
    per_sku(reservation, order_id, events, inventories, |sku| {
        InventoryCommand::Release { sku, order_id }
    })
}

/// Commits an order's reservation on shipment: `InventoryCommitted` plus
/// `StockCommitted` per SKU held (the stock leaves on hand).
/// `inventories` must hold every SKU of [`Reservation::skus`].
pub fn commit_order(
    reservation: &Reservation,
    order_id: Uuid,
    inventories: &BTreeMap<Sku, Inventory>,
) -> Result<ReservationDecision, ReservationError> {
    let events = reservation.decide(&ReservationCommand::Commit { order_id })?;
    per_sku(reservation, order_id, events, inventories, |sku| {
        InventoryCommand::Commit { sku, order_id }
    })
}

/// Completes a reservation decision with the matching command on each SKU held.
fn per_sku(
    reservation: &Reservation,
    order_id: Uuid,
    events: Vec<ReservationEvent>,
    inventories: &BTreeMap<Sku, Inventory>,
    command: impl Fn(Sku) -> InventoryCommand,
) -> Result<ReservationDecision, ReservationError> {
    let mut decision = ReservationDecision::empty(order_id);
    if events.is_empty() {
        return Ok(decision);
    }
    decision.reservation = events;
    for sku in reservation.skus() {
        let inventory = inventories
            .get(&sku)
            .ok_or_else(|| ReservationError::MissingInventory { sku: sku.clone() })?;
        let stock_events = inventory.decide(&command(sku.clone()))?;
        if !stock_events.is_empty() {
            decision.inventory.insert(sku, stock_events);
        }
    }
    Ok(decision)
}
