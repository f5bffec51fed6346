//! A backup restored into a fresh cluster, served by the real binary: a
//! live database with paid orders is dumped with `pg_dump`, restored with
//! `psql` into a new cluster (whose transaction ids start far below the
//! dumped ones, as after any restore or move), and `serve` is started on
//! it. The whole old log is readable in order, subscriptions resume from
//! their checkpoints without redoing anything, and new orders are paid.

use std::time::{Duration, Instant};

use event_store::MIGRATOR;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{advance_transaction_ids, restore_into_fresh_cluster, TestDatabase};

use crate::helpers::{order_body, ADMIN_TOKEN, PATIENCE};
use crate::served::Server;

/// The source cluster is brought at least this far: well above the ids a
/// fresh cluster uses for `initdb` and the restore.
const SOURCE_IDS_AT_LEAST: i64 = 20_000;
const SKU: &str = "RESTORE-A";

async fn get(client: &reqwest::Client, server: &Server, path: &str) -> Value {
    let response = client
        .get(server.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("a JSON body")
}

async fn place(client: &reqwest::Client, server: &Server) -> String {
    let response = client
        .post(server.url("/orders"))
        .json(&order_body(&[(SKU, 1)], "card_ok"))
        .send()
        .await
        .expect("POST /orders");
    assert_eq!(response.status(), 201, "POST /orders");
    let body: Value = response.json().await.expect("order body");
    body["order_id"].as_str().expect("order_id").to_owned()
}

async fn wait_paid(client: &reqwest::Client, server: &Server, order_id: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let order = get(client, server, &format!("/orders/{order_id}")).await;
        if order["status"] == "paid" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "order {order_id} is {} and not paid; log: {}",
            order["status"],
            server.log().display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event id of the log through `GET /events`, paged by `next`.
async fn log_through_api(client: &reqwest::Client, server: &Server) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let page = get(client, server, &format!("/events?after={after}&limit=50")).await;
        let events = page["events"].as_array().expect("events");
        if events.is_empty() {
            return ids;
        }
        ids.extend(
            events
                .iter()
                .map(|event| event["event_id"].as_str().expect("event_id").to_owned()),
        );
        after = match &page["next"] {
            Value::String(next) => next.clone(),
            other => other.to_string(),
        };
    }
}

async fn event_ids_in_log_order(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT event_id::text FROM events ORDER BY transaction_id, position")
        .fetch_all(pool)
        .await
        .expect("read the log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_into_a_fresh_cluster_serves_its_history_and_pays_new_orders() {
    let client = reqwest::Client::new();
    let source = TestDatabase::new(&MIGRATOR).await.expect("a test database");
    advance_transaction_ids(source.pool(), SOURCE_IDS_AT_LEAST)
        .await
        .expect("advance the source's transaction ids");

    let original = Server::start(source.url(), &client, "original").await;
    let receipt = client
        .post(original.url(&format!("/inventory/{SKU}/receipts")))
        .json(&json!({"quantity": 20}))
        .send()
        .await
        .expect("receive stock");
    assert_eq!(receipt.status(), 201);
    let mut old_orders = Vec::new();
    for _ in 0..3 {
        old_orders.push(place(&client, &original).await);
    }
    for order_id in &old_orders {
        wait_paid(&client, &original, order_id).await;
    }

    // A dump of the live database, as a nightly backup takes it, restored
    // onto a new server. Roles belong to the cluster, not to the dump
    // (README, "Restoring a backup").
    let (_cluster, restored_url) =
        restore_into_fresh_cluster(source.url(), &["orderstream_app"])
            .await
            .unwrap_or_else(|error| {
                panic!("restore into a fresh cluster ({error}); the test needs the PostgreSQL server: apt-get install -y postgresql")
            });
    drop(original);

    let restored_pool = PgPool::connect(&restored_url).await.expect("connect");
    let old_log = event_ids_in_log_order(&restored_pool).await;
    let ahead: bool = sqlx::query_scalar(
        "SELECT max(transaction_id) > pg_snapshot_xmax(pg_current_snapshot())::text::bigint \
         FROM events",
    )
    .fetch_one(&restored_pool)
    .await
    .expect("compare ids");
    assert!(
        ahead,
        "the scenario needs dumped ids ahead of the new cluster's"
    );

    let served = Server::start(&restored_url, &client, "restored").await;
    assert_eq!(
        log_through_api(&client, &served).await,
        old_log,
        "GET /events returns the whole restored log, in its order"
    );
    for order_id in &old_orders {
        let order = get(&client, &served, &format!("/orders/{order_id}")).await;
        assert_eq!(order["status"], "paid", "{order}");
    }

    let new_order = place(&client, &served).await;
    wait_paid(&client, &served, &new_order).await;

    // Nothing was redone: one capture per order, and the read models agree.
    let captures: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream_id, count(*) FROM events WHERE event_type = 'PaymentCaptured' \
         GROUP BY stream_id",
    )
    .fetch_all(&restored_pool)
    .await
    .expect("count captures");
    assert_eq!(captures.len(), 4, "four captures: {captures:?}");
    assert!(captures.iter().all(|(_, n)| *n == 1), "{captures:?}");
    let stock = get(&client, &served, &format!("/inventory/{SKU}")).await;
    assert_eq!(stock["on_hand"], 16, "{stock}");
    assert_eq!(stock["reserved"], 0, "{stock}");

    let deadline = Instant::now() + PATIENCE;
    loop {
        let subscriptions = get(&client, &served, "/subscriptions").await;
        let list = subscriptions.as_array().expect("a list");
        assert!(list.iter().all(|s| s["parked"] == 0), "{subscriptions}");
        if list.iter().all(|s| s["lag"] == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never caught up: {subscriptions}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    restored_pool.close().await;
}
