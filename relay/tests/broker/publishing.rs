use std::collections::{HashMap, HashSet};

use aggregates::order::OrderStatus;
use aggregates::values::PaymentMethod;
use lapin::types::AMQPValue;
use uuid::Uuid;

use crate::helpers::{broker_url, wait_until, Queue, Received, TestApp};

/// Every contract once per source event (redeliveries only with the same
/// message id and body), each stream's messages in log order.
fn assert_published_once_in_order(
    received: &[Received],
    expected: &[(Uuid, &'static str, String)],
) {
    let mut first: HashMap<Uuid, &Received> = HashMap::new();
    let mut order: Vec<&Received> = Vec::new();
    for message in received {
        match first.get(&message.message_id) {
            Some(earlier) => assert_eq!(
                (&earlier.body, &earlier.routing_key),
                (&message.body, &message.routing_key),
                "a message id is only ever reused by a redelivery of the same message"
            ),
            None => {
                first.insert(message.message_id, message);
                order.push(message);
            }
        }
    }
    let expected_ids: HashSet<Uuid> = expected.iter().map(|(id, _, _)| *id).collect();
    let received_ids: HashSet<Uuid> = first.keys().copied().collect();
    assert_eq!(
        received_ids, expected_ids,
        "every contract published, none extra"
    );
    for (id, name, stream_id) in expected {
        let message = first[id];
        assert_eq!(message.routing_key, *name, "routing key = contract name");
        assert_eq!(message.stream_id(), *stream_id);
    }
    let mut last_position: HashMap<String, i64> = HashMap::new();
    for message in order {
        let position = message.log_position();
        let previous = last_position.insert(message.stream_id(), position);
        assert!(
            previous.is_none_or(|previous| previous <= position),
            "stream {} out of order: {previous:?} then {position}",
            message.stream_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contract_is_published_once_per_source_event_in_stream_order() {
    let app = TestApp::new().await;
    let queue = Queue::bind(&app.exchange).await;
    app.receive("SKU-1", 40).await;
    let runtime = app.start(&broker_url().await);
    let mut orders = Vec::new();
    for index in 0..12 {
        let method = match index % 3 {
            0 => PaymentMethod::CardOk,
            1 => PaymentMethod::CardFlaky,
            _ => PaymentMethod::CardDeclined,
        };
        orders.push(app.place("SKU-1", 1, method).await);
    }
    // Too much: rejected, inventory.unavailable.v1.
    let rejected = app.place("SKU-1", 500, PaymentMethod::CardOk).await;
    for order_id in &orders {
        wait_until("every order is paid or has failed for good", || async {
            matches!(
                app.status(*order_id).await,
                Some(OrderStatus::Paid | OrderStatus::PaymentFailed)
            )
        })
        .await;
    }
    wait_until("the too-large order is rejected", || async {
        app.status(rejected).await == Some(OrderStatus::Rejected)
    })
    .await;
    let expected = app.expected_messages().await;
    queue.wait_for(&expected).await;
    runtime.shutdown().await;

    let received = queue.snapshot();
    assert_published_once_in_order(&received, &expected);
    // The relay maps inventory events from the stock it keeps between
    // events: the same bodies as the mapping over the whole stream.
    let bodies = app.expected_bodies().await;
    for message in &received {
        assert_eq!(
            message.body, bodies[&message.message_id],
            "{}",
            message.routing_key
        );
    }
    let names: HashSet<&str> = expected.iter().map(|(_, name, _)| *name).collect();
    for name in [
        "order.placed.v1",
        "inventory.reserved.v1",
        "inventory.unavailable.v1",
        "order.shipped.v1",
        "order.shipped.v2",
        "payment.captured.v1",
        "payment.failed.v1",
        "order.paid.v1",
        "stock.changed.v1",
    ] {
        assert!(
            names.contains(name),
            "the workload published {name}: {names:?}"
        );
    }
    assert_eq!(app.relay_parked().await, 0);
    queue.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_the_agreed_properties_and_headers() {
    let app = TestApp::new().await;
    let queue = Queue::bind(&app.exchange).await;
    let runtime = app.start_relay_only(&broker_url().await);
    let order_id = app.place("SKU-1", 2, PaymentMethod::CardOk).await;
    let placed = app
        .log()
        .await
        .into_iter()
        .find(|event| event.event_type == "OrderPlaced")
        .expect("the order was placed");
    queue
        .wait_for(&[(placed.event_id, "order.placed.v1", placed.stream_id.clone())])
        .await;
    runtime.shutdown().await;

    let message = queue
        .snapshot()
        .into_iter()
        .find(|message| message.message_id == placed.event_id)
        .expect("received");
    let properties = &message.properties;
    assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
    assert_eq!(
        properties.content_type().as_ref().map(|t| t.as_str()),
        Some("application/json")
    );
    assert_eq!(
        properties.kind().as_ref().map(|t| t.as_str()),
        Some("order.placed.v1")
    );
    assert_eq!(
        properties.app_id().as_ref().map(|t| t.as_str()),
        Some("orderstream")
    );
    assert_eq!(
        properties
            .correlation_id()
            .as_ref()
            .map(|t| t.as_str().to_owned()),
        placed
            .correlation_id
            .as_ref()
            .map(|id| id.as_str().to_owned()),
    );
    assert!(
        placed.correlation_id.is_some(),
        "commands record a correlation id"
    );
    assert_eq!(
        *properties.timestamp(),
        Some(placed.recorded_at.timestamp() as u64)
    );
    assert_eq!(message.stream_id(), placed.stream_id);
    assert_eq!(message.log_position(), placed.position);
    assert_eq!(
        message.header(relay::HEADER_SCHEMA_VERSION),
        Some(AMQPValue::LongInt(1))
    );
    match (
        placed.causation_id,
        message.header(relay::HEADER_CAUSATION_ID),
    ) {
        (Some(causation), Some(AMQPValue::LongString(text))) => {
            assert_eq!(text.to_string(), causation.to_string())
        }
        (None, None) => {}
        other => panic!("causation_id header does not match the event: {other:?}"),
    }
    assert_eq!(message.body["order_id"], order_id.to_string());
    assert_eq!(message.body["total"], "25.00");
    assert_eq!(message.body["currency"], "EUR");
    queue.delete().await;
}
