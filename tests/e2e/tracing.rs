//! Trace context across the whole flow, through the real binaries: `serve`
//! (relay on) and `finance serve` export their spans over OTLP/HTTP to a
//! receiver this test runs (decoded with the official protobuf types). An
//! order placed with a caller's `traceparent` must keep that trace from the
//! HTTP request through the events the reactors write, the relay's publish
//! and Finance's booking, each span a child of the one before it.

use std::time::{Duration, Instant};

use event_store::{Traceparent, MIGRATOR};
use serde_json::{json, Value};
use test_support::TestDatabase;
use uuid::Uuid;

use crate::helpers::{order_body, ADMIN_TOKEN, PATIENCE};
use crate::otlp_receiver::{start_receiver, trace, ExportedSpan};
use crate::served::{FinanceOnBroker, Server};

const SKU: &str = "TRACED-A";

/// From `span` up to the root of what was received: `span` first.
fn ancestry<'a>(spans: &'a [ExportedSpan], span: &'a ExportedSpan) -> Vec<&'a ExportedSpan> {
    let mut path = vec![span];
    while let Some(parent) = path
        .last()
        .and_then(|last| spans.iter().find(|s| s.span_id == last.parent_span_id))
    {
        if path.len() > spans.len() {
            break;
        }
        path.push(parent);
    }
    path
}

/// Finance's booking of `contract` in this trace, once every span on its
/// way up to the request has arrived (spans come in batches, a parent
/// sometimes after its child): the path from the booking to the request.
fn booking_path(spans: &[ExportedSpan], contract: &str, caller: &str) -> Option<Vec<String>> {
    let booking = spans.iter().find(|span| {
        span.service == "orderstream-finance"
            && span.name == "consume"
            && span.attribute("contract") == Some(contract)
            && span.attribute("outcome") == Some("booked")
    })?;
    let path = ancestry(spans, booking);
    let root = path.last()?;
    (root.name == "request" && root.parent_span_id == caller).then(|| {
        path.iter()
            .map(|span| match span.attribute("subscription") {
                Some(subscription) => format!("{}:{}({subscription})", span.service, span.name),
                None => format!("{}:{}", span.service, span.name),
            })
            .collect()
    })
}

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

async fn place_order(client: &reqwest::Client, server: &Server, traceparent: &str) -> String {
    let response = client
        .post(server.url("/orders"))
        .header("traceparent", traceparent)
        .json(&order_body(&[(SKU, 2)], "card_ok"))
        .send()
        .await
        .expect("POST /orders");
    assert_eq!(response.status(), 201, "traceparent {traceparent:?}");
    let body: Value = response.json().await.expect("a JSON body");
    body["order_id"].as_str().expect("order_id").to_owned()
}

/// The order's timeline: its events and those of every flow it started.
async fn timeline(client: &reqwest::Client, server: &Server, order_id: &str) -> Vec<Value> {
    let body = get(client, server, &format!("/orders/{order_id}/timeline")).await;
    match body {
        Value::Array(events) => events,
        other => other["events"].as_array().cloned().unwrap_or_default(),
    }
}

fn event_traceparent(event: &Value) -> Option<Traceparent> {
    Traceparent::parse(event["metadata"]["traceparent"].as_str()?).ok()
}

async fn wait_for_paid(client: &reqwest::Client, server: &Server, order_id: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let order = get(client, server, &format!("/orders/{order_id}")).await;
        if order["status"] == "paid" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "order {order_id} is still {}; log: {}",
            order["status"],
            server.log().display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_reaches_finance_through_events_reactors_and_the_broker() {
    let client = reqwest::Client::new();
    let FinanceOnBroker {
        broker,
        finance_db,
        exchange,
        queue,
    } = FinanceOnBroker::new("traced").await;
    let orders_db = TestDatabase::new(&MIGRATOR)
        .await
        .expect("orderstream's database");
    let (endpoint, received) = start_receiver().await;
    let otel = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let finance_env = [
        ("FINANCE_DATABASE_URL", finance_db.url()),
        ("ORDERSTREAM_AMQP_URL", broker.url()),
        ("ORDERSTREAM_AMQP_EXCHANGE", exchange.as_str()),
        ("ORDERSTREAM_FINANCE_QUEUE", queue.as_str()),
        otel[0],
        otel[1],
    ];
    // Finance first: its queue must be bound before the relay publishes
    // (the relay parks what no queue takes). Ready means bound.
    let finance = Server::start_with(
        &["finance", "serve"],
        &finance_env,
        "/finance/ready",
        &client,
        "traced-finance",
    )
    .await;
    let orderstream = Server::start_with(
        &["serve"],
        &[
            ("DATABASE_URL", orders_db.url()),
            ("ORDERSTREAM_AMQP_URL", broker.url()),
            ("ORDERSTREAM_AMQP_EXCHANGE", exchange.as_str()),
            otel[0],
            otel[1],
        ],
        "/ready",
        &client,
        "traced-orderstream",
    )
    .await;
    let receipt = client
        .post(orderstream.url(&format!("/inventory/{SKU}/receipts")))
        .json(&json!({"quantity": 100}))
        .send()
        .await
        .expect("POST receipts");
    assert!(receipt.status().is_success(), "{}", receipt.status());

    // The caller's trace: a trace id and the id of its own (client) span.
    let trace_id = Uuid::new_v4().simple().to_string();
    let caller_span = Uuid::new_v4().simple().to_string()[..16].to_owned();
    let order_id = place_order(
        &client,
        &orderstream,
        &format!("00-{trace_id}-{caller_span}-01"),
    )
    .await;
    // A malformed traceparent is no reason to refuse an order: it is
    // ignored, and the request starts a trace of its own.
    let untraced_id = place_order(&client, &orderstream, "00-not-a-trace-context-01").await;
    wait_for_paid(&client, &orderstream, &order_id).await;

    // Spans come in batches, a parent sometimes after its children: wait
    // until Finance's bookings are in and every span of the trace, and the
    // writer of every event of the flow, has arrived.
    let deadline = Instant::now() + PATIENCE;
    let (spans, shipped_path, events) = loop {
        let spans = trace(&received, &trace_id);
        let events = timeline(&client, &orderstream, &order_id).await;
        let shipped = booking_path(&spans, "order.shipped.v1", &caller_span);
        let captured = booking_path(&spans, "payment.captured.v1", &caller_span);
        let orphans: Vec<&ExportedSpan> = spans
            .iter()
            .filter(|span| {
                let is_the_request = span.name == "request" && span.parent_span_id == caller_span;
                let has_parent = spans.iter().any(|s| s.span_id == span.parent_span_id);
                !(is_the_request || has_parent)
            })
            .collect();
        let unwritten: Vec<&Value> = events
            .iter()
            .filter(|event| {
                event_traceparent(event).is_none_or(|traceparent| {
                    !spans.iter().any(|s| s.span_id == traceparent.span_id())
                })
            })
            .collect();
        if let (Some(shipped), Some(_), true, true) =
            (shipped, captured, orphans.is_empty(), unwritten.is_empty())
        {
            break (spans, shipped, events);
        }
        assert!(
            Instant::now() < deadline,
            "the trace is incomplete: spans hanging from no span of it: {orphans:#?}; \
             events without an exported writer: {unwritten:#?}; spans: {:#?}; logs: {}, {}",
            spans
                .iter()
                .map(|s| (&s.service, &s.name, &s.span_id, &s.parent_span_id))
                .collect::<Vec<_>>(),
            orderstream.log().display(),
            finance.log().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // (b) Both services exported spans of the caller's trace, and they
    // chain from Finance's booking back to the caller's span.
    for step in [
        "orderstream-finance:consume",
        "orderstream:publish",
        "orderstream:react(integration-relay)",
        "orderstream:react(fulfilment-reactor)",
        "orderstream:react(order-reactor)",
        "orderstream:react(inventory-reactor)",
        "orderstream:place_order",
        "orderstream:request",
    ] {
        assert!(
            shipped_path.iter().any(|hop| hop == step),
            "{step} is not on the way from the booking to the request: {shipped_path:?}"
        );
    }
    assert_eq!(
        shipped_path.get(1).map(String::as_str),
        Some("orderstream:publish"),
        "the booking's parent is the publish: {shipped_path:?}"
    );
    let services: Vec<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    assert!(services.contains(&"orderstream") && services.contains(&"orderstream-finance"));

    // (a) Every event of the flow, the reactors' in other streams included,
    // carries the trace, and names the span that wrote it.
    let streams: Vec<&str> = events
        .iter()
        .filter_map(|event| event["stream_id"].as_str())
        .collect();
    assert!(
        streams.iter().any(|s| *s == format!("order-{order_id}"))
            && streams.iter().any(|s| !s.starts_with("order-")),
        "the timeline holds the order's and other streams' events: {streams:?}"
    );
    for written_by_a_reactor in ["InventoryReserved", "OrderShipped", "PaymentCaptured"] {
        assert!(
            events.iter().any(|e| e["type"] == written_by_a_reactor),
            "no {written_by_a_reactor} in {events:?}"
        );
    }
    for event in &events {
        let traceparent = event_traceparent(event).expect("checked above");
        assert_eq!(traceparent.trace_id(), trace_id, "{event}");
        let writer = spans
            .iter()
            .find(|span| span.span_id == traceparent.span_id())
            .expect("checked above");
        let expected = if event["type"] == "OrderPlaced" {
            "place_order"
        } else {
            "react"
        };
        assert_eq!(writer.name, expected, "{event}");
    }

    // The order sent with a malformed traceparent has a trace of its own.
    let untraced = timeline(&client, &orderstream, &untraced_id).await;
    let placed = untraced
        .iter()
        .find(|event| event["type"] == "OrderPlaced")
        .expect("the other order's OrderPlaced");
    let own = event_traceparent(placed).expect("a trace of its own");
    assert_ne!(own.trace_id(), trace_id);
}

/// `orderstream serve` with `environment`, logging at `info`, for the
/// tests that signal it or read its log.
struct Served {
    child: std::process::Child,
    base: String,
    log: std::path::PathBuf,
}

impl Served {
    async fn start(database_url: &str, environment: &[(&str, &str)]) -> Served {
        let port = crate::served::free_port();
        let log = std::env::temp_dir().join(format!(
            "orderstream-traced-{}.log",
            Uuid::new_v4().simple()
        ));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_orderstream"))
            .arg("serve")
            .envs(environment.iter().copied())
            .env("DATABASE_URL", database_url)
            .env("ORDERSTREAM_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the server log"))
            .spawn()
            .expect("spawn orderstream serve");
        let mut served = Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("serve exited with {status}; log: {}", served.log.display());
            }
            let ready = client.get(served.url("/ready")).send().await;
            if ready.is_ok_and(|response| response.status() == 200) {
                return served;
            }
            assert!(Instant::now() < deadline, "serve was not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run `kill` (install procps)");
        assert!(kill.success());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for serve") {
                return status;
            }
            assert!(Instant::now() < deadline, "serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn caller_traceparent() -> (String, String) {
    let trace_id = Uuid::new_v4().simple().to_string();
    let span_id = &Uuid::new_v4().simple().to_string()[..16];
    (trace_id.clone(), format!("00-{trace_id}-{span_id}-01"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_still_buffered_are_exported_on_a_graceful_shutdown() {
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    let (endpoint, received) = start_receiver().await;
    // A batch delay no test waits for: only the shutdown's flush can send.
    let mut served = Served::start(
        database.url(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    )
    .await;
    let (trace_id, traceparent) = caller_traceparent();
    let health = reqwest::Client::new()
        .get(served.url("/health"))
        .header("traceparent", traceparent)
        .send()
        .await
        .expect("GET /health");
    assert_eq!(health.status(), 200);
    assert!(
        trace(&received, &trace_id).is_empty(),
        "exported before the shutdown"
    );
    let status = served.terminate();
    assert!(status.success(), "serve exited with {status}");
    let spans = trace(&received, &trace_id);
    assert!(
        spans.iter().any(|span| span.name == "request"),
        "the request's span was not flushed on shutdown: {spans:?}; log: {}",
        served.log.display()
    );
    assert!(served.log_text().contains("tracing export on"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_exported_but_the_trace_still_reaches_the_events() {
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    let served = Served::start(database.url(), &[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]).await;
    let (trace_id, traceparent) = caller_traceparent();
    let client = reqwest::Client::new();
    let response = client
        .post(served.url("/orders"))
        .header("traceparent", traceparent)
        .json(&order_body(&[(SKU, 1)], "card_ok"))
        .send()
        .await
        .expect("POST /orders");
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.expect("a JSON body");
    let order_id = order["order_id"].as_str().expect("order_id");
    let history: Value = client
        .get(served.url(&format!("/streams/order-{order_id}")))
        .send()
        .await
        .expect("GET the order's stream")
        .json()
        .await
        .expect("a JSON body");
    let placed = &history["events"][0];
    assert_eq!(placed["type"], "OrderPlaced", "{history}");
    let traceparent = event_traceparent(placed).expect("the caller's trace context");
    assert_eq!(traceparent.trace_id(), trace_id);
    let log = served.log_text();
    assert_eq!(
        log.matches("tracing export off").count(),
        1,
        "one line says export is off: {log}"
    );
}
