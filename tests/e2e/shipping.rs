//! Manual shipping through HTTP: one atomic ship, and a repeat that
//! answers the same and writes nothing.

use serde_json::json;

use crate::helpers::{wait_until, Options, TestServer};

#[tokio::test]
async fn shipping_twice_answers_200_both_times_and_ships_and_commits_once() {
    let server = TestServer::start(Options::manual()).await;
    server.receive("SKU-1", 10).await;
    let order_id = server.place(&[("SKU-1", 3)], "card_ok").await;
    server.wait_for_status(&order_id, "reserved").await;
    wait_until("the stock is reserved", || async {
        server.get("/inventory/SKU-1").await.body["reserved"] == 3
    })
    .await;
    for _ in 0..2 {
        let shipped = server
            .post(&format!("/orders/{order_id}/ship"), &json!({}))
            .await
            .expect(200);
        assert!(
            matches!(shipped.body["status"].as_str(), Some("shipped" | "paid")),
            "{}",
            shipped.text
        );
    }
    server.wait_for_status(&order_id, "paid").await;
    for event_type in ["OrderShipped", "InventoryCommitted", "StockCommitted"] {
        assert_eq!(
            server.count_events_of_type(event_type).await,
            1,
            "{event_type}"
        );
    }
    wait_until(
        "the stock left on hand and nothing stays reserved",
        || async {
            let stock = server.get("/inventory/SKU-1").await.body;
            stock["on_hand"] == 7 && stock["reserved"] == 0
        },
    )
    .await;
    server
        .post(&format!("/orders/{order_id}/ship"), &json!({}))
        .await
        .expect(200);
    server.stop().await;
}

#[tokio::test]
async fn shipping_a_pending_order_is_409_and_writes_nothing() {
    let server = TestServer::start(Options::api_only()).await;
    let order_id = server.place(&[("SKU-1", 1)], "card_ok").await;
    let before = server.event_count().await;
    server
        .post(&format!("/orders/{order_id}/ship"), &json!({}))
        .await
        .expect_problem(409);
    assert_eq!(server.event_count().await, before);
    server.stop().await;
}
