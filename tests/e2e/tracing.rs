//! Trace context across the whole flow, through the real binaries: `serve`
//! (relay on) and `finance serve` export their spans over OTLP/HTTP to a
//! receiver this test runs (decoded with the official protobuf types). An
//! order placed with a caller's `traceparent` must keep that trace from the
//! HTTP request through the events the reactors write, the relay's publish
//! and Finance's booking, each span a child of the one before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use event_store::{Traceparent, MIGRATOR};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use pg_embedded::TestDatabase;
use prost::Message;
use rabbitmq_embedded::TestBroker;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{order_body, ADMIN_TOKEN, PATIENCE};
use crate::served::Server;

const SKU: &str = "TRACED-A";

/// One span as the receiver got it; ids in lowercase hex.
#[derive(Debug, Clone)]
struct ExportedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

impl ExportedSpan {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

type Received = Arc<Mutex<Vec<ExportedSpan>>>;

/// An OTLP/HTTP (protobuf) trace receiver on a free port: what an
/// OpenTelemetry Collector's `otlp` receiver would take.
async fn start_receiver() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the receiver");
    let address = listener.local_addr().expect("the receiver's address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

async fn receive(State(received): State<Received>, body: Bytes) -> axum::response::Response {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|resource| attributes(&resource.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                spans.push(ExportedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    received.lock().expect("the receiver's lock").extend(spans);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn attributes(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .filter_map(|attribute| {
            let value = match attribute.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(text) => text.clone(),
                AnyValue::IntValue(number) => number.to_string(),
                AnyValue::BoolValue(flag) => flag.to_string(),
                _ => return None,
            };
            Some((attribute.key.clone(), value))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The spans of `trace_id` received so far.
fn trace(received: &Received, trace_id: &str) -> Vec<ExportedSpan> {
    received
        .lock()
        .expect("the receiver's lock")
        .iter()
        .filter(|span| span.trace_id == trace_id)
        .cloned()
        .collect()
}

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
    let broker = TestBroker::shared()
        .await
        .unwrap_or_else(|error| panic!("this test needs RabbitMQ: {error}"));
    let orders_db = TestDatabase::new(&MIGRATOR)
        .await
        .expect("orderstream's database");
    let finance_db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("finance's database");
    let (endpoint, received) = start_receiver().await;
    let exchange = TestBroker::unique_name("traced-events");
    let queue = format!("{}.inbox", TestBroker::unique_name("traced-finance"));
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
    let finance = Server::start_with(
        &["finance", "serve"],
        &finance_env,
        "/finance/trial-balance",
        &client,
        "traced-finance",
    )
    .await;
    // Its queue must be bound before the relay publishes; Finance declares
    // the dead-letter queue after binding its inbox.
    let connection = rabbitmq_embedded::connect_amqp(broker.url())
        .await
        .expect("a test connection to RabbitMQ");
    let dead_letters = queue.replace(".inbox", ".dead");
    assert!(
        rabbitmq_embedded::wait_for_queue(&connection, &dead_letters, PATIENCE).await,
        "Finance never declared {dead_letters}; log: {}",
        finance.log().display()
    );
    let _ = connection.close(200, "queue seen").await;
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
                !spans.iter().any(|s| s.span_id == span.parent_span_id)
                    && !(span.name == "request" && span.parent_span_id == caller_span)
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
