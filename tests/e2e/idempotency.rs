//! `Idempotency-Key` on POST /orders: one order per key, whatever the
//! repeats and the concurrency, until the key expires.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{order_body, wait_until, Answer, Options, TestServer};

async fn place_with_key(server: &TestServer, key: &str, body: &Value) -> Answer {
    server
        .send(
            server
                .client
                .post(server.url("/orders"))
                .header("idempotency-key", key)
                .json(body),
        )
        .await
}

#[tokio::test]
async fn the_same_key_and_body_return_the_same_order_and_place_nothing_new() {
    let server = TestServer::start(Options::api_only()).await;
    let body = order_body(&[("SKU-1", 2)], "card_ok");
    let first = place_with_key(&server, "key-1", &body).await.expect(201);
    let repeat = place_with_key(&server, "key-1", &body).await;
    assert!(
        matches!(repeat.status.as_u16(), 200 | 201),
        "{}",
        repeat.text
    );
    assert_eq!(first.body["order_id"], repeat.body["order_id"]);
    assert_eq!(repeat.body["total"], "19.98");
    assert_eq!(server.count_events_of_type("OrderPlaced").await, 1);
    // Another key is another order.
    let other = place_with_key(&server, "key-2", &body).await.expect(201);
    assert_ne!(other.body["order_id"], first.body["order_id"]);
    server.stop().await;
}

#[tokio::test]
async fn the_same_key_with_another_body_is_409() {
    let server = TestServer::start(Options::api_only()).await;
    place_with_key(&server, "key-1", &order_body(&[("SKU-1", 2)], "card_ok"))
        .await
        .expect(201);
    place_with_key(&server, "key-1", &order_body(&[("SKU-1", 3)], "card_ok"))
        .await
        .expect_problem(409);
    assert_eq!(server.count_events_of_type("OrderPlaced").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_request_does_not_use_up_its_key() {
    let server = TestServer::start(Options::api_only()).await;
    place_with_key(&server, "key-1", &order_body(&[("SKU-1", 0)], "card_ok"))
        .await
        .expect_problem(422);
    place_with_key(&server, "key-1", &order_body(&[("SKU-1", 1)], "card_ok"))
        .await
        .expect(201);
    place_with_key(&server, "", &order_body(&[("SKU-1", 1)], "card_ok"))
        .await
        .expect_problem(400);
    server.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_requests_with_one_key_place_exactly_one_order() {
    let server = TestServer::start(Options::api_only()).await;
    let body = order_body(&[("SKU-1", 1), ("SKU-2", 4)], "card_ok");
    let answers = futures::future::join_all(
        (0..20).map(|_| place_with_key(&server, "concurrent-key", &body)),
    )
    .await;
    let mut ids = Vec::new();
    for answer in &answers {
        assert!(
            matches!(answer.status.as_u16(), 200 | 201),
            "{}: {}",
            answer.status,
            answer.text
        );
        ids.push(answer.body["order_id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(
        answers.iter().filter(|a| a.status.as_u16() == 201).count(),
        1
    );
    assert_eq!(server.count_events_of_type("OrderPlaced").await, 1);
    server.stop().await;
}

async fn stored_keys(server: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(server.store.pool())
        .await
        .expect("count keys")
}

#[tokio::test]
async fn an_expired_key_is_new_again_even_before_its_row_is_deleted() {
    // A TTL long enough that the cleanup does not run during the test.
    let server = TestServer::start(Options {
        idempotency_ttl: Some(Duration::from_secs(3600)),
        ..Options::api_only()
    })
    .await;
    let first_body = order_body(&[("SKU-1", 1)], "card_ok");
    let second_body = order_body(&[("SKU-1", 2)], "card_ok");
    let first = place_with_key(&server, "old-key", &first_body)
        .await
        .expect(201);
    place_with_key(&server, "old-key", &second_body)
        .await
        .expect_problem(409);
    // The key was stored two hours ago.
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '2 hours' WHERE key = 'old-key'",
    )
    .execute(server.store.pool())
    .await
    .expect("age the key");

    let again = place_with_key(&server, "old-key", &second_body)
        .await
        .expect(201);
    assert_ne!(again.body["order_id"], first.body["order_id"]);
    assert_eq!(again.body["total"], "19.98");
    // The key now stands for the new order: repeats get it, the old body
    // is another body.
    let repeat = place_with_key(&server, "old-key", &second_body).await;
    assert!(
        matches!(repeat.status.as_u16(), 200 | 201),
        "{}",
        repeat.text
    );
    assert_eq!(repeat.body["order_id"], again.body["order_id"]);
    place_with_key(&server, "old-key", &first_body)
        .await
        .expect_problem(409);
    assert_eq!(server.count_events_of_type("OrderPlaced").await, 2);
    // The first order is untouched.
    let first_id = first.body["order_id"].as_str().expect("order_id");
    assert_eq!(server.order(first_id).await["total"], "9.99");
    server.stop().await;
}

#[tokio::test]
async fn expired_keys_are_deleted_by_the_serving_process_and_their_key_is_new_again() {
    let server = TestServer::start(Options {
        idempotency_ttl: Some(Duration::from_secs(1)),
        ..Options::api_only()
    })
    .await;
    let body = order_body(&[("SKU-1", 1)], "card_ok");
    let first = place_with_key(&server, "short-lived", &body)
        .await
        .expect(201);
    place_with_key(&server, "other-key", &body)
        .await
        .expect(201);
    assert_eq!(stored_keys(&server).await, 2);
    wait_until("the cleanup deleted the expired keys", || async {
        stored_keys(&server).await == 0
    })
    .await;
    // The orders stay; only the keys go.
    let first_id = first.body["order_id"].as_str().expect("order_id");
    assert_eq!(server.order(first_id).await["order_id"], first_id);
    let again = place_with_key(&server, "short-lived", &body)
        .await
        .expect(201);
    assert_ne!(again.body["order_id"], first.body["order_id"]);
    assert_eq!(server.count_events_of_type("OrderPlaced").await, 3);
    server.stop().await;
}
