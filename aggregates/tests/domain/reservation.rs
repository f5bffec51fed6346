//! Reservation scenarios and the multi-stream reserve / release / commit decisions.

use std::collections::BTreeMap;

use aggregates::inventory::{Allocation, Inventory, InventoryEvent};
use aggregates::reservation::{
    commit_order, release_order, reserve_order, Reservation, ReservationCommand, ReservationError,
    ReservationEvent, ReservationStatus, SkuAllocation,
};
use aggregates::testing::given;
use aggregates::values::{Shortage, Sku};
use aggregates::{fold, Aggregate};

use crate::helpers::*;

fn stocked(name: &str, warehouses: &[(&str, u64)]) -> Inventory {
    let events: Vec<InventoryEvent> = warehouses
        .iter()
        .map(|(w, quantity)| InventoryEvent::Received {
            sku: sku(name),
            warehouse: wh(w),
            quantity: *quantity,
        })
        .collect();
    fold(&events)
}

fn inventories(list: Vec<Inventory>) -> BTreeMap<Sku, Inventory> {
    list.into_iter()
        .map(|inventory| (inventory.sku.clone().unwrap(), inventory))
        .collect()
}

fn sku_allocation(name: &str, warehouse: &str, quantity: u64) -> SkuAllocation {
    SkuAllocation {
        sku: sku(name),
        warehouse: wh(warehouse),
        quantity,
    }
}

#[test]
fn reserving_an_order_that_fits_reserves_every_sku_in_one_decision() {
    let stock = inventories(vec![
        stocked("A", &[("main", 5)]),
        stocked("B", &[("x", 1), ("y", 2)]),
    ]);
    let lines = [line("A", 2, "1"), line("B", 3, "1"), line("A", 1, "1")];
    let decision = reserve_order(&Reservation::default(), order_id(1), &lines, &stock).unwrap();
    assert_eq!(
        decision.reservation,
        vec![ReservationEvent::Reserved {
            order_id: order_id(1),
            allocations: vec![
                sku_allocation("A", "main", 3),
                sku_allocation("B", "y", 2),
                sku_allocation("B", "x", 1),
            ],
        }]
    );
    assert_eq!(
        decision.inventory[&sku("A")],
        vec![InventoryEvent::Reserved {
            sku: sku("A"),
            order_id: order_id(1),
            allocations: vec![Allocation {
                warehouse: wh("main"),
                quantity: 3
            }],
        }]
    );
    let streams: Vec<String> = decision
        .streams()
        .into_iter()
        .map(|s| s.stream_id)
        .collect();
    assert_eq!(
        streams,
        [
            format!("reservation-{}", order_id(1)),
            "inventory-A".to_owned(),
            "inventory-B".to_owned()
        ]
    );
}

#[test]
fn reserving_an_order_with_any_short_line_reserves_nothing_and_lists_every_shortage() {
    let stock = inventories(vec![
        stocked("A", &[("main", 1)]),
        stocked("B", &[("main", 9)]),
    ]);
    let lines = [line("A", 2, "1"), line("B", 3, "1"), line("C", 1, "1")];
    let decision = reserve_order(&Reservation::default(), order_id(1), &lines, &stock).unwrap();
    assert!(decision.inventory.is_empty());
    assert_eq!(
        decision.reservation,
        vec![ReservationEvent::Unavailable {
            order_id: order_id(1),
            shortages: vec![
                Shortage {
                    sku: sku("A"),
                    requested: 2,
                    available: 1
                },
                Shortage {
                    sku: sku("C"),
                    requested: 1,
                    available: 0
                },
            ],
        }]
    );
}

#[test]
fn reserving_an_order_already_decided_or_released_is_empty() {
    let stock = inventories(vec![stocked("A", &[("main", 5)])]);
    for event in [
        ReservationEvent::Reserved {
            order_id: order_id(1),
            allocations: vec![],
        },
        ReservationEvent::Unavailable {
            order_id: order_id(1),
            shortages: vec![],
        },
        ReservationEvent::Released {
            order_id: order_id(1),
        },
    ] {
        let state: Reservation = fold(&[event]);
        let decision = reserve_order(&state, order_id(1), &[line("A", 1, "1")], &stock).unwrap();
        assert!(decision.is_empty());
        assert!(decision.streams().is_empty());
    }
}

/// Reservation, and the inventory of A and B, after reserving 2 A and 1 B.
fn reserved_order() -> (Reservation, BTreeMap<Sku, Inventory>) {
    let stock = inventories(vec![
        stocked("A", &[("main", 5)]),
        stocked("B", &[("main", 5)]),
    ]);
    let decision = reserve_order(
        &Reservation::default(),
        order_id(1),
        &[line("A", 2, "1"), line("B", 1, "1")],
        &stock,
    )
    .unwrap();
    let reservation: Reservation = fold(&decision.reservation);
    let stock = stock
        .into_iter()
        .map(|(sku, inventory)| {
            let events = decision.inventory.get(&sku).cloned().unwrap_or_default();
            (sku, aggregates::fold_from(inventory, &events))
        })
        .collect();
    (reservation, stock)
}

#[test]
fn releasing_an_order_releases_every_sku() {
    let (reservation, stock) = reserved_order();
    assert_eq!(stock[&sku("A")].level().reserved, 2);
    let decision = release_order(&reservation, order_id(1), &stock).unwrap();
    assert_eq!(
        decision.reservation,
        vec![ReservationEvent::Released {
            order_id: order_id(1)
        }]
    );
    assert_eq!(decision.inventory.len(), 2);
    let after: Inventory =
        aggregates::fold_from(stock[&sku("A")].clone(), &decision.inventory[&sku("A")]);
    assert_eq!(after.level().reserved, 0);
    let released = fold::<Reservation, _>(&decision.reservation);
    assert!(release_order(
        &aggregates::fold_from(reservation, &decision.reservation),
        order_id(1),
        &stock
    )
    .unwrap()
    .is_empty());
    assert_eq!(released.status, ReservationStatus::Released);
}

#[test]
fn committing_an_order_commits_every_sku_once() {
    let (reservation, stock) = reserved_order();
    let decision = commit_order(&reservation, order_id(1), &stock).unwrap();
    assert_eq!(
        decision.reservation,
        vec![ReservationEvent::Committed {
            order_id: order_id(1)
        }]
    );
    let after: Inventory =
        aggregates::fold_from(stock[&sku("A")].clone(), &decision.inventory[&sku("A")]);
    assert_eq!(after.level().on_hand, 3);
    assert_eq!(after.level().reserved, 0);
    let committed = aggregates::fold_from(reservation, &decision.reservation);
    assert!(commit_order(&committed, order_id(1), &stock)
        .unwrap()
        .is_empty());
}

#[test]
fn releasing_or_committing_needs_every_inventory_involved() {
    let (reservation, _) = reserved_order();
    assert_eq!(
        release_order(&reservation, order_id(1), &BTreeMap::new()),
        Err(ReservationError::MissingInventory { sku: sku("A") })
    );
}

#[test]
fn a_reservation_records_its_first_outcome() {
    given::<Reservation>([])
        .when(ReservationCommand::Reserve {
            order_id: order_id(1),
            allocations: vec![],
        })
        .then([ReservationEvent::Reserved {
            order_id: order_id(1),
            allocations: vec![],
        }]);
    given::<Reservation>([])
        .when(ReservationCommand::MarkUnavailable {
            order_id: order_id(1),
            shortages: vec![],
        })
        .then([ReservationEvent::Unavailable {
            order_id: order_id(1),
            shortages: vec![],
        }]);
}

#[test]
fn a_later_outcome_is_a_no_op() {
    let reserved = ReservationEvent::Reserved {
        order_id: order_id(1),
        allocations: vec![],
    };
    given::<Reservation>([reserved.clone()])
        .when(ReservationCommand::MarkUnavailable {
            order_id: order_id(1),
            shortages: vec![],
        })
        .then_nothing();
    given::<Reservation>([reserved])
        .when(ReservationCommand::Reserve {
            order_id: order_id(1),
            allocations: vec![],
        })
        .then_nothing();
}

#[test]
fn releasing_before_any_reservation_leaves_a_tombstone_that_blocks_reserving() {
    let state = given::<Reservation>([])
        .when(ReservationCommand::Release {
            order_id: order_id(1),
        })
        .then([ReservationEvent::Released {
            order_id: order_id(1),
        }]);
    assert_eq!(state.status, ReservationStatus::Released);
    assert!(state
        .decide(&ReservationCommand::Reserve {
            order_id: order_id(1),
            allocations: vec![]
        })
        .unwrap()
        .is_empty());
}

#[test]
fn releasing_a_failed_or_released_reservation_is_a_no_op() {
    for event in [
        ReservationEvent::Unavailable {
            order_id: order_id(1),
            shortages: vec![],
        },
        ReservationEvent::Released {
            order_id: order_id(1),
        },
    ] {
        given::<Reservation>([event])
            .when(ReservationCommand::Release {
                order_id: order_id(1),
            })
            .then_nothing();
    }
}

#[test]
fn a_committed_reservation_cannot_be_released() {
    given::<Reservation>([
        ReservationEvent::Reserved {
            order_id: order_id(1),
            allocations: vec![],
        },
        ReservationEvent::Committed {
            order_id: order_id(1),
        },
    ])
    .when(ReservationCommand::Release {
        order_id: order_id(1),
    })
    .then_err(ReservationError::AlreadyCommitted);
}

#[test]
fn only_a_reserved_reservation_can_be_committed() {
    given::<Reservation>([])
        .when(ReservationCommand::Commit {
            order_id: order_id(1),
        })
        .then_err(ReservationError::NotReserved {
            status: ReservationStatus::None,
        });
    given::<Reservation>([ReservationEvent::Unavailable {
        order_id: order_id(1),
        shortages: vec![],
    }])
    .when(ReservationCommand::Commit {
        order_id: order_id(1),
    })
    .then_err(ReservationError::NotReserved {
        status: ReservationStatus::Failed,
    });
}

#[test]
fn a_command_for_another_order_is_refused() {
    given::<Reservation>([ReservationEvent::Released {
        order_id: order_id(1),
    }])
    .when(ReservationCommand::Release {
        order_id: order_id(2),
    })
    .then_err(ReservationError::OrderMismatch {
        expected: order_id(1),
        actual: order_id(2),
    });
}
