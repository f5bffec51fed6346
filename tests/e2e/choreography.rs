//! The whole choreography through HTTP, in auto and manual fulfilment:
//! paid, rejected, cancelled, declined, flaky.

use serde_json::{json, Value};

use crate::helpers::{wait_until, Options, TestServer};

fn types(timeline: &Value) -> Vec<String> {
    timeline
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|event| event["type"].as_str().map(str::to_owned))
        .collect()
}

/// The order's timeline once it shows every one of `wanted` (the log shows
/// a transaction once no older one runs anywhere in the cluster).
async fn timeline_with(server: &TestServer, order_id: &str, wanted: &[&str]) -> Value {
    let path = format!("/orders/{order_id}/timeline");
    wait_until("the timeline shows the whole flow", || async {
        let seen = types(&server.get(&path).await.body);
        wanted.iter().all(|w| seen.iter().any(|s| s == w))
    })
    .await;
    server.get(&path).await.expect(200).body
}

async fn available(server: &TestServer, sku: &str) -> Value {
    server
        .get(&format!("/inventory/{sku}"))
        .await
        .expect(200)
        .body["available"]
        .clone()
}

#[tokio::test]
async fn auto_fulfilment_takes_an_order_to_paid_and_the_timeline_shows_every_step() {
    let server = TestServer::start(Options::auto()).await;
    server.receive("SKU-1", 10).await;
    server.receive("SKU-2", 10).await;
    let order_id = server.place(&[("SKU-1", 2), ("SKU-2", 1)], "card_ok").await;
    let order = server.wait_for_status(&order_id, "paid").await;
    assert_eq!(order["total"], "29.97");
    wait_until("the stock left on hand", || async {
        server.get("/inventory/SKU-1").await.body["on_hand"] == 8
    })
    .await;
    let expected_types = [
        "OrderPlaced",
        "InventoryReserved",
        "OrderReserved",
        "OrderShipped",
        "PaymentCaptured",
        "OrderPaid",
    ];
    let timeline = timeline_with(&server, &order_id, &expected_types).await;
    let seen = types(&timeline);
    for expected in expected_types {
        assert!(
            seen.iter().any(|t| t == expected),
            "{expected} missing: {seen:?}"
        );
    }
    let position = |t: &str| seen.iter().position(|s| s == t).unwrap_or(usize::MAX);
    assert!(position("OrderPlaced") < position("OrderReserved"));
    assert!(position("OrderReserved") < position("OrderShipped"));
    assert!(position("OrderShipped") < position("OrderPaid"));
    let correlation = timeline[0]["metadata"]["correlation_id"].clone();
    assert!(timeline
        .as_array()
        .into_iter()
        .flatten()
        .all(|event| event["metadata"]["correlation_id"] == correlation));
    // Paid orders cannot be cancelled or retried.
    server
        .post(&format!("/orders/{order_id}/cancel"), &json!({}))
        .await
        .expect_problem(409);
    server
        .post(&format!("/orders/{order_id}/retry-payment"), &json!({}))
        .await
        .expect_problem(409);
    server.stop().await;
}

#[tokio::test]
async fn an_order_with_a_short_line_is_rejected_with_its_shortages() {
    let server = TestServer::start(Options::auto()).await;
    server.receive("SKU-1", 10).await;
    server.receive("SKU-2", 1).await;
    let order_id = server.place(&[("SKU-1", 2), ("SKU-2", 5)], "card_ok").await;
    let order = server.wait_for_status(&order_id, "rejected").await;
    assert_eq!(order["shortages"][0]["sku"], "SKU-2");
    assert_eq!(available(&server, "SKU-1").await, 10);
    server.stop().await;
}

#[tokio::test]
async fn a_declined_card_ends_payment_failed_and_a_retry_is_accepted() {
    let server = TestServer::start(Options::auto()).await;
    server.receive("SKU-1", 10).await;
    let order_id = server.place(&[("SKU-1", 1)], "card_declined").await;
    let order = server.wait_for_status(&order_id, "payment_failed").await;
    assert!(order["payment_error"].is_string(), "{order}");
    server
        .post(&format!("/orders/{order_id}/retry-payment"), &json!({}))
        .await
        .expect(202);
    // The retry fails again (the card is declined for good).
    wait_until("the retried payment failed again", || async {
        server.count_events_of_type("OrderPaymentFailed").await >= 2
    })
    .await;
    server.wait_for_status(&order_id, "payment_failed").await;
    server.stop().await;
}

#[tokio::test]
async fn a_flaky_card_is_retried_and_captured_exactly_once() {
    let server = TestServer::start(Options::auto()).await;
    server.receive("SKU-1", 10).await;
    let order_id = server.place(&[("SKU-1", 1)], "card_flaky").await;
    server.wait_for_status(&order_id, "paid").await;
    let timeline = timeline_with(&server, &order_id, &["PaymentCaptured", "OrderPaid"]).await;
    let captured = types(&timeline)
        .iter()
        .filter(|t| *t == "PaymentCaptured")
        .count();
    assert_eq!(captured, 1);
    assert_eq!(server.count_events_of_type("PaymentCaptured").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn manual_fulfilment_waits_for_ship_then_pays() {
    let server = TestServer::start(Options::manual()).await;
    server.receive("SKU-1", 10).await;
    let order_id = server.place(&[("SKU-1", 3)], "card_ok").await;
    server.wait_for_status(&order_id, "reserved").await;
    wait_until("the stock is reserved", || async {
        available(&server, "SKU-1").await == 7
    })
    .await;
    assert_eq!(server.order(&order_id).await["status"], "reserved");
    let shipped = server
        .post(&format!("/orders/{order_id}/ship"), &json!({}))
        .await
        .expect(200);
    assert!(
        matches!(shipped.body["status"].as_str(), Some("shipped" | "paid")),
        "{}",
        shipped.text
    );
    server.wait_for_status(&order_id, "paid").await;
    wait_until("the stock left on hand", || async {
        server.get("/inventory/SKU-1").await.body["on_hand"] == 7
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn cancelling_a_reserved_order_in_manual_mode_releases_its_stock() {
    let server = TestServer::start(Options::manual()).await;
    server.receive("SKU-1", 10).await;
    let order_id = server.place(&[("SKU-1", 4)], "card_ok").await;
    server.wait_for_status(&order_id, "reserved").await;
    let cancelled = server
        .post(
            &format!("/orders/{order_id}/cancel"),
            &json!({"reason": "customer asked"}),
        )
        .await
        .expect(200);
    assert_eq!(cancelled.body["status"], "cancelled");
    wait_until("the reservation is released", || async {
        available(&server, "SKU-1").await == 10
    })
    .await;
    wait_until("the release is in the timeline", || async {
        let timeline = server
            .get(&format!("/orders/{order_id}/timeline"))
            .await
            .body;
        types(&timeline).iter().any(|t| t == "InventoryReleased")
    })
    .await;
    let timeline = server
        .get(&format!("/orders/{order_id}/timeline"))
        .await
        .expect(200)
        .body;
    let seen = types(&timeline);
    for expected in [
        "OrderPlaced",
        "InventoryReserved",
        "OrderCancelled",
        "InventoryReleased",
    ] {
        assert!(
            seen.iter().any(|t| t == expected),
            "{expected} missing: {seen:?}"
        );
    }
    server
        .post(&format!("/orders/{order_id}/ship"), &json!({}))
        .await
        .expect_problem(409);
    server.stop().await;
}

#[tokio::test]
async fn the_read_model_catches_up_with_what_the_commands_answered() {
    let server = TestServer::start(Options::auto()).await;
    server.receive("SKU-1", 10).await;
    let order_id = server.place(&[("SKU-1", 1)], "card_ok").await;
    let order = server.wait_for_status(&order_id, "paid").await;
    assert!(order["version"].as_i64().unwrap_or(0) >= 4, "{order}");
    wait_until("the payment read model has the capture", || async {
        server.order(&order_id).await["payment"]["status"].is_string()
    })
    .await;
    server.stop().await;
}
