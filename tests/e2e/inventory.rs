//! Receipts, adjustments, stock now, at an instant, and its history.

use serde_json::json;

use crate::helpers::{wait_until, Options, TestServer};

#[tokio::test]
async fn a_receipt_answers_with_the_stock_after_it() {
    let server = TestServer::start(Options::api_only()).await;
    let answer = server
        .post("/inventory/SKU-1/receipts", &json!({"quantity": 10}))
        .await
        .expect(201);
    assert_eq!(answer.body["sku"], "SKU-1");
    assert_eq!(answer.body["on_hand"], 10);
    assert_eq!(answer.body["reserved"], 0);
    assert_eq!(answer.body["available"], 10);
    assert_eq!(
        answer.body["warehouses"],
        json!([{"warehouse": "main", "on_hand": 10, "reserved": 0, "available": 10}])
    );
    assert!(answer.body["position"].as_i64().unwrap_or(0) > 0);
    let second = server
        .post(
            "/inventory/SKU-1/receipts",
            &json!({"quantity": 5, "warehouse": "east"}),
        )
        .await
        .expect(201);
    assert_eq!(second.body["on_hand"], 15);
    assert_eq!(second.body["warehouses"].as_array().map(Vec::len), Some(2));
    server.stop().await;
}

#[tokio::test]
async fn the_stock_reads_its_own_writes_without_the_runtime() {
    // No runtime: the read model never catches up, the aggregate answers.
    let server = TestServer::start(Options::api_only()).await;
    server.receive("SKU-1", 7).await;
    let stock = server.get("/inventory/SKU-1").await.expect(200);
    assert_eq!(stock.body["on_hand"], 7);
    assert_eq!(stock.body["available"], 7);
    server.stop().await;
}

#[tokio::test]
async fn an_adjustment_changes_on_hand_and_cannot_make_it_negative() {
    let server = TestServer::start(Options::api_only()).await;
    server.receive("SKU-1", 10).await;
    let answer = server
        .post(
            "/inventory/SKU-1/adjustments",
            &json!({"quantity": -2, "reason": "damaged", "warehouse": "main"}),
        )
        .await
        .expect(201);
    assert_eq!(answer.body["on_hand"], 8);
    let events = server.event_count().await;
    server
        .post(
            "/inventory/SKU-1/adjustments",
            &json!({"quantity": -9, "reason": "lost"}),
        )
        .await
        .expect_problem(422);
    server
        .post("/inventory/SKU-1/adjustments", &json!({"quantity": 0}))
        .await
        .expect_problem(422);
    assert_eq!(server.event_count().await, events);
    server.stop().await;
}

#[tokio::test]
async fn stock_at_an_instant_and_history_come_from_the_read_model() {
    let server = TestServer::start(Options::auto()).await;
    let before = chrono::Utc::now() - chrono::Duration::days(1);
    server.receive("SKU-1", 10).await;
    let middle = server.receive("SKU-1", 5).await.body["position"].clone();
    server
        .post("/inventory/SKU-1/adjustments", &json!({"quantity": -3}))
        .await
        .expect(201);
    wait_until("the stock read model caught up", || async {
        server
            .get("/inventory/SKU-1/history")
            .await
            .body
            .as_array()
            .is_some_and(|rows| rows.len() == 3)
    })
    .await;
    let history = server
        .get("/inventory/SKU-1/history")
        .await
        .expect(200)
        .body;
    let on_hand: Vec<i64> = history
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row["on_hand"].as_i64())
        .collect();
    assert_eq!(on_hand, vec![10, 15, 12]);
    assert_eq!(history[1]["position"], middle);
    assert_eq!(history[0]["event_type"], "StockReceived");
    let now = server.get("/inventory/SKU-1").await.expect(200).body;
    assert_eq!(now["on_hand"], 12);

    let at = history[1]["at"].as_str().expect("at").to_owned();
    let then = server
        .send(
            server
                .client
                .get(server.url("/inventory/SKU-1"))
                .query(&[("at", at.as_str())]),
        )
        .await
        .expect(200);
    assert_eq!(then.body["on_hand"], 15);
    let yesterday = server
        .send(
            server
                .client
                .get(server.url("/inventory/SKU-1"))
                .query(&[("at", before.to_rfc3339().as_str())]),
        )
        .await
        .expect(200);
    assert_eq!(yesterday.body["on_hand"], 0);
    assert_eq!(yesterday.body["available"], 0);
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_sku_is_404_and_a_bad_instant_is_400() {
    let server = TestServer::start(Options::api_only()).await;
    server.get("/inventory/NOPE").await.expect_problem(404);
    server
        .get("/inventory/NOPE/history")
        .await
        .expect_problem(404);
    server
        .get("/inventory/NOPE?at=2026-11-20T10:00:00Z")
        .await
        .expect_problem(404);
    server.get("/inventory/bad%20sku").await.expect_problem(404);
    server.receive("SKU-1", 1).await;
    server
        .get("/inventory/SKU-1?at=yesterday")
        .await
        .expect_problem(400);
    server.stop().await;
}
