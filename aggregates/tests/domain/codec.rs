//! Event encoding: stable names, JSON round trips, the OrderPlaced v1 upcast,
//! decode errors.

use aggregates::inventory::{Allocation, InventoryEvent};
use aggregates::order::OrderEvent;
use aggregates::payment::PaymentEvent;
use aggregates::reservation::{ReservationEvent, SkuAllocation};
use aggregates::values::{Currency, PaymentMethod, Shortage};
use aggregates::{DomainEvent, EventDecodeError};

use crate::helpers::*;

/// Asserts `event` survives the store's encoding and its type tag matches serde's.
pub fn assert_round_trips<E: DomainEvent + serde::Serialize>(event: &E) {
    let tagged = serde_json::to_value(event).unwrap();
    assert_eq!(tagged["type"], event.event_type(), "serde tag of {event:?}");
    let decoded = E::from_stored(event.event_type(), event.schema_version(), event.to_json());
    assert_eq!(decoded.as_ref(), Ok(event));
}

fn shortage() -> Shortage {
    Shortage {
        sku: sku("A"),
        requested: 2,
        available: 1,
    }
}

#[test]
fn every_event_round_trips_through_its_stored_form() {
    let allocations = vec![Allocation {
        warehouse: wh("main"),
        quantity: 2,
    }];
    let order = [
        placed(),
        OrderEvent::Reserved {},
        OrderEvent::Rejected {
            shortages: vec![shortage()],
        },
        OrderEvent::Cancelled { reason: "r".into() },
        OrderEvent::Shipped {},
        OrderEvent::Paid {
            amount: dec("20.48"),
        },
        OrderEvent::PaymentFailed { reason: "r".into() },
        OrderEvent::PaymentRetryRequested { round: 2 },
    ];
    let inventory = [
        InventoryEvent::Received {
            sku: sku("A"),
            warehouse: wh("main"),
            quantity: 3,
        },
        InventoryEvent::Adjusted {
            sku: sku("A"),
            warehouse: wh("main"),
            delta: -1,
            reason: "r".into(),
        },
        InventoryEvent::Reserved {
            sku: sku("A"),
            order_id: order_id(1),
            allocations: allocations.clone(),
        },
        InventoryEvent::Released {
            sku: sku("A"),
            order_id: order_id(1),
            allocations: allocations.clone(),
        },
        InventoryEvent::Committed {
            sku: sku("A"),
            order_id: order_id(1),
            allocations,
        },
    ];
    let reservation = [
        ReservationEvent::Reserved {
            order_id: order_id(1),
            allocations: vec![SkuAllocation {
                sku: sku("A"),
                warehouse: wh("main"),
                quantity: 2,
            }],
        },
        ReservationEvent::Unavailable {
            order_id: order_id(1),
            shortages: vec![shortage()],
        },
        ReservationEvent::Released {
            order_id: order_id(1),
        },
        ReservationEvent::Committed {
            order_id: order_id(1),
        },
    ];
    let payment = [
        PaymentEvent::Requested {
            order_id: order_id(1),
            amount: dec("20.48"),
            currency: Currency::Jpy,
            method: PaymentMethod::CardDeclined,
            attempt: 1,
        },
        PaymentEvent::Captured {
            reference: "r".into(),
            amount: dec("20.48"),
            attempt: 1,
        },
        PaymentEvent::Failed {
            reason: "r".into(),
            retryable: true,
            attempt: 1,
        },
        PaymentEvent::Refunded {
            amount: dec("20.48"),
        },
    ];
    order.iter().for_each(assert_round_trips);
    inventory.iter().for_each(assert_round_trips);
    reservation.iter().for_each(assert_round_trips);
    payment.iter().for_each(assert_round_trips);
}

#[test]
fn money_is_stored_as_a_decimal_string() {
    assert_eq!(placed().to_json()["total"], "20.48");
    assert_eq!(placed().to_json()["lines"][0]["unit_price"], "9.99");
    assert_eq!(placed().to_json()["currency"], "EUR");
    assert_eq!(placed().schema_version(), 2);
}

#[test]
fn a_stored_order_placed_v1_is_upcast_to_usd() {
    let stored: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/order_placed_v1.json")).unwrap();
    let event = OrderEvent::from_stored(
        stored["event_type"].as_str().unwrap(),
        i32::try_from(stored["schema_version"].as_i64().unwrap()).unwrap(),
        stored["data"].clone(),
    )
    .unwrap();
    let OrderEvent::Placed {
        currency,
        total,
        lines,
        customer_id,
        ..
    } = event
    else {
        panic!("expected OrderPlaced, got {event:?}");
    };
    assert_eq!(currency, Currency::Usd);
    assert_eq!(total, dec("20.48"));
    assert_eq!(
        lines,
        vec![line("SKU-1", 2, "9.99"), line("SKU-2", 1, "0.50")]
    );
    assert_eq!(customer_id, "c-42");
}

#[test]
fn a_stored_retry_request_keeps_its_shape_and_reads_as_its_round() {
    let stored: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/order_payment_retry_requested_v1.json"
    ))
    .unwrap();
    let event = OrderEvent::from_stored(
        stored["event_type"].as_str().unwrap(),
        i32::try_from(stored["schema_version"].as_i64().unwrap()).unwrap(),
        stored["data"].clone(),
    )
    .unwrap();
    assert_eq!(event, OrderEvent::PaymentRetryRequested { round: 2 });
    assert_eq!(event.schema_version(), 1);
    assert_eq!(event.to_json(), stored["data"], "written as it was stored");
}

#[test]
fn unknown_types_future_versions_and_bad_data_are_decode_errors() {
    assert_eq!(
        OrderEvent::from_stored("OrderTeleported", 1, serde_json::json!({})),
        Err(EventDecodeError::UnknownType {
            event_type: "OrderTeleported".into()
        })
    );
    assert_eq!(
        OrderEvent::from_stored("OrderPlaced", 3, serde_json::json!({})),
        Err(EventDecodeError::UnsupportedVersion {
            event_type: "OrderPlaced".into(),
            schema_version: 3,
            current: 2
        })
    );
    assert!(matches!(
        InventoryEvent::from_stored("StockReceived", 1, serde_json::json!({"sku": "bad sku"})),
        Err(EventDecodeError::InvalidData { .. })
    ));
    assert!(matches!(
        PaymentEvent::from_stored("OrderPlaced", 1, serde_json::json!({})),
        Err(EventDecodeError::UnknownType { .. })
    ));
}

#[test]
fn identifiers_accept_only_the_documented_pattern() {
    assert!(aggregates::values::Sku::parse("SKU-1.a_b").is_ok());
    assert!(aggregates::values::Sku::parse("x".repeat(64)).is_ok());
    for bad in ["", "has space", "é", &"x".repeat(65)] {
        assert!(aggregates::values::Sku::parse(bad).is_err(), "{bad:?}");
    }
    assert!(serde_json::from_str::<aggregates::values::Sku>("\"a/b\"").is_err());
}
