//! Audit: one stream (forward, backward, from a version, as of an
//! instant) and the global log, paged with `next`.

use serde_json::json;

use crate::helpers::{wait_until, Options, TestServer};

#[tokio::test]
async fn a_stream_reads_forward_backward_from_a_version_and_as_of() {
    let server = TestServer::start(Options::api_only()).await;
    for quantity in 1..=5 {
        server.receive("SKU-1", quantity).await;
    }
    let all = server
        .get("/streams/inventory-SKU-1")
        .await
        .expect(200)
        .body;
    assert_eq!(all["stream_id"], "inventory-SKU-1");
    assert_eq!(all["version"], 5);
    let versions = |body: &serde_json::Value| -> Vec<i64> {
        body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|event| event["version"].as_i64())
            .collect()
    };
    assert_eq!(versions(&all), vec![1, 2, 3, 4, 5]);
    let page = server
        .get("/streams/inventory-SKU-1?from_version=2&limit=2")
        .await
        .expect(200)
        .body;
    assert_eq!(versions(&page), vec![2, 3]);
    let backward = server
        .get("/streams/inventory-SKU-1?direction=backward&limit=2")
        .await
        .expect(200)
        .body;
    assert_eq!(versions(&backward), vec![5, 4]);
    let third_at = all["events"][2]["recorded_at"]
        .as_str()
        .expect("at")
        .to_owned();
    let as_of = server
        .send(
            server
                .client
                .get(server.url("/streams/inventory-SKU-1"))
                .query(&[("as_of", third_at.as_str())]),
        )
        .await
        .expect(200)
        .body;
    assert!(as_of["version"].as_i64().unwrap_or(0) >= 3);
    assert!(versions(&as_of).len() >= 3);
    assert_eq!(all["events"][0]["type"], "StockReceived");
    assert_eq!(all["events"][0]["data"]["quantity"], 1);
    server
        .get("/streams/order-nothing")
        .await
        .expect_problem(404);
    server
        .get("/streams/inventory-SKU-1?as_of=2000-01-01T00:00:00Z")
        .await
        .expect_problem(404);
    server
        .get("/streams/inventory-SKU-1?limit=-1")
        .await
        .expect_problem(400);
    server.stop().await;
}

#[tokio::test]
async fn the_global_log_pages_gap_free_with_next() {
    let server = TestServer::start(Options::api_only()).await;
    for sku in ["A", "B", "C", "D", "E"] {
        server
            .post(
                &format!("/inventory/{sku}/receipts"),
                &json!({"quantity": 1}),
            )
            .await
            .expect(201);
    }
    // The log shows committed transactions once no older one is still
    // running anywhere in the cluster: wait until all five are visible.
    wait_until("the five receipts are visible in the log", || async {
        server.get("/events?after=0").await.body["events"]
            .as_array()
            .is_some_and(|events| events.len() == 5)
    })
    .await;
    let mut after = "0".to_owned();
    let mut positions = Vec::new();
    loop {
        let page = server
            .get(&format!("/events?after={after}&limit=2"))
            .await
            .expect(200)
            .body;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            assert_eq!(page["next"], after, "an empty page keeps `next` at `after`");
            break;
        }
        positions.extend(events.iter().filter_map(|e| e["position"].as_i64()));
        after = page["next"].as_str().expect("next").to_owned();
    }
    assert_eq!(positions.len(), 5);
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "no event twice: {positions:?}");
    server.stop().await;
}
