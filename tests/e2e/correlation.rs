//! `X-Correlation-Id` as the caller gave it: any 1-128 visible ASCII
//! characters are echoed, stored in every event of the flow and find the
//! order's timeline; anything else is replaced by a UUID, and the response
//! says why in `X-Correlation-Id-Replaced`.

use serde_json::Value;

use crate::helpers::{order_body, wait_until, Answer, Options, TestServer};

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

async fn place_with_correlation(server: &TestServer, correlation: &[u8]) -> Answer {
    let value =
        reqwest::header::HeaderValue::from_bytes(correlation).expect("a sendable header value");
    server
        .send(
            server
                .client
                .post(server.url("/orders"))
                .header("x-correlation-id", value)
                .json(&order_body(&[("SKU-1", 1)], "card_ok")),
        )
        .await
}

fn correlations(events: &Value) -> Vec<Value> {
    events
        .as_array()
        .into_iter()
        .flatten()
        .map(|event| event["metadata"]["correlation_id"].clone())
        .collect()
}

#[tokio::test]
async fn a_correlation_id_that_is_not_a_uuid_is_echoed_stored_and_finds_the_whole_flow() {
    let server = TestServer::start(Options::auto()).await;
    server.receive("SKU-1", 5).await;
    let given = "order-import-42/abc";
    let placed = place_with_correlation(&server, given.as_bytes())
        .await
        .expect(201);
    assert_eq!(header(&placed, "x-correlation-id"), Some(given));
    assert_eq!(header(&placed, "x-correlation-id-replaced"), None);
    assert_eq!(placed.body["correlation_id"], given);
    let order_id = placed.body["order_id"]
        .as_str()
        .expect("order_id")
        .to_owned();
    let order = server.wait_for_status(&order_id, "paid").await;
    assert_eq!(order["correlation_id"], given);

    let history = server
        .get(&format!("/orders/{order_id}/history"))
        .await
        .expect(200)
        .body;
    assert!(correlations(&history).iter().any(|id| id == given));

    // The timeline gathers the other streams' events of the flow by the
    // caller's id.
    let path = format!("/orders/{order_id}/timeline");
    wait_until(
        "the timeline shows the reservation and the payment",
        || async {
            let timeline = server.get(&path).await.body;
            let types: Vec<&str> = timeline
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|event| event["type"].as_str())
                .collect();
            types.contains(&"InventoryReserved") && types.contains(&"PaymentCaptured")
        },
    )
    .await;
    let timeline = server.get(&path).await.expect(200).body;
    assert!(correlations(&timeline).iter().all(|id| id == given));
    let streams: std::collections::HashSet<&str> = timeline
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|event| event["stream_id"].as_str())
        .collect();
    assert!(streams.len() >= 3, "order, inventory, payment: {streams:?}");

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE correlation_id = $1")
        .bind(given)
        .fetch_one(server.store.pool())
        .await
        .expect("count");
    // Every event of the timeline is stored under the caller's id (more
    // may come meanwhile).
    assert!(stored as usize >= timeline.as_array().map_or(0, Vec::len));
    server.stop().await;
}

#[tokio::test]
async fn the_longest_id_and_every_visible_character_are_kept() {
    let server = TestServer::start(Options::api_only()).await;
    let longest = "x".repeat(128);
    let punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    for given in [longest.as_str(), punctuation, "a"] {
        let placed = place_with_correlation(&server, given.as_bytes())
            .await
            .expect(201);
        assert_eq!(header(&placed, "x-correlation-id"), Some(given));
        assert_eq!(placed.body["correlation_id"], given);
        let order_id = placed.body["order_id"].as_str().expect("order_id");
        let order = server.order(order_id).await;
        assert_eq!(order["correlation_id"], given);
    }
    server.stop().await;
}

#[tokio::test]
async fn other_values_are_replaced_by_a_generated_uuid_and_the_response_says_why() {
    let server = TestServer::start(Options::api_only()).await;
    let too_long = [b'x'; 129];
    for (given, reason) in [
        (&b""[..], "empty"),
        (&too_long[..], "too-long"),
        (b"two words", "not-visible-ascii"),
        (b"caf\xc3\xa9", "not-visible-ascii"),
    ] {
        let placed = place_with_correlation(&server, given).await.expect(201);
        assert_eq!(
            header(&placed, "x-correlation-id-replaced"),
            Some(reason),
            "{given:?}"
        );
        let generated = header(&placed, "x-correlation-id").expect("an id");
        assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
        // The generated id is the one stored.
        assert_eq!(placed.body["correlation_id"], generated);
        let order_id = placed.body["order_id"].as_str().expect("order_id");
        let history = server
            .get(&format!("/orders/{order_id}/history"))
            .await
            .expect(200)
            .body;
        assert_eq!(correlations(&history), [Value::from(generated)]);
    }
    // Given twice: which one would be the flow's is anyone's guess.
    let twice = server
        .send(
            server
                .client
                .get(server.url("/health"))
                .header("x-correlation-id", "a")
                .header("x-correlation-id", "b"),
        )
        .await;
    assert_eq!(
        header(&twice, "x-correlation-id-replaced"),
        Some("repeated")
    );
    server.stop().await;
}
