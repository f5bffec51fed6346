//! Crash recovery of the real binary: `orderstream serve` is killed with
//! SIGKILL while 50 orders are in flight and restarted on the same
//! database; every order still reaches a final state, stock balances and no
//! payment is captured twice.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use event_store::MIGRATOR;
use futures::future::join_all;
use serde_json::Value;
use test_support::TestDatabase;

use crate::helpers::{order_body, ADMIN_TOKEN, PATIENCE};
use crate::served::Server;

/// Final order states of API.md's choreography (nothing is cancelled here).
const FINAL: [&str; 3] = ["paid", "rejected", "payment_failed"];
const ORDERS: usize = 50;
/// Steps of the choreography, counted at the moment of the kill.
const MILESTONES: [&str; 7] = [
    "OrderPlaced",
    "OrderReserved",
    "OrderRejected",
    "OrderShipped",
    "PaymentCaptured",
    "PaymentFailed",
    "OrderPaid",
];
/// Stock received per SKU: enough for some orders, not all.
const RECEIVED: [(&str, i64); 2] = [("CRASH-A", 30), ("CRASH-B", 12)];

/// Order `i`: one unit of `CRASH-A`, every other order also two of
/// `CRASH-B`; every tenth is declined, every seventh flaky.
fn order_plan(i: usize) -> (Vec<(&'static str, i64)>, &'static str) {
    let mut lines = vec![("CRASH-A", 1)];
    if i % 2 == 0 {
        lines.push(("CRASH-B", 2));
    }
    let method = if i % 10 == 3 {
        "card_declined"
    } else if i % 7 == 5 {
        "card_flaky"
    } else {
        "card_ok"
    };
    (lines, method)
}

async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Events of one type in the log.
async fn count_of(database: &TestDatabase, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(database.pool())
        .await
        .expect("count events")
}

/// Event counts per stream of one type, straight from the log.
async fn per_stream(database: &TestDatabase, event_type: &str) -> HashMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT stream_id, count(*) FROM events WHERE event_type = $1 GROUP BY stream_id",
    )
    .bind(event_type)
    .fetch_all(database.pool())
    .await
    .expect("count events per stream")
    .into_iter()
    .collect()
}

#[tokio::test]
async fn a_server_killed_with_orders_in_flight_finishes_them_after_a_restart_without_double_effects(
) {
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    let client = reqwest::Client::new();
    let mut first = Server::start(database.url(), &client, "first").await;

    for (sku, quantity) in RECEIVED {
        let response = client
            .post(first.url(&format!("/inventory/{sku}/receipts")))
            .json(&serde_json::json!({ "quantity": quantity }))
            .send()
            .await
            .expect("receive stock");
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    // 50 orders at once; the server dies (SIGKILL) once all are accepted
    // and the first of them is paid: mid-way through the choreography.
    let placing = (0..ORDERS).map(|i| {
        let (client, url) = (client.clone(), first.url("/orders"));
        async move {
            let (lines, method) = order_plan(i);
            let response = client
                .post(url)
                .json(&order_body(&lines, method))
                .send()
                .await
                .expect("place an order");
            assert_eq!(response.status(), 201, "order {i} was not accepted");
            let body: Value = response.json().await.expect("order body");
            let order_id = body["order_id"].as_str().expect("order_id").to_owned();
            (order_id, i)
        }
    });
    let orders: Vec<(String, usize)> = join_all(placing).await;
    let deadline = Instant::now() + PATIENCE;
    while count_of(&database, "OrderPaid").await == 0 {
        assert!(
            Instant::now() < deadline,
            "no order was paid before the kill; log: {}",
            first.log().display()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.kill();

    let mut at_kill = Vec::new();
    for event_type in MILESTONES {
        at_kill.push(format!(
            "{} {event_type}",
            count_of(&database, event_type).await
        ));
    }
    eprintln!("killed the server with {}", at_kill.join(", "));
    assert_eq!(
        count_of(&database, "OrderPlaced").await,
        ORDERS as i64,
        "every accepted order is in the log"
    );

    let second = Server::start(database.url(), &client, "second").await;

    // Every order reaches a final state.
    let deadline = Instant::now() + 2 * PATIENCE;
    let mut statuses: BTreeMap<usize, String> = BTreeMap::new();
    for (order_id, i) in &orders {
        loop {
            let (code, order) =
                get_json(&client, &second.url(&format!("/orders/{order_id}"))).await;
            assert_eq!(code, 200, "GET /orders/{order_id}: {order}");
            let status = order["status"].as_str().unwrap_or_default().to_owned();
            if FINAL.contains(&status.as_str()) {
                statuses.insert(*i, status);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "order {order_id} (#{i}) is still {status} after the restart; log: {}",
                second.log().display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let count = |wanted: &str| statuses.values().filter(|s| *s == wanted).count();
    eprintln!(
        "after the restart: {} paid, {} rejected, {} payment_failed",
        count("paid"),
        count("rejected"),
        count("payment_failed")
    );
    assert!(count("paid") > 0, "some orders are paid: {statuses:?}");
    assert!(
        count("rejected") > 0,
        "some orders are rejected: {statuses:?}"
    );

    // The read models catch up with the whole log, nothing parked.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let response = client
            .get(second.url("/subscriptions"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("GET /subscriptions");
        assert_eq!(response.status(), 200);
        let subscriptions: Value = response.json().await.expect("subscriptions body");
        let list = subscriptions.as_array().expect("a list of subscriptions");
        assert!(
            list.iter().all(|s| s["parked"] == 0),
            "no event is parked: {subscriptions}"
        );
        if list.iter().all(|s| s["lag"] == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "subscriptions never caught up: {subscriptions}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Stock balances: on hand = received - shipped, nothing left reserved.
    let mut shipped: HashMap<&str, i64> = HashMap::new();
    for (i, status) in &statuses {
        if status == "paid" || status == "payment_failed" {
            for (sku, quantity) in order_plan(*i).0 {
                *shipped.entry(sku).or_default() += quantity;
            }
        }
    }
    for (sku, received) in RECEIVED {
        let (code, stock) = get_json(&client, &second.url(&format!("/inventory/{sku}"))).await;
        assert_eq!(code, 200, "GET /inventory/{sku}: {stock}");
        let shipped = shipped.get(sku).copied().unwrap_or(0);
        assert_eq!(
            stock["on_hand"],
            received - shipped,
            "{sku}: received {received}, shipped {shipped}: {stock}"
        );
        assert_eq!(stock["reserved"], 0, "{sku}: {stock}");
        assert_eq!(stock["available"], received - shipped, "{sku}: {stock}");
    }

    // Exactly one OrderPlaced per order; one capture per paid order, none
    // for the others.
    let placed = per_stream(&database, "OrderPlaced").await;
    let captured = per_stream(&database, "PaymentCaptured").await;
    assert_eq!(placed.len(), ORDERS, "no order was placed twice or lost");
    for (order_id, i) in &orders {
        assert_eq!(placed.get(&format!("order-{order_id}")), Some(&1));
        let captures = captured
            .get(&format!("payment-{order_id}"))
            .copied()
            .unwrap_or(0);
        let expected = i64::from(statuses[i] == "paid");
        assert_eq!(
            captures, expected,
            "order {order_id} (#{i}) is {} with {captures} captures",
            statuses[i]
        );
        let (_, method) = order_plan(*i);
        if method == "card_declined" {
            assert_ne!(statuses[i], "paid", "a declined card never pays");
        } else {
            assert_ne!(statuses[i], "payment_failed", "order #{i} ({method})");
        }
    }
    assert_eq!(captured.len(), count("paid"), "captures: {captured:?}");

    let logs = [first.log().to_path_buf(), second.log().to_path_buf()];
    drop(second);
    drop(first);
    for log in logs {
        let _ = std::fs::remove_file(log);
    }
}
