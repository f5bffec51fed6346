//! Exact numbers or a 422, through HTTP: quantities and prices beyond
//! `aggregates::limits` are refused with a message naming the field, and
//! the largest allowed values are accepted, projected without a parked
//! event and read back digit for digit.

use std::time::{Duration, Instant};

use aggregates::limits::{
    MAX_LINES, MAX_LINE_QUANTITY, MAX_ON_HAND_PER_SKU, MAX_ON_HAND_PER_WAREHOUSE,
    MAX_STOCK_MOVEMENT, MAX_UNIT_PRICE,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Answer, Options, TestServer, PATIENCE};

#[track_caller]
fn assert_detail_names(answer: &Answer, words: &[&str]) {
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    for word in words {
        assert!(detail.contains(word), "{word:?} not in {detail:?}");
    }
}

fn order(lines: Vec<Value>) -> Value {
    json!({"customer_id": "c-1", "currency": "USD", "lines": lines})
}

fn line(sku: &str, quantity: u32, unit_price: &str) -> Value {
    json!({"sku": sku, "quantity": quantity, "unit_price": unit_price})
}

/// Waits until the projections `names` have applied the whole log, then
/// checks that no subscription parked an event.
async fn wait_for_projections(server: &TestServer, names: &[&str]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let subscriptions = server
            .admin(Method::GET, "/subscriptions", None)
            .await
            .expect(200)
            .body;
        let all = subscriptions.as_array().cloned().unwrap_or_default();
        for subscription in &all {
            assert_eq!(subscription["parked"], json!(0), "{subscription}");
        }
        let caught_up = names.iter().all(|name| {
            all.iter()
                .any(|s| s["name"] == json!(name) && s["lag"] == json!(0))
        });
        if caught_up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{names:?} never caught up: {subscriptions}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn receipts_beyond_the_largest_movement_are_422_not_clamped() {
    let server = TestServer::start(Options::auto()).await;
    // The receipts: 5,000,000,000,000,000,000 into two warehouses.
    for warehouse in ["a", "b"] {
        let answer = server
            .post(
                "/inventory/SKU-1/receipts",
                &json!({"quantity": 5_000_000_000_000_000_000_i64, "warehouse": warehouse}),
            )
            .await
            .expect_problem(422);
        assert_detail_names(
            &answer,
            &[
                "quantity",
                "5000000000000000000",
                &MAX_STOCK_MOVEMENT.to_string(),
            ],
        );
    }
    for quantity in [i64::MAX, i64::MIN] {
        server
            .post(
                "/inventory/SKU-1/adjustments",
                &json!({"quantity": quantity, "reason": "count"}),
            )
            .await
            .expect_problem(422);
    }
    assert_eq!(server.event_count().await, 0);
    server.get("/inventory/SKU-1").await.expect_problem(404);
    server.stop().await;
}

#[tokio::test]
async fn prices_that_cannot_be_summed_exactly_are_422_naming_the_line() {
    let server = TestServer::start(Options::api_only()).await;
    // The order: the second line used to vanish from the total.
    let answer = server
        .post(
            "/orders",
            &order(vec![
                line("A", 1, "1000000000"),
                line("B", 1, "0.0000000000000000000000000001"),
            ]),
        )
        .await
        .expect_problem(422);
    assert_detail_names(&answer, &["lines[1].unit_price", "28 decimal places", "4"]);

    let beyond_max = (MAX_UNIT_PRICE + rust_decimal::Decimal::new(1, 4)).to_string();
    let cases = [
        (
            "five decimals",
            line("A", 1, "9.99999"),
            "lines[0].unit_price",
        ),
        (
            "trailing zeros",
            line("A", 1, "1.00000"),
            "lines[0].unit_price",
        ),
        (
            "beyond the largest price",
            line("A", 1, &beyond_max),
            "lines[0].unit_price",
        ),
        (
            "29 digits",
            line("A", 1, &"9".repeat(29)),
            "lines[0].unit_price",
        ),
        ("underscores", line("A", 1, "1_000"), "lines[0].unit_price"),
        ("exponent", line("A", 1, "1e3"), "lines[0].unit_price"),
        (
            "beyond the largest quantity",
            line("A", MAX_LINE_QUANTITY + 1, "1"),
            "lines[0].quantity",
        ),
    ];
    for (name, bad_line, field) in cases {
        let answer = server.post("/orders", &order(vec![bad_line])).await;
        assert_eq!(answer.status.as_u16(), 422, "{name}: {}", answer.text);
        assert_detail_names(&answer, &[field]);
    }
    assert_eq!(server.event_count().await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_sku_filled_to_its_limit_reads_back_exactly_and_refuses_one_more_unit() {
    let server = TestServer::start(Options::auto()).await;
    let per_warehouse = MAX_ON_HAND_PER_WAREHOUSE / MAX_STOCK_MOVEMENT;
    let warehouses = MAX_ON_HAND_PER_SKU / MAX_ON_HAND_PER_WAREHOUSE;
    for n in 0..warehouses * per_warehouse {
        let warehouse = format!("w{}", n / per_warehouse);
        server
            .post(
                "/inventory/SKU-MAX/receipts",
                &json!({"quantity": MAX_STOCK_MOVEMENT, "warehouse": warehouse}),
            )
            .await
            .expect(201);
    }
    let full_warehouse = server
        .post(
            "/inventory/SKU-MAX/receipts",
            &json!({"quantity": 1, "warehouse": "w0"}),
        )
        .await
        .expect_problem(422);
    assert_detail_names(
        &full_warehouse,
        &["w0", &MAX_ON_HAND_PER_WAREHOUSE.to_string()],
    );
    let full_sku = server
        .post(
            "/inventory/SKU-MAX/receipts",
            &json!({"quantity": 1, "warehouse": "another"}),
        )
        .await
        .expect_problem(422);
    assert_detail_names(&full_sku, &["SKU-MAX", &MAX_ON_HAND_PER_SKU.to_string()]);

    wait_for_projections(&server, &["stock"]).await;
    let stock = server.get("/inventory/SKU-MAX").await.expect(200).body;
    let total = i64::try_from(MAX_ON_HAND_PER_SKU).expect("fits");
    let full = i64::try_from(MAX_ON_HAND_PER_WAREHOUSE).expect("fits");
    assert_eq!(stock["on_hand"], json!(total), "{stock}");
    assert_eq!(stock["available"], json!(total), "{stock}");
    let levels = stock["warehouses"].as_array().expect("warehouses");
    assert_eq!(levels.len() as u64, warehouses);
    assert!(levels.iter().all(|level| level["on_hand"] == json!(full)));
    // The read model itself holds the exact levels.
    let stored: i64 =
        sqlx::query_scalar("SELECT sum(on_hand)::bigint FROM stock_levels WHERE sku = 'SKU-MAX'")
            .fetch_one(server.store.pool())
            .await
            .expect("stock levels");
    assert_eq!(stored, total);
    let history = server
        .get("/inventory/SKU-MAX/history")
        .await
        .expect(200)
        .body;
    let last = history.as_array().and_then(|rows| rows.last()).cloned();
    assert_eq!(last.map(|row| row["on_hand"].clone()), Some(json!(total)));
    server.stop().await;
}

#[tokio::test]
async fn the_largest_order_is_placed_and_paid_with_its_exact_total() {
    let server = TestServer::start(Options::auto()).await;
    let largest_price = MAX_UNIT_PRICE.to_string();
    let lines = (0..MAX_LINES)
        .map(|n| line(&format!("SKU-{n}"), MAX_LINE_QUANTITY, &largest_price))
        .collect();
    let placed = server.post("/orders", &order(lines)).await.expect(201);
    assert_eq!(placed.body["total"], json!("99999999999999990000.0000"));
    let order_id = placed.body["order_id"]
        .as_str()
        .expect("order_id")
        .to_owned();
    // Nothing in stock: rejected, total unchanged in the read model.
    let rejected = server.wait_for_status(&order_id, "rejected").await;
    assert_eq!(rejected["total"], json!("99999999999999990000.0000"));

    // One largest line, in stock: it goes all the way to paid, exactly.
    server
        .post(
            "/inventory/SKU-0/receipts",
            &json!({"quantity": MAX_LINE_QUANTITY}),
        )
        .await
        .expect(201);
    let placed = server
        .post(
            "/orders",
            &order(vec![line("SKU-0", MAX_LINE_QUANTITY, &largest_price)]),
        )
        .await
        .expect(201);
    let order_id = placed.body["order_id"]
        .as_str()
        .expect("order_id")
        .to_owned();
    server.wait_for_status(&order_id, "paid").await;
    wait_for_projections(&server, &["orders", "payments"]).await;
    let paid = server.order(&order_id).await;
    assert_eq!(paid["total"], json!("999999999999999900.0000"), "{paid}");
    assert_eq!(
        paid["lines"][0]["unit_price"],
        json!("999999999999.9999"),
        "{paid}"
    );
    assert_eq!(
        paid["payment"]["amount"],
        json!("999999999999999900.0000"),
        "{paid}"
    );
    server.stop().await;
}
