//! Health, readiness, metrics, OpenAPI, correlation ids.

use crate::helpers::{wait_until, Options, TestServer};

#[tokio::test]
async fn health_and_ready_are_200_on_a_migrated_database() {
    let server = TestServer::start(Options::api_only()).await;
    server.get("/health").await.expect(200);
    server.get("/ready").await.expect(200);
    server.stop().await;
}

#[tokio::test]
async fn ready_is_503_when_a_migration_is_missing() {
    let server = TestServer::start(Options::api_only()).await;
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(server.store.pool())
    .await
    .expect("forget a migration");
    server.get("/ready").await.expect_problem(503);
    server.stop().await;
}

#[tokio::test]
async fn metrics_show_http_latency_commands_and_subscriptions() {
    let server = TestServer::start(Options::auto()).await;
    server.receive("SKU-1", 1).await;
    server.get("/inventory/SKU-1").await.expect(200);
    let answer = server.get("/metrics").await.expect(200);
    let text = answer.text;
    assert!(text.contains("http_request_duration_seconds"), "{text}");
    assert!(
        text.contains(r#"route="/inventory/{sku}/receipts""#),
        "{text}"
    );
    assert!(text.contains("orderstream_events_appended_total"), "{text}");
    assert!(
        text.contains("orderstream_subscription_lag_events"),
        "{text}"
    );
    assert!(
        text.contains("orderstream_subscription_lag_seconds"),
        "{text}"
    );
    assert!(
        text.contains("orderstream_subscription_parked_events"),
        "{text}"
    );
    assert!(text.contains("orderstream_log_head_position"), "{text}");
    server.stop().await;
}

/// The value of one sample in a Prometheus text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn lag_seconds_is_the_age_of_the_oldest_unprocessed_event() {
    // No runtime: every subscription stays behind the event appended here.
    let server = TestServer::start(Options::api_only()).await;
    server.receive("SKU-1", 1).await;
    let seconds = r#"orderstream_subscription_lag_seconds{subscription="stock"}"#;
    let events = r#"orderstream_subscription_lag_events{subscription="stock"}"#;
    // Polled, and both read from one scrape: the e2e tests share one
    // process, hence one recorder, and another test's scrape may set the
    // same gauges from its own database between this one's refresh and
    // render.
    wait_until(
        "stock's one unprocessed event is a second old (and not a minute)",
        || async {
            let text = server.get("/metrics").await.expect(200).text;
            let lag = sample(&text, seconds).unwrap_or_default();
            (1.0..60.0).contains(&lag) && sample(&text, events) == Some(1.0)
        },
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_path_of_the_contract() {
    let server = TestServer::start(Options::api_only()).await;
    let document = server.get("/openapi.json").await.expect(200).body;
    assert!(document["openapi"].as_str().unwrap_or("").starts_with("3."));
    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/inventory/{sku}/receipts",
        "/inventory/{sku}/adjustments",
        "/inventory/{sku}",
        "/inventory/{sku}/history",
        "/orders",
        "/orders/{order_id}",
        "/orders/{order_id}/cancel",
        "/orders/{order_id}/ship",
        "/orders/{order_id}/retry-payment",
        "/orders/{order_id}/history",
        "/orders/{order_id}/timeline",
        "/streams/{stream_id}",
        "/events",
        "/subscriptions",
        "/subscriptions/{name}/parked",
        "/subscriptions/{name}/parked/replay",
        "/subscriptions/{name}/reset",
        "/projections/{name}/rebuild",
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_correlation_id() {
    let server = TestServer::start(Options::api_only()).await;
    let generated = server.get("/health").await;
    let id = generated
        .headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .expect("generated id");
    assert!(uuid::Uuid::parse_str(id).is_ok());
    let given = uuid::Uuid::new_v4().to_string();
    let echoed = server
        .send(
            server
                .client
                .get(server.url("/nowhere"))
                .header("x-correlation-id", &given),
        )
        .await;
    assert_eq!(
        echoed
            .headers
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok()),
        Some(given.as_str())
    );
    let invalid = server
        .send(
            server
                .client
                .get(server.url("/health"))
                .header("x-correlation-id", "not an id"),
        )
        .await;
    let replaced = invalid
        .headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(uuid::Uuid::parse_str(replaced).is_ok());
    assert_eq!(
        invalid
            .headers
            .get("x-correlation-id-replaced")
            .and_then(|v| v.to_str().ok()),
        Some("not-visible-ascii")
    );
    server.stop().await;
}
