//! Orders without the runtime: place, read (now and as of), cancel, ship
//! refused, retry refused, history and timeline.

use serde_json::json;

use crate::helpers::{order_body, Options, TestServer};

#[tokio::test]
async fn placing_an_order_answers_201_with_location_and_exact_total() {
    let server = TestServer::start(Options::api_only()).await;
    let body = json!({
        "customer_id": "c-42", "currency": "USD",
        "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "9.99"},
                  {"sku": "SKU-2", "quantity": 3, "unit_price": "0.10"}],
        "payment_method": "card_ok"
    });
    let answer = server.post("/orders", &body).await.expect(201);
    let order_id = answer.body["order_id"].as_str().expect("id").to_owned();
    assert_eq!(
        answer.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/orders/{order_id}").as_str())
    );
    assert_eq!(answer.body["status"], "pending");
    assert_eq!(answer.body["total"], "20.28");
    assert_eq!(answer.body["currency"], "USD");
    assert_eq!(answer.body["lines"][0]["unit_price"], "9.99");
    assert_eq!(answer.body["version"], 1);

    let order = server.order(&order_id).await;
    assert_eq!(order["order_id"], order_id.as_str());
    assert_eq!(order["customer_id"], "c-42");
    assert_eq!(order["status"], "pending");
    assert_eq!(order["total"], "20.28");
    assert!(order["updated_at"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn the_payment_method_defaults_to_card_ok() {
    let server = TestServer::start(Options::api_only()).await;
    let body = json!({"customer_id": "c-1", "currency": "EUR",
                      "lines": [{"sku": "A", "quantity": 1, "unit_price": "1"}]});
    let answer = server.post("/orders", &body).await.expect(201);
    assert_eq!(answer.body["payment_method"], "card_ok");
    server.stop().await;
}

#[tokio::test]
async fn an_order_as_of_an_instant_is_as_it_was_then() {
    let server = TestServer::start(Options::api_only()).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    let order_id = server.place(&[("SKU-1", 1)], "card_ok").await;
    let placed = server.order(&order_id).await;
    server
        .post(
            &format!("/orders/{order_id}/cancel"),
            &json!({"reason": "changed mind"}),
        )
        .await
        .expect(200);
    let at = placed["updated_at"]
        .as_str()
        .expect("updated_at")
        .to_owned();
    let then = server
        .send(
            server
                .client
                .get(server.url(&format!("/orders/{order_id}")))
                .query(&[("at", at.as_str())]),
        )
        .await
        .expect(200);
    assert_eq!(then.body["status"], "pending");
    assert_eq!(then.body["version"], 1);
    let now = server.order(&order_id).await;
    assert_eq!(now["status"], "cancelled");
    assert_eq!(now["cancel_reason"], "changed mind");
    server
        .send(
            server
                .client
                .get(server.url(&format!("/orders/{order_id}")))
                .query(&[("at", before.to_rfc3339().as_str())]),
        )
        .await
        .expect_problem(404);
    server.stop().await;
}

#[tokio::test]
async fn cancelling_twice_is_fine_and_shipping_a_cancelled_order_conflicts() {
    let server = TestServer::start(Options::api_only()).await;
    let order_id = server.place(&[("SKU-1", 1)], "card_ok").await;
    // No body at all: the reason is optional.
    let answer = server
        .send(
            server
                .client
                .post(server.url(&format!("/orders/{order_id}/cancel"))),
        )
        .await
        .expect(200);
    assert_eq!(answer.body["status"], "cancelled");
    server
        .post(&format!("/orders/{order_id}/cancel"), &json!({}))
        .await
        .expect(200);
    server
        .post(&format!("/orders/{order_id}/ship"), &json!({}))
        .await
        .expect_problem(409);
    server
        .post(&format!("/orders/{order_id}/retry-payment"), &json!({}))
        .await
        .expect_problem(409);
    server.stop().await;
}

#[tokio::test]
async fn unknown_orders_are_404_everywhere() {
    let server = TestServer::start(Options::api_only()).await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/orders/{unknown}"),
        format!("/orders/{unknown}/history"),
        format!("/orders/{unknown}/timeline"),
        "/orders/not-a-uuid".to_owned(),
    ] {
        server.get(&path).await.expect_problem(404);
    }
    for path in ["cancel", "ship", "retry-payment"] {
        server
            .post(&format!("/orders/{unknown}/{path}"), &json!({}))
            .await
            .expect_problem(404);
    }
    assert_eq!(server.event_count().await, 0);
    server.stop().await;
}

#[tokio::test]
async fn history_and_timeline_use_the_one_event_shape_with_the_request_correlation_id() {
    let server = TestServer::start(Options::api_only()).await;
    let correlation = uuid::Uuid::new_v4();
    let answer = server
        .send(
            server
                .client
                .post(server.url("/orders"))
                .header("x-correlation-id", correlation.to_string())
                .json(&order_body(&[("SKU-1", 2)], "card_ok")),
        )
        .await
        .expect(201);
    assert_eq!(
        answer
            .headers
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok()),
        Some(correlation.to_string().as_str())
    );
    let order_id = answer.body["order_id"].as_str().expect("id").to_owned();
    assert_eq!(answer.body["correlation_id"], correlation.to_string());
    let history = server
        .get(&format!("/orders/{order_id}/history"))
        .await
        .expect(200)
        .body;
    let event = &history[0];
    for field in [
        "position",
        "stream_id",
        "version",
        "type",
        "schema_version",
        "recorded_at",
        "data",
        "metadata",
    ] {
        assert!(!event[field].is_null(), "missing {field} in {event}");
    }
    assert_eq!(event["type"], "OrderPlaced");
    assert_eq!(event["stream_id"], format!("order-{order_id}"));
    assert_eq!(event["metadata"]["correlation_id"], correlation.to_string());
    assert!(event["metadata"].get("causation_id").is_some());
    let timeline = server
        .get(&format!("/orders/{order_id}/timeline"))
        .await
        .expect(200)
        .body;
    assert_eq!(timeline[0]["type"], "OrderPlaced");
    server.stop().await;
}
