use aggregates::inventory::{Allocation, InventoryEvent};
use aggregates::order::{OrderEvent, OrderLine};
use aggregates::payment::PaymentEvent;
use aggregates::reservation::{ReservationEvent, SkuAllocation};
use aggregates::values::{Currency, PaymentMethod, Shortage, Sku, Warehouse};
use aggregates::DomainEvent;
use chrono::{TimeZone, Utc};
use event_store::RecordedEvent;
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::{fold_stock, stock_changes};

fn recorded(stream_id: &str, version: i64, event: &impl DomainEvent) -> RecordedEvent {
    RecordedEvent {
        position: version,
        transaction_id: 1,
        stream_id: stream_id.to_owned(),
        stream_version: version,
        event_id: Uuid::new_v4(),
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        data: event.to_json(),
        metadata: json!({}),
        correlation_id: None,
        causation_id: None,
        recorded_at: Utc
            .with_ymd_and_hms(2026, 12, 1, 10, 0, version as u32)
            .single()
            .expect("time"),
    }
}

fn sku(name: &str) -> Sku {
    Sku::parse(name).expect("sku")
}

fn warehouse(name: &str) -> Warehouse {
    Warehouse::parse(name).expect("warehouse")
}

fn dec(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

const ORDER: Uuid = Uuid::from_u128(0x42);

fn order_stream() -> String {
    format!("order-{ORDER}")
}

fn placed() -> RecordedEvent {
    recorded(
        &order_stream(),
        1,
        &OrderEvent::Placed {
            order_id: ORDER,
            customer_id: "c-1".into(),
            currency: Currency::Eur,
            lines: vec![OrderLine {
                sku: sku("SKU-1"),
                quantity: 2,
                unit_price: dec("9.95"),
            }],
            total: dec("19.90"),
            payment_method: PaymentMethod::CardOk,
        },
    )
}

fn only(event: &RecordedEvent, earlier: &[RecordedEvent]) -> IntegrationEvent {
    let mut mapped = integration_events(event, earlier).expect("maps");
    assert_eq!(mapped.len(), 1, "{mapped:?}");
    mapped.remove(0)
}

#[test]
fn order_placed_carries_lines_total_currency_and_method() {
    let event = placed();
    let message = only(&event, &[]);
    assert_eq!(message.name, "order.placed.v1");
    assert_eq!(message.schema_version, 1);
    assert_eq!(message.message_id, event.event_id);
    assert_eq!(
        message.payload,
        json!({
            "order_id": ORDER, "customer_id": "c-1", "currency": "EUR",
            "payment_method": "card_ok",
            "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.95"}],
            "total": "19.90", "placed_at": "2026-12-01T10:00:01Z"
        })
    );
    assert!(!needs_history(&event));
}

#[test]
fn order_placed_v1_without_currency_is_upcast_to_usd() {
    let mut event = placed();
    event.schema_version = 1;
    event
        .data
        .as_object_mut()
        .expect("object")
        .remove("currency");
    assert_eq!(only(&event, &[]).payload["currency"], "USD");
}

#[test]
fn order_shipped_takes_customer_lines_and_total_from_order_placed() {
    let shipped = recorded(&order_stream(), 3, &OrderEvent::Shipped {});
    assert!(needs_history(&shipped));
    let reserved = recorded(&order_stream(), 2, &OrderEvent::Reserved {});
    let mapped = integration_events(&shipped, &[placed(), reserved]).expect("maps");
    let [v1, v2] = mapped.as_slice() else {
        panic!("v1 and v2: {mapped:?}");
    };
    assert_eq!(v1.name, "order.shipped.v1");
    assert_eq!(
        v1.payload,
        json!({
            "order_id": ORDER, "customer_id": "c-1", "currency": "EUR", "total": "19.90",
            "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.95"}],
            "shipped_at": "2026-12-01T10:00:03Z"
        })
    );
    assert_eq!(v2.name, "order.shipped.v2");
    assert_eq!(v2.schema_version, 2);
    assert_eq!(
        v2.payload,
        json!({
            "order_id": ORDER, "customer_id": "c-1",
            "total": {"amount": "19.90", "currency": "EUR"},
            "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.95"}],
            "shipped_at": "2026-12-01T10:00:03Z"
        })
    );
}

#[test]
fn order_shipped_v1_and_v2_have_their_own_ids_stable_across_mappings() {
    let shipped = recorded(&order_stream(), 3, &OrderEvent::Shipped {});
    let ids = |mapped: Vec<IntegrationEvent>| -> Vec<uuid::Uuid> {
        mapped
            .into_iter()
            .map(|message| message.message_id)
            .collect()
    };
    let first = ids(integration_events(&shipped, &[placed()]).expect("maps"));
    let again = ids(integration_events(&shipped, &[placed()]).expect("maps"));
    assert_eq!(first, again);
    assert_eq!(first[0], shipped.event_id);
    assert_ne!(first[1], shipped.event_id);
}

#[test]
fn order_shipped_without_its_order_placed_is_an_error_not_a_guess() {
    let shipped = recorded(&order_stream(), 3, &OrderEvent::Shipped {});
    assert!(matches!(
        integration_events(&shipped, &[]),
        Err(ContractError::MissingHistory {
            needs: "OrderPlaced",
            ..
        })
    ));
}

#[test]
fn order_cancelled_and_paid() {
    let cancelled = recorded(
        &order_stream(),
        2,
        &OrderEvent::Cancelled {
            reason: "changed mind".into(),
        },
    );
    assert_eq!(
        only(&cancelled, &[]).payload,
        json!({"order_id": ORDER, "reason": "changed mind", "cancelled_at": "2026-12-01T10:00:02Z"})
    );
    let paid = recorded(
        &order_stream(),
        4,
        &OrderEvent::Paid {
            amount: dec("19.90"),
        },
    );
    let message = only(&paid, &[placed()]);
    assert_eq!(message.name, "order.paid.v1");
    assert_eq!(
        message.payload,
        json!({"order_id": ORDER, "amount": "19.90", "currency": "EUR", "paid_at": "2026-12-01T10:00:04Z"})
    );
}

#[test]
fn order_events_said_by_other_contracts_map_to_nothing() {
    for event in [
        OrderEvent::Reserved {},
        OrderEvent::Rejected { shortages: vec![] },
        OrderEvent::PaymentFailed {
            reason: "declined".into(),
        },
        OrderEvent::PaymentRetryRequested { round: 2 },
    ] {
        let recorded = recorded(&order_stream(), 2, &event);
        assert_eq!(integration_events(&recorded, &[]).expect("maps"), vec![]);
    }
}

#[test]
fn reservation_reserved_and_unavailable() {
    let stream = format!("reservation-{ORDER}");
    let reserved = recorded(
        &stream,
        1,
        &ReservationEvent::Reserved {
            order_id: ORDER,
            allocations: vec![SkuAllocation {
                sku: sku("SKU-1"),
                warehouse: warehouse("north"),
                quantity: 2,
            }],
        },
    );
    let message = only(&reserved, &[]);
    assert_eq!(message.name, "inventory.reserved.v1");
    assert_eq!(
        message.payload,
        json!({"order_id": ORDER, "lines": [{"sku": "SKU-1", "warehouse": "north", "quantity": 2}],
               "reserved_at": "2026-12-01T10:00:01Z"})
    );
    let unavailable = recorded(
        &stream,
        1,
        &ReservationEvent::Unavailable {
            order_id: ORDER,
            shortages: vec![Shortage {
                sku: sku("SKU-1"),
                requested: 5,
                available: 3,
            }],
        },
    );
    let message = only(&unavailable, &[]);
    assert_eq!(message.name, "inventory.unavailable.v1");
    assert_eq!(
        message.payload,
        json!({"order_id": ORDER, "shortages": [{"sku": "SKU-1", "requested": 5, "available": 3}],
               "rejected_at": "2026-12-01T10:00:01Z"})
    );
    let released = recorded(&stream, 2, &ReservationEvent::Released { order_id: ORDER });
    assert_eq!(integration_events(&released, &[]).expect("maps"), vec![]);
}

fn requested(attempt: u32, version: i64) -> RecordedEvent {
    recorded(
        &format!("payment-{ORDER}"),
        version,
        &PaymentEvent::Requested {
            order_id: ORDER,
            amount: dec("19.90"),
            currency: Currency::Eur,
            method: PaymentMethod::CardFlaky,
            attempt,
        },
    )
}

#[test]
fn payment_failed_then_captured_name_their_own_attempt() {
    let stream = format!("payment-{ORDER}");
    let first = requested(1, 1);
    let failed = recorded(
        &stream,
        2,
        &PaymentEvent::Failed {
            reason: "timeout".into(),
            retryable: true,
            attempt: 1,
        },
    );
    let second = requested(2, 3);
    let captured = recorded(
        &stream,
        4,
        &PaymentEvent::Captured {
            reference: "ref-7".into(),
            amount: dec("19.90"),
            attempt: 2,
        },
    );
    assert!(needs_history(&failed) && needs_history(&captured));
    assert!(!needs_history(&first));
    assert_eq!(integration_events(&first, &[]).expect("maps"), vec![]);
    let message = only(&failed, std::slice::from_ref(&first));
    assert_eq!(message.name, "payment.failed.v1");
    assert_eq!(
        message.payload,
        json!({"order_id": ORDER, "payment_id": first.event_id, "amount": "19.90", "currency": "EUR",
               "reason": "timeout", "final": false, "failed_at": "2026-12-01T10:00:02Z"})
    );
    let message = only(&captured, &[first, failed, second.clone()]);
    assert_eq!(message.name, "payment.captured.v1");
    assert_eq!(
        message.payload,
        json!({"order_id": ORDER, "payment_id": second.event_id, "amount": "19.90", "currency": "EUR",
               "reference": "ref-7", "captured_at": "2026-12-01T10:00:04Z"})
    );
}

#[test]
fn a_final_payment_failure_says_so() {
    let first = requested(1, 1);
    let failed = recorded(
        &format!("payment-{ORDER}"),
        2,
        &PaymentEvent::Failed {
            reason: "declined".into(),
            retryable: false,
            attempt: 1,
        },
    );
    assert_eq!(only(&failed, &[first]).payload["final"], true);
}

#[test]
fn stock_changes_carry_the_warehouse_levels_after_them() {
    let stream = "inventory-SKU-1";
    let north = || warehouse("north");
    let south = || warehouse("south");
    let received_north = recorded(
        stream,
        1,
        &InventoryEvent::Received {
            sku: sku("SKU-1"),
            warehouse: north(),
            quantity: 5,
        },
    );
    let received_south = recorded(
        stream,
        2,
        &InventoryEvent::Received {
            sku: sku("SKU-1"),
            warehouse: south(),
            quantity: 4,
        },
    );
    let adjusted = recorded(
        stream,
        3,
        &InventoryEvent::Adjusted {
            sku: sku("SKU-1"),
            warehouse: north(),
            delta: -1,
            reason: "broken".into(),
        },
    );
    let reserved = recorded(
        stream,
        4,
        &InventoryEvent::Reserved {
            sku: sku("SKU-1"),
            order_id: ORDER,
            allocations: vec![
                Allocation {
                    warehouse: north(),
                    quantity: 4,
                },
                Allocation {
                    warehouse: south(),
                    quantity: 2,
                },
            ],
        },
    );
    let committed = recorded(
        stream,
        5,
        &InventoryEvent::Committed {
            sku: sku("SKU-1"),
            order_id: ORDER,
            allocations: vec![Allocation {
                warehouse: south(),
                quantity: 2,
            }],
        },
    );
    let all = [
        received_north,
        received_south,
        adjusted,
        reserved,
        committed,
    ];

    let message = only(&all[0], &[]);
    assert_eq!(message.name, "stock.changed.v1");
    assert_eq!(message.message_id, all[0].event_id);
    assert_eq!(
        message.payload,
        json!({"sku": "SKU-1", "warehouse": "north", "change": "received", "quantity": 5,
               "on_hand": 5, "reserved": 0, "available": 5, "changed_at": "2026-12-01T10:00:01Z"})
    );
    let adjusted = only(&all[2], &all[..2]).payload;
    assert_eq!(
        (adjusted["change"].clone(), adjusted["quantity"].clone()),
        (json!("adjusted"), json!(-1))
    );
    assert_eq!(adjusted["on_hand"], 4);

    let reserved = integration_events(&all[3], &all[..3]).expect("maps");
    assert_eq!(reserved.len(), 2, "one message per warehouse");
    assert_eq!(reserved[0].message_id, all[3].event_id);
    assert_ne!(reserved[1].message_id, all[3].event_id);
    assert_eq!(
        reserved[1].message_id,
        integration_events(&all[3], &all[..3]).expect("maps")[1].message_id,
        "stable ids"
    );
    assert_eq!(
        (
            reserved[0].payload["warehouse"].clone(),
            reserved[0].payload["reserved"].clone(),
            reserved[0].payload["available"].clone()
        ),
        (json!("north"), json!(4), json!(0))
    );
    assert_eq!(reserved[1].payload["available"], 2);

    let committed = only(&all[4], &all[..4]).payload;
    assert_eq!(
        committed,
        json!({"sku": "SKU-1", "warehouse": "south", "change": "committed", "quantity": 2,
               "on_hand": 2, "reserved": 0, "available": 2, "changed_at": "2026-12-01T10:00:05Z"})
    );
}

#[test]
fn undecodable_events_and_bad_stream_ids_are_typed_errors() {
    let mut broken = placed();
    broken.data = json!({"order_id": "not a uuid"});
    assert!(matches!(
        integration_events(&broken, &[]),
        Err(ContractError::Decode { .. })
    ));
    let cancelled = recorded("order-42", 2, &OrderEvent::Cancelled { reason: "x".into() });
    assert!(matches!(
        integration_events(&cancelled, &[]),
        Err(ContractError::StreamId(_))
    ));
}

#[test]
fn other_categories_publish_nothing() {
    let mut event = placed();
    event.stream_id = "audit-1".into();
    assert_eq!(integration_events(&event, &[]).expect("maps"), vec![]);
}

#[test]
fn every_contract_has_a_json_schema_with_its_fields() {
    let schema = serde_json::to_value(schemars::schema_for!(OrderShippedV1)).expect("schema");
    for field in [
        "order_id",
        "customer_id",
        "currency",
        "total",
        "lines",
        "shipped_at",
    ] {
        assert!(
            schema["properties"].get(field).is_some(),
            "{field} in {schema}"
        );
    }
    assert_eq!(schema["properties"]["total"]["type"], "string");
    assert_eq!(CONTRACTS.len(), 10);
}

#[test]
fn stock_changes_from_a_kept_state_equal_those_from_the_whole_stream() {
    let stream = "inventory-SKU-2";
    let events: Vec<RecordedEvent> = (1..=6)
        .map(|version| {
            recorded(
                stream,
                version,
                &InventoryEvent::Received {
                    sku: sku("SKU-2"),
                    warehouse: warehouse(if version % 2 == 0 { "north" } else { "south" }),
                    quantity: version as u64,
                },
            )
        })
        .collect();
    let mut kept = aggregates::inventory::Inventory::default();
    for (index, event) in events.iter().enumerate() {
        let (messages, after) = stock_changes(event, kept).expect("maps");
        assert_eq!(
            messages,
            integration_events(event, &events[..index]).expect("maps")
        );
        assert_eq!(after, fold_stock(&events[..=index]).expect("folds"));
        kept = after;
    }
}
