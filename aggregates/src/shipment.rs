//! Shipping an order: the order marked shipped and its reservation
//! committed (every SKU's stock leaves on hand), decided together for one
//! atomic append to the order, reservation and inventory streams.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::inventory::Inventory;
use crate::order::{Order, OrderCommand, OrderError, OrderEvent};
use crate::reservation::{commit_order, Reservation, ReservationDecision, ReservationError};
use crate::values::Sku;
use crate::{stream_id, Aggregate, EncodedEvent, StreamEvents};

/// Events to append, per stream. Empty when the order is shipped and its
/// reservation committed already.
#[derive(Clone, Debug, PartialEq)]
pub struct ShipmentDecision {
    /// For `order-{order_id}`.
    pub order: Vec<OrderEvent>,
    /// For `reservation-{order_id}` and the `inventory-{sku}` it holds.
    pub reservation: ReservationDecision,
}

impl ShipmentDecision {
    pub fn order_id(&self) -> Uuid {
        self.reservation.order_id
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty() && self.reservation.is_empty()
    }

    /// Encoded events per stream id: the order stream first, then those of
    /// [`ReservationDecision::streams`]. Streams without events are left out.
    pub fn streams(&self) -> Vec<StreamEvents> {
        let mut streams = Vec::new();
        if !self.order.is_empty() {
            streams.push(StreamEvents {
                stream_id: stream_id::<Order>(self.order_id()),
                events: self.order.iter().map(EncodedEvent::of).collect(),
            });
        }
        streams.extend(self.reservation.streams());
        streams
    }
}

/// Why an order cannot ship.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShipmentError {
    /// The order's own rules refuse (not placed, pending, rejected,
    /// cancelled): the caller's answer.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The order may ship but its reservation cannot be committed: the two
    /// aggregates disagree, which the choreography never leaves them in.
    #[error(transparent)]
    Reservation(#[from] ReservationError),
}

/// Ships `order_id`: `OrderShipped`, `InventoryCommitted` and one
/// `StockCommitted` per SKU held, all or nothing.
///
/// The order decides first, so a cancelled (or never reserved) order
/// commits nothing. An order already shipped ships no second time, but a
/// reservation still held is committed: stores written by the former
/// two-step ship may hold an order shipped whose commit never came.
/// `inventories` must hold every SKU of [`Reservation::skus`].
pub fn ship_order(
    order: &Order,
    order_id: Uuid,
    reservation: &Reservation,
    inventories: &BTreeMap<Sku, Inventory>,
) -> Result<ShipmentDecision, ShipmentError> {
    let order_events = order.decide(&OrderCommand::Ship)?;
    let reservation = commit_order(reservation, order_id, inventories)?;
    Ok(ShipmentDecision {
        order: order_events,
        reservation,
    })
}
