//! Property tests: invariants under random command sequences, determinism of
//! fold, JSON round trips of every emitted event and of the state (snapshots).

use std::collections::BTreeMap;

use aggregates::inventory::{Inventory, InventoryCommand};
use aggregates::order::{Order, OrderCommand, OrderStatus};
use aggregates::{fold, Aggregate, DomainEvent};
use proptest::prelude::*;

use crate::codec::assert_round_trips;
use crate::helpers::*;

fn inventory_command() -> impl Strategy<Value = InventoryCommand> {
    let warehouse = prop::sample::select(vec!["a", "b", "c"]).prop_map(wh);
    let order = (1u128..5).prop_map(order_id);
    prop_oneof![
        (warehouse.clone(), 0u64..20).prop_map(|(warehouse, quantity)| InventoryCommand::Receive {
            sku: sku("S"),
            warehouse,
            quantity
        }),
        (warehouse, -20i64..20).prop_map(|(warehouse, delta)| InventoryCommand::Adjust {
            sku: sku("S"),
            warehouse,
            delta,
            reason: "r".into()
        }),
        (order.clone(), 0u64..30).prop_map(|(order_id, quantity)| InventoryCommand::Reserve {
            sku: sku("S"),
            order_id,
            quantity
        }),
        order
            .clone()
            .prop_map(|order_id| InventoryCommand::Release {
                sku: sku("S"),
                order_id
            }),
        order.prop_map(|order_id| InventoryCommand::Commit {
            sku: sku("S"),
            order_id
        }),
    ]
}

fn order_command() -> impl Strategy<Value = OrderCommand> {
    prop_oneof![
        Just(place_command()),
        Just(OrderCommand::MarkReserved),
        Just(OrderCommand::Reject { shortages: vec![] }),
        Just(OrderCommand::Cancel { reason: "r".into() }),
        Just(OrderCommand::Ship),
        Just(OrderCommand::MarkPaid {
            amount: dec("20.48")
        }),
        Just(OrderCommand::MarkPaid { amount: dec("1") }),
        Just(OrderCommand::MarkPaymentFailed { reason: "r".into() }),
        Just(OrderCommand::RetryPayment),
    ]
}

/// Runs commands, keeping every emitted event; refused commands change nothing.
fn run<A: Aggregate>(commands: &[A::Command]) -> (A, Vec<A::Event>) {
    let mut state = A::default();
    let mut all = Vec::new();
    for command in commands {
        if let Ok(events) = state.decide(command) {
            state = aggregates::fold_from(state, &events);
            all.extend(events);
        }
    }
    (state, all)
}

fn assert_snapshot_round_trips<A: Aggregate + PartialEq + std::fmt::Debug>(state: &A) {
    let json = serde_json::to_string(state).unwrap();
    let back: A = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, state);
}

fn check_inventory(state: &Inventory) {
    let mut held: BTreeMap<_, u64> = BTreeMap::new();
    for allocation in state.reservations.values().flatten() {
        *held.entry(allocation.warehouse.clone()).or_default() += allocation.quantity;
    }
    for (warehouse, stock) in &state.warehouses {
        assert!(stock.reserved <= stock.on_hand, "{warehouse}: {stock:?}");
        assert_eq!(
            stock.reserved,
            held.get(warehouse).copied().unwrap_or(0),
            "{warehouse}"
        );
    }
    let level = state.level();
    assert_eq!(level.available, level.on_hand - level.reserved);
}

proptest! {
    #[test]
    fn random_inventory_commands_never_oversell(commands in prop::collection::vec(inventory_command(), 0..60)) {
        let mut state = Inventory::default();
        for command in &commands {
            if let Ok(events) = state.decide(command) {
                for event in &events {
                    // on hand computed without saturation never goes negative
                    if let aggregates::inventory::InventoryEvent::Adjusted { warehouse, delta, .. } = event {
                        let on_hand = state.warehouses.get(warehouse).map_or(0, |s| s.on_hand);
                        prop_assert!(i128::from(on_hand) + i128::from(*delta) >= 0);
                    }
                    assert_round_trips(event);
                    state = state.apply(event);
                }
                check_inventory(&state);
            }
        }
        assert_snapshot_round_trips(&state);
    }

    #[test]
    fn random_order_commands_follow_the_state_machine(commands in prop::collection::vec(order_command(), 0..30)) {
        use OrderStatus::*;
        let mut state = Order::default();
        for command in &commands {
            let before = state.status();
            if let Ok(events) = state.decide(command) {
                prop_assert!(events.len() <= 1);
                for event in &events {
                    assert_round_trips(event);
                    state = state.apply(event);
                    let allowed = matches!(
                        (before, event.event_type(), state.status()),
                        (None, "OrderPlaced", Some(Pending))
                            | (Some(Pending), "OrderReserved", Some(Reserved))
                            | (Some(Pending), "OrderRejected", Some(Rejected))
                            | (Some(Pending | Reserved), "OrderCancelled", Some(Cancelled))
                            | (Some(Reserved), "OrderShipped", Some(Shipped))
                            | (Some(Shipped), "OrderPaid", Some(Paid))
                            | (Some(Shipped), "OrderPaymentFailed", Some(PaymentFailed))
                            | (Some(PaymentFailed), "OrderPaymentRetryRequested", Some(Shipped))
                    );
                    prop_assert!(allowed, "{before:?} --{}--> {:?}", event.event_type(), state.status());
                }
            }
        }
        assert_snapshot_round_trips(&state);
    }

    #[test]
    fn fold_is_deterministic_and_equals_snapshot_plus_rest(
        commands in prop::collection::vec(inventory_command(), 0..40),
        split in 0usize..100,
    ) {
        let (state, events) = run::<Inventory>(&commands);
        let first: Inventory = fold(&events);
        let second: Inventory = fold(&events);
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(&first, &state);
        let split = split.min(events.len());
        let snapshot: Inventory = fold(&events[..split]);
        let snapshot: Inventory = serde_json::from_value(serde_json::to_value(&snapshot).unwrap()).unwrap();
        prop_assert_eq!(aggregates::fold_from(snapshot, &events[split..]), state);
    }
}
