//! Inventory scenarios: receipts, adjustments, reserve, release, commit.

use aggregates::inventory::{
    Allocation, Inventory, InventoryCommand, InventoryError, InventoryEvent, StockLevel,
};
use aggregates::testing::given;
use aggregates::values::Warehouse;
use uuid::Uuid;

use crate::helpers::*;

fn received(warehouse: &str, quantity: u64) -> InventoryEvent {
    InventoryEvent::Received {
        sku: sku("SKU-1"),
        warehouse: wh(warehouse),
        quantity,
    }
}

fn allocation(warehouse: &str, quantity: u64) -> Allocation {
    Allocation {
        warehouse: wh(warehouse),
        quantity,
    }
}

fn reserved(order: Uuid, allocations: Vec<Allocation>) -> InventoryEvent {
    InventoryEvent::Reserved {
        sku: sku("SKU-1"),
        order_id: order,
        allocations,
    }
}

fn reserve(order: Uuid, quantity: u64) -> InventoryCommand {
    InventoryCommand::Reserve {
        sku: sku("SKU-1"),
        order_id: order,
        quantity,
    }
}

fn adjust(warehouse: &str, delta: i64) -> InventoryCommand {
    InventoryCommand::Adjust {
        sku: sku("SKU-1"),
        warehouse: wh(warehouse),
        delta,
        reason: "count".into(),
    }
}

#[test]
fn receiving_stock_adds_to_on_hand() {
    let state = given::<Inventory>([])
        .when(InventoryCommand::Receive {
            sku: sku("SKU-1"),
            warehouse: Warehouse::main(),
            quantity: 10,
        })
        .then([received("main", 10)]);
    assert_eq!(state.level(), StockLevel::new(10, 0));
    assert_eq!(state.sku, Some(sku("SKU-1")));
}

#[test]
fn receiving_nothing_is_invalid() {
    given::<Inventory>([])
        .when(InventoryCommand::Receive {
            sku: sku("SKU-1"),
            warehouse: wh("main"),
            quantity: 0,
        })
        .then_err(InventoryError::ZeroQuantity);
}

#[test]
fn stock_recorded_before_the_limits_takes_no_more_receipts_without_overflowing() {
    given::<Inventory>([received("main", u64::MAX)])
        .when(InventoryCommand::Receive {
            sku: sku("SKU-1"),
            warehouse: wh("main"),
            quantity: 1,
        })
        .then_err(InventoryError::WarehouseLimitExceeded {
            warehouse: wh("main"),
            on_hand: u64::MAX,
            increase: 1,
            max: aggregates::limits::MAX_ON_HAND_PER_WAREHOUSE,
        });
}

#[test]
fn a_command_for_another_sku_is_refused() {
    given::<Inventory>([received("main", 1)])
        .when(InventoryCommand::Release {
            sku: sku("OTHER"),
            order_id: order_id(1),
        })
        .then_err(InventoryError::SkuMismatch {
            expected: sku("SKU-1"),
            actual: sku("OTHER"),
        });
}

#[test]
fn adjusting_changes_on_hand() {
    let state = given::<Inventory>([received("main", 10)])
        .when(adjust("main", -2))
        .then([InventoryEvent::Adjusted {
            sku: sku("SKU-1"),
            warehouse: wh("main"),
            delta: -2,
            reason: "count".into(),
        }]);
    assert_eq!(state.level(), StockLevel::new(8, 0));
}

#[test]
fn adjusting_by_zero_is_invalid() {
    given::<Inventory>([received("main", 10)])
        .when(adjust("main", 0))
        .then_err(InventoryError::ZeroAdjustment);
}

#[test]
fn adjusting_below_zero_on_hand_is_refused() {
    given::<Inventory>([received("main", 3)])
        .when(adjust("main", -4))
        .then_err(InventoryError::NegativeOnHand {
            warehouse: wh("main"),
            on_hand: 3,
            delta: -4,
        });
    // The largest downward adjustment (i64::MIN is beyond it: see limits.rs).
    let largest = -i64::try_from(aggregates::limits::MAX_STOCK_MOVEMENT).unwrap();
    given::<Inventory>([received("main", 3)])
        .when(adjust("main", largest))
        .then_err(InventoryError::NegativeOnHand {
            warehouse: wh("main"),
            on_hand: 3,
            delta: largest,
        });
}

#[test]
fn adjusting_below_reserved_is_refused() {
    given::<Inventory>([
        received("main", 5),
        reserved(order_id(1), vec![allocation("main", 4)]),
    ])
    .when(adjust("main", -2))
    .then_err(InventoryError::BelowReserved {
        warehouse: wh("main"),
        delta: -2,
        reserved: 4,
    });
}

#[test]
fn reserving_uses_the_allocation_policy() {
    let state = given::<Inventory>([received("a", 3), received("b", 5)])
        .when(reserve(order_id(1), 4))
        .then([reserved(order_id(1), vec![allocation("b", 4)])]);
    assert_eq!(state.level(), StockLevel::new(8, 4));
    assert_eq!(
        state.warehouse_levels(),
        vec![
            (wh("a"), StockLevel::new(3, 0)),
            (wh("b"), StockLevel::new(5, 4))
        ]
    );
    assert_eq!(
        state.reservation(order_id(1)),
        Some(&[allocation("b", 4)][..])
    );
}

#[test]
fn reserving_more_than_available_is_rejected() {
    given::<Inventory>([
        received("a", 3),
        reserved(order_id(1), vec![allocation("a", 2)]),
    ])
    .when(reserve(order_id(2), 2))
    .then_err(InventoryError::InsufficientStock {
        sku: sku("SKU-1"),
        requested: 2,
        available: 1,
    });
}

#[test]
fn reserving_an_unknown_sku_reports_it_as_short() {
    given::<Inventory>([])
        .when(reserve(order_id(1), 1))
        .then_err(InventoryError::InsufficientStock {
            sku: sku("SKU-1"),
            requested: 1,
            available: 0,
        });
}

#[test]
fn reserving_nothing_is_invalid() {
    given::<Inventory>([received("a", 3)])
        .when(reserve(order_id(1), 0))
        .then_err(InventoryError::ZeroQuantity);
}

#[test]
fn reserving_again_for_the_same_order_is_a_no_op() {
    given::<Inventory>([
        received("a", 3),
        reserved(order_id(1), vec![allocation("a", 2)]),
    ])
    .when(reserve(order_id(1), 2))
    .then_nothing();
}

#[test]
fn releasing_gives_the_stock_back() {
    let state = given::<Inventory>([
        received("a", 3),
        reserved(order_id(1), vec![allocation("a", 2)]),
    ])
    .when(InventoryCommand::Release {
        sku: sku("SKU-1"),
        order_id: order_id(1),
    })
    .then([InventoryEvent::Released {
        sku: sku("SKU-1"),
        order_id: order_id(1),
        allocations: vec![allocation("a", 2)],
    }]);
    assert_eq!(state.level(), StockLevel::new(3, 0));
    assert!(state.reservations.is_empty());
}

#[test]
fn releasing_without_a_reservation_is_a_no_op() {
    given::<Inventory>([received("a", 3)])
        .when(InventoryCommand::Release {
            sku: sku("SKU-1"),
            order_id: order_id(1),
        })
        .then_nothing();
}

#[test]
fn committing_removes_the_stock_from_reserved_and_on_hand() {
    let state = given::<Inventory>([
        received("a", 3),
        received("b", 2),
        reserved(order_id(1), vec![allocation("a", 3), allocation("b", 1)]),
    ])
    .when(InventoryCommand::Commit {
        sku: sku("SKU-1"),
        order_id: order_id(1),
    })
    .then([InventoryEvent::Committed {
        sku: sku("SKU-1"),
        order_id: order_id(1),
        allocations: vec![allocation("a", 3), allocation("b", 1)],
    }]);
    assert_eq!(state.level(), StockLevel::new(1, 0));
    assert_eq!(
        state.warehouse_levels(),
        vec![
            (wh("a"), StockLevel::new(0, 0)),
            (wh("b"), StockLevel::new(1, 0))
        ]
    );
}

#[test]
fn committing_without_a_reservation_is_refused() {
    given::<Inventory>([received("a", 3)])
        .when(InventoryCommand::Commit {
            sku: sku("SKU-1"),
            order_id: order_id(1),
        })
        .then_err(InventoryError::NoReservation {
            order_id: order_id(1),
        });
}

#[test]
fn available_is_never_negative_in_a_level() {
    assert_eq!(StockLevel::new(2, 5).available, 0);
    assert_eq!(StockLevel::new(5, 2).available, 3);
}
