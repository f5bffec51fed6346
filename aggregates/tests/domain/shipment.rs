//! Shipping an order: the order shipped and its reservation committed in
//! one decision, or nothing.

use std::collections::BTreeMap;

use aggregates::inventory::{Inventory, InventoryEvent};
use aggregates::order::{Order, OrderError, OrderEvent, OrderStatus};
use aggregates::reservation::{
    Reservation, ReservationError, ReservationEvent, ReservationStatus, SkuAllocation,
};
use aggregates::shipment::{ship_order, ShipmentError};
use aggregates::values::Sku;
use aggregates::{fold, fold_from, stream_id, Aggregate};

use crate::helpers::*;

fn order(events: &[OrderEvent]) -> Order {
    fold(&[&[placed()][..], events].concat())
}

fn reserved_stock() -> (Reservation, BTreeMap<Sku, Inventory>) {
    let mut inventories = BTreeMap::new();
    let mut allocations = Vec::new();
    for (name, quantity) in [("SKU-1", 2), ("SKU-2", 1)] {
        let received = InventoryEvent::Received {
            sku: sku(name),
            warehouse: wh("main"),
            quantity: 5,
        };
        let inventory: Inventory = fold(&[received]);
        let events = inventory
            .decide(&aggregates::inventory::InventoryCommand::Reserve {
                sku: sku(name),
                order_id: order_id(1),
                quantity,
            })
            .unwrap();
        inventories.insert(sku(name), fold_from(inventory, &events));
        allocations.push(SkuAllocation {
            sku: sku(name),
            warehouse: wh("main"),
            quantity,
        });
    }
    let reservation = fold(&[ReservationEvent::Reserved {
        order_id: order_id(1),
        allocations,
    }]);
    (reservation, inventories)
}

#[test]
fn shipping_a_reserved_order_ships_it_and_commits_every_sku_in_one_decision() {
    let (reservation, stock) = reserved_stock();
    let decision = ship_order(
        &order(&[OrderEvent::Reserved {}]),
        order_id(1),
        &reservation,
        &stock,
    )
    .unwrap();
    assert_eq!(decision.order, vec![OrderEvent::Shipped {}]);
    assert_eq!(
        decision.reservation.reservation,
        vec![ReservationEvent::Committed {
            order_id: order_id(1)
        }]
    );
    assert_eq!(
        decision.reservation.inventory.keys().collect::<Vec<_>>(),
        [&sku("SKU-1"), &sku("SKU-2")]
    );
    assert!(decision
        .reservation
        .inventory
        .values()
        .all(|events| matches!(events[..], [InventoryEvent::Committed { .. }])));
    let streams: Vec<String> = decision
        .streams()
        .into_iter()
        .map(|s| s.stream_id)
        .collect();
    assert_eq!(
        streams,
        [
            stream_id::<Order>(order_id(1)),
            stream_id::<Reservation>(order_id(1)),
            stream_id::<Inventory>("SKU-1"),
            stream_id::<Inventory>("SKU-2"),
        ]
    );
    for (sku, events) in &decision.reservation.inventory {
        let after = fold_from(stock[sku].clone(), events);
        assert_eq!(after.level().reserved, 0, "{sku} keeps nothing reserved");
    }
}

#[test]
fn shipping_a_shipped_order_whose_reservation_is_committed_decides_nothing() {
    let (reservation, stock) = reserved_stock();
    let committed = fold_from(
        reservation,
        &[ReservationEvent::Committed {
            order_id: order_id(1),
        }],
    );
    for later in [
        vec![OrderEvent::Shipped {}],
        vec![
            OrderEvent::Shipped {},
            OrderEvent::Paid {
                amount: dec("20.48"),
            },
        ],
        vec![
            OrderEvent::Shipped {},
            OrderEvent::PaymentFailed { reason: "x".into() },
        ],
    ] {
        let events = [&[OrderEvent::Reserved {}][..], &later].concat();
        let decision = ship_order(&order(&events), order_id(1), &committed, &stock).unwrap();
        assert!(decision.is_empty(), "{later:?}: {decision:?}");
    }
}

#[test]
fn a_shipped_order_whose_reservation_is_still_held_only_commits_it() {
    let (reservation, stock) = reserved_stock();
    let shipped = order(&[OrderEvent::Reserved {}, OrderEvent::Shipped {}]);
    let decision = ship_order(&shipped, order_id(1), &reservation, &stock).unwrap();
    assert!(decision.order.is_empty());
    assert_eq!(
        decision.reservation.reservation,
        vec![ReservationEvent::Committed {
            order_id: order_id(1)
        }]
    );
    assert_eq!(decision.reservation.inventory.len(), 2);
}

#[test]
fn an_order_that_may_not_ship_commits_nothing() {
    let (reservation, stock) = reserved_stock();
    let cancelled = order(&[
        OrderEvent::Reserved {},
        OrderEvent::Cancelled { reason: "r".into() },
    ]);
    assert_eq!(
        ship_order(&cancelled, order_id(1), &reservation, &stock),
        Err(ShipmentError::Order(OrderError::CannotShip {
            status: OrderStatus::Cancelled
        }))
    );
    assert_eq!(
        ship_order(&order(&[]), order_id(1), &Reservation::default(), &stock),
        Err(ShipmentError::Order(OrderError::CannotShip {
            status: OrderStatus::Pending
        }))
    );
    assert_eq!(
        ship_order(&Order::default(), order_id(1), &reservation, &stock),
        Err(ShipmentError::Order(OrderError::NotPlaced))
    );
}

#[test]
fn a_reserved_order_without_a_held_reservation_is_refused_as_a_reservation_error() {
    let (_, stock) = reserved_stock();
    let released = fold(&[ReservationEvent::Released {
        order_id: order_id(1),
    }]);
    assert_eq!(
        ship_order(
            &order(&[OrderEvent::Reserved {}]),
            order_id(1),
            &released,
            &stock
        ),
        Err(ShipmentError::Reservation(ReservationError::NotReserved {
            status: ReservationStatus::Released
        }))
    );
}
