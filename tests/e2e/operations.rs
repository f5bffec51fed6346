//! Operations behind the admin token: 401 without it, 403 with a wrong one
//! or when none is configured; subscriptions, parked, replay (all or
//! one), reset, rebuild.

use event_store::{ExpectedVersion, NewEvent};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{wait_until, Options, TestServer};

const ADMIN_PATHS: &[(&str, &str)] = &[
    ("GET", "/subscriptions"),
    ("GET", "/subscriptions/orders/parked"),
    ("POST", "/subscriptions/orders/parked/replay"),
    ("POST", "/subscriptions/orders/parked/1/replay"),
    ("GET", "/subscriptions/orders/requests/1"),
    ("POST", "/subscriptions/orders/reset"),
    ("POST", "/projections/orders/rebuild"),
];

#[tokio::test]
async fn admin_endpoints_need_the_bearer_token() {
    let server = TestServer::start(Options::api_only()).await;
    for (method, path) in ADMIN_PATHS {
        let method: Method = method.parse().expect("method");
        let request = server
            .client
            .request(method.clone(), server.url(path))
            .json(&json!({"position": 0}));
        server.send(request).await.expect_problem(401);
        let request = server
            .client
            .request(method, server.url(path))
            .bearer_auth("not-the-token")
            .json(&json!({"position": 0}));
        server.send(request).await.expect_problem(403);
    }
    server.stop().await;
}

#[tokio::test]
async fn without_a_configured_token_admin_endpoints_say_how_to_set_it() {
    let server = TestServer::start(Options::default()).await;
    let answer = server
        .send(
            server
                .client
                .get(server.url("/subscriptions"))
                .bearer_auth("anything"),
        )
        .await
        .expect_problem(403);
    assert!(
        answer.text.contains("ORDERSTREAM_ADMIN_TOKEN"),
        "{}",
        answer.text
    );
    server.stop().await;
}

#[tokio::test]
async fn operators_see_subscriptions_and_request_replay_reset_and_rebuild() {
    let server = TestServer::start(Options::auto()).await;
    server.receive("SKU-1", 3).await;
    let order_id = server.place(&[("SKU-1", 1)], "card_ok").await;
    server.wait_for_status(&order_id, "paid").await;

    let subscriptions = server
        .admin(Method::GET, "/subscriptions", None)
        .await
        .expect(200)
        .body;
    let names: Vec<&str> = subscriptions
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for name in ["orders", "stock", "payments"] {
        assert!(names.contains(&name), "{names:?}");
    }
    for field in ["name", "position", "head", "lag", "parked", "state"] {
        assert!(!subscriptions[0][field].is_null(), "{field}");
    }
    let parked = server
        .admin(Method::GET, "/subscriptions/orders/parked", None)
        .await
        .expect(200)
        .body;
    assert_eq!(parked, json!([]));
    server
        .admin(Method::GET, "/subscriptions/nope/parked", None)
        .await
        .expect_problem(404);
    server
        .admin(Method::POST, "/subscriptions/orders/parked/replay", None)
        .await
        .expect(202);
    server
        .admin(
            Method::POST,
            "/subscriptions/orders/reset",
            Some(&json!({"position": 0})),
        )
        .await
        .expect(202);
    server
        .admin(
            Method::POST,
            "/subscriptions/nope/reset",
            Some(&json!({"position": 0})),
        )
        .await
        .expect_problem(404);
    server
        .admin(
            Method::POST,
            "/subscriptions/orders/reset",
            Some(&json!({"position": "zero"})),
        )
        .await
        .expect_problem(400);
    server
        .admin(Method::POST, "/projections/orders/rebuild", None)
        .await
        .expect(202);
    server
        .admin(Method::POST, "/projections/nope/rebuild", None)
        .await
        .expect_problem(404);
    // The rebuild is carried out and the order still reads the same.
    wait_until("the rebuild is done", || async {
        !projections::operations::rebuild_pending(&server.store, "orders")
            .await
            .expect("pending")
    })
    .await;
    assert_eq!(server.order(&order_id).await["status"], "paid");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_that_fails_makes_the_command_line_exit_non_zero_with_the_reason() {
    let server = TestServer::start(Options::auto()).await;
    server.receive("REBUILD-1", 5).await.expect(201);
    // An inventory event the stock projection cannot decode: the live
    // projection parks it, and a rebuild cannot get past it.
    server
        .store
        .append_to_stream(
            "inventory-REBUILD-2",
            ExpectedVersion::Any,
            vec![NewEvent::new("NotAnInventoryEvent", json!({}))],
        )
        .await
        .expect("append");
    wait_until("the live projection has parked it", || async {
        projections::operations::parked_events(
            &server.store,
            "stock",
            event_store::LogCursor::START,
            1000,
        )
        .await
        .map(|parked| parked.len() == 1)
        .unwrap_or(false)
    })
    .await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderstream"))
        .args(["projections", "rebuild", "stock"])
        .env("DATABASE_URL", server.database_url())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run orderstream projections rebuild");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "exit status {}: {stderr}",
        output.status
    );
    assert!(
        stderr.contains("rebuild of stock failed") && stderr.contains("NotAnInventoryEvent"),
        "says why: {stderr}"
    );
    // The old read model stays in service.
    assert_eq!(
        server.get("/inventory/REBUILD-1").await.expect(200).body["on_hand"],
        5
    );
    server.stop().await;
}

/// The orders projection refuses every write while this trigger exists:
/// each order event it reads fails until parked.
async fn inject_order_summary_fault(server: &TestServer) {
    sqlx::raw_sql(
        "CREATE FUNCTION replay_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'injected fault: order summaries are refused'; END $$; \
         CREATE TRIGGER replay_test_fault BEFORE INSERT OR UPDATE ON order_summaries \
           FOR EACH ROW EXECUTE FUNCTION replay_test_fault();",
    )
    .execute(server.store.pool())
    .await
    .expect("inject the fault");
}

async fn parked_orders(server: &TestServer) -> Vec<serde_json::Value> {
    server
        .admin(Method::GET, "/subscriptions/orders/parked", None)
        .await
        .expect(200)
        .body
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Asks for the replay of the event parked at `position`; waits for the
/// owner's outcome and returns `(status, outcome)`.
async fn replay_one(server: &TestServer, position: i64) -> (String, String) {
    let answer = server
        .admin(
            Method::POST,
            &format!("/subscriptions/orders/parked/{position}/replay"),
            None,
        )
        .await
        .expect(202);
    assert_eq!(answer.body["accepted"], true, "{}", answer.text);
    let request = answer.body["request"].as_i64().expect("request id");
    let location = answer
        .headers
        .get("location")
        .and_then(|value| value.to_str().ok())
        .expect("Location")
        .to_owned();
    assert_eq!(
        location,
        format!("/subscriptions/orders/requests/{request}")
    );
    wait_until("the owner has carried out the replay", || async {
        let status = server.admin(Method::GET, &location, None).await.expect(200);
        status.body["status"] != "pending"
    })
    .await;
    // Carried out, a request's status no longer changes.
    let status = server.admin(Method::GET, &location, None).await.expect(200);
    assert_eq!(status.body["id"], request);
    (
        status.body["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        status.body["outcome"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_parked_event_is_replayed_alone_and_only_when_first_of_its_stream() {
    let server = TestServer::start(Options::auto()).await;
    server.receive("REPLAY-1", 3).await;
    inject_order_summary_fault(&server).await;
    let order_id = server.place(&[("REPLAY-1", 1)], "card_ok").await;
    server.wait_for_status(&order_id, "paid").await;
    let stream = format!("order-{order_id}");
    wait_until("the order's events are parked", || async {
        parked_orders(&server)
            .await
            .iter()
            .filter(|event| event["stream_id"] == stream.as_str())
            .count()
            >= 3
    })
    .await;
    let parked = parked_orders(&server).await;
    let head = parked[0]["position"].as_i64().expect("position");
    let second = parked[1]["position"].as_i64().expect("position");
    assert!(parked[0]["blocked_by"].is_null(), "{parked:?}");
    assert_eq!(parked[1]["blocked_by"], head, "{parked:?}");

    // Not before the earlier parked events of its stream: 409 naming the
    // one to replay first, and nothing is requested.
    let refused = server
        .admin(
            Method::POST,
            &format!("/subscriptions/orders/parked/{second}/replay"),
            None,
        )
        .await
        .expect_problem(409);
    let detail = refused.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("position {head} first")) && detail.contains(&stream),
        "{detail}"
    );
    // Unknown subscription, position, request; a position that is no number.
    for (method, path) in [
        (
            Method::POST,
            "/subscriptions/nope/parked/1/replay".to_owned(),
        ),
        (
            Method::POST,
            format!("/subscriptions/orders/parked/{}/replay", head + 100_000),
        ),
        (
            Method::GET,
            "/subscriptions/orders/requests/999999".to_owned(),
        ),
        (Method::GET, "/subscriptions/nope/requests/1".to_owned()),
    ] {
        server.admin(method, &path, None).await.expect_problem(404);
    }
    server
        .admin(Method::POST, "/subscriptions/orders/parked/x/replay", None)
        .await
        .expect_problem(400);

    // While the fault lasts, the replay fails again: its outcome says why,
    // and the event stays parked at the head with more attempts.
    let attempts_before = parked[0]["attempts"].as_i64().expect("attempts");
    let (status, outcome) = replay_one(&server, head).await;
    assert_eq!(status, "failed", "{outcome}");
    assert!(outcome.contains("injected fault"), "{outcome}");
    let still = parked_orders(&server).await;
    assert_eq!(still[0]["position"], head);
    assert!(still[0]["blocked_by"].is_null());
    assert!(still[0]["attempts"].as_i64().expect("attempts") > attempts_before);

    // Fixed: the head alone is replayed; the next event of the stream
    // becomes the one the rest wait behind, untried.
    sqlx::raw_sql("DROP TRIGGER replay_test_fault ON order_summaries")
        .execute(server.store.pool())
        .await
        .expect("remove the fault");
    let (status, outcome) = replay_one(&server, head).await;
    assert_eq!((status.as_str(), outcome.as_str()), ("done", "replayed"));
    let after = parked_orders(&server).await;
    assert_eq!(after.len(), still.len() - 1, "{after:?}");
    assert!(after.iter().all(|event| event["position"] != head));
    assert_eq!(after[0]["position"], second);
    assert!(after[0]["blocked_by"].is_null(), "{after:?}");
    assert!(
        after[0]["error"]
            .as_str()
            .is_some_and(|error| error.starts_with("not tried yet")),
        "{after:?}"
    );
    assert!(
        after[1..].iter().all(|event| event["blocked_by"] == second),
        "{after:?}"
    );
    let summary = projections::read_models::orders::find_order(
        server.store.pool(),
        order_id.parse().expect("uuid"),
    )
    .await
    .expect("read the summary")
    .expect("the replayed OrderPlaced made the summary");
    assert_eq!(summary.customer_id, "c-42");

    // The rest, in order, one at a time; the read model ends where the
    // order is.
    for event in after {
        let position = event["position"].as_i64().expect("position");
        assert_eq!(
            replay_one(&server, position).await,
            ("done".to_owned(), "replayed".to_owned())
        );
    }
    assert!(parked_orders(&server).await.is_empty());
    let summary = projections::read_models::orders::find_order(
        server.store.pool(),
        order_id.parse().expect("uuid"),
    )
    .await
    .expect("read the summary")
    .expect("summary");
    assert_eq!(summary.status.to_string(), "paid");
    server.stop().await;
}
