//! Every error code of API.md's table, as problem+json: 400, 404, 409,
//! 413, 422 (401 and 403 are in `operations.rs`), and 503 while the
//! database is unreachable.

use serde_json::json;

use crate::helpers::{Options, TestServer};

#[tokio::test]
async fn a_body_that_is_not_json_or_has_wrong_types_is_400() {
    let server = TestServer::start(Options::api_only()).await;
    server
        .post_raw("/orders", "{not json")
        .await
        .expect_problem(400);
    server.post_raw("/orders", "").await.expect_problem(400);
    let wrong_type = json!({"customer_id": "c", "currency": "USD",
        "lines": [{"sku": "A", "quantity": "two", "unit_price": "1.00"}]});
    let answer = server
        .post("/orders", &wrong_type)
        .await
        .expect_problem(400);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("lines[0].quantity"),
        "{}",
        answer.text
    );
    // Money is a string, never a float.
    let float_price = json!({"customer_id": "c", "currency": "USD",
        "lines": [{"sku": "A", "quantity": 1, "unit_price": 9.99}]});
    server
        .post("/orders", &float_price)
        .await
        .expect_problem(400);
    server
        .post("/inventory/SKU-1/receipts", &json!({"quantity": "ten"}))
        .await
        .expect_problem(400);
    server
        .post("/inventory/SKU-1/receipts", &json!([1, 2]))
        .await
        .expect_problem(400);
    server.get("/events?after=x").await.expect_problem(400);
    server.get("/events?limit=0").await.expect_problem(400);
    server
        .get("/streams/order-1?direction=sideways")
        .await
        .expect_problem(400);
    assert_eq!(server.event_count().await, 0);
    server.stop().await;
}

#[tokio::test]
async fn well_formed_but_invalid_orders_are_422_and_write_nothing() {
    let server = TestServer::start(Options::api_only()).await;
    let line =
        |sku: &str, quantity: i64| json!({"sku": sku, "quantity": quantity, "unit_price": "1.00"});
    let order = |currency: &str, lines: Vec<serde_json::Value>| json!({"customer_id": "c-1", "currency": currency, "lines": lines});
    let too_many: Vec<_> = (0..101).map(|i| line(&format!("SKU-{i}"), 1)).collect();
    let cases = vec![
        ("zero quantity", order("USD", vec![line("A", 0)])),
        ("negative quantity", order("USD", vec![line("A", -3)])),
        ("huge quantity", order("USD", vec![line("A", i64::MAX)])),
        ("no lines", order("USD", vec![])),
        ("101 lines", order("USD", too_many)),
        ("unknown currency", order("XYZ", vec![line("A", 1)])),
        ("bad sku", order("USD", vec![line("no spaces allowed", 1)])),
        ("long sku", order("USD", vec![line(&"x".repeat(65), 1)])),
        (
            "bad price",
            json!({"customer_id": "c", "currency": "USD",
                   "lines": [{"sku": "A", "quantity": 1, "unit_price": "abc"}]}),
        ),
        (
            "negative price",
            json!({"customer_id": "c", "currency": "USD",
                   "lines": [{"sku": "A", "quantity": 1, "unit_price": "-1"}]}),
        ),
        (
            "blank customer",
            json!({"customer_id": " ", "currency": "USD", "lines": [line("A", 1)]}),
        ),
        (
            "unknown payment method",
            json!({"customer_id": "c", "currency": "USD", "lines": [line("A", 1)],
                   "payment_method": "cash"}),
        ),
    ];
    for (name, body) in cases {
        let answer = server.post("/orders", &body).await;
        assert_eq!(answer.status.as_u16(), 422, "{name}: {}", answer.text);
        assert_eq!(answer.content_type(), "application/problem+json", "{name}");
    }
    for body in [json!({"quantity": 0}), json!({"quantity": -1})] {
        server
            .post("/inventory/SKU-1/receipts", &body)
            .await
            .expect_problem(422);
    }
    server
        .post("/inventory/bad%20sku/receipts", &json!({"quantity": 1}))
        .await
        .expect_problem(422);
    server
        .post(
            "/inventory/SKU-1/receipts",
            &json!({"quantity": 1, "warehouse": "no/slash"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(server.event_count().await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let server = TestServer::start(Options::api_only()).await;
    let huge = format!(
        r#"{{"customer_id": "{}", "currency": "USD", "lines": []}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    server
        .post_raw("/orders", huge.clone())
        .await
        .expect_problem(413);
    server
        .post_raw("/inventory/SKU-1/receipts", huge)
        .await
        .expect_problem(413);
    assert_eq!(server.event_count().await, 0);
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_as_problems() {
    let server = TestServer::start(Options::api_only()).await;
    let answer = server.get("/nowhere").await.expect_problem(404);
    assert!(answer.headers.contains_key("x-correlation-id"));
    server
        .send(server.client.delete(server.url("/orders")))
        .await
        .expect_problem(405);
    server.stop().await;
}

#[tokio::test]
async fn cancelling_a_shipped_order_is_409() {
    let server = TestServer::start(Options::manual()).await;
    server.receive("SKU-1", 5).await;
    let order_id = server.place(&[("SKU-1", 1)], "card_ok").await;
    server.wait_for_status(&order_id, "reserved").await;
    server
        .post(&format!("/orders/{order_id}/ship"), &json!({}))
        .await
        .expect(200);
    let answer = server
        .post(
            &format!("/orders/{order_id}/cancel"),
            &json!({"reason": "late"}),
        )
        .await
        .expect_problem(409);
    assert!(answer.body["detail"]
        .as_str()
        .unwrap_or("")
        .contains("cancel"));
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_database_is_503_not_500() {
    let server = TestServer::start(Options::api_only()).await;
    server.receive("SKU-1", 1).await;
    server.store.pool().close().await;
    let answer = server.get("/inventory/SKU-1").await.expect_problem(503);
    assert!(
        !answer.text.contains("pool"),
        "5xx bodies stay opaque: {}",
        answer.text
    );
    server
        .post(
            "/orders",
            &crate::helpers::order_body(&[("SKU-1", 1)], "card_ok"),
        )
        .await
        .expect_problem(503);
    server.get("/ready").await.expect_problem(503);
    server.get("/health").await.expect(200);
    server.stop().await;
}
