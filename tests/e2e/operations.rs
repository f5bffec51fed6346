//! Operations behind the admin token: 401 without it, 403 with a wrong one
//! or when none is configured; subscriptions, parked, replay, reset,
//! rebuild.

use event_store::{ExpectedVersion, NewEvent};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{wait_until, Options, TestServer};

const ADMIN_PATHS: &[(&str, &str)] = &[
    ("GET", "/subscriptions"),
    ("GET", "/subscriptions/orders/parked"),
    ("POST", "/subscriptions/orders/parked/replay"),
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
