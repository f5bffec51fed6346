//! The payment reactor pays a batch of shipped orders at once: one
//! transaction for every request, the gateway, one for every outcome with
//! the checkpoint; a transient failure retries only its order; a crash
//! between the two transactions pays nothing twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aggregates::order::OrderStatus;
use aggregates::payment::GatewayOutcome;
use aggregates::values::PaymentMethod;
use async_trait::async_trait;
use event_store::RecordedEvent;
use projections::gateway::{CaptureRequest, PaymentGateway, SimulatedGateway};
use projections::reactors::payment::{PaymentReactor, NAME};
use projections::runtime::{
    standard_subscribers, RuntimeHandle, RuntimeOptions, Subscriber, SubscriptionRuntime,
};
use uuid::Uuid;

use crate::helpers::{wait_until, TestApp};

/// The simulated gateway, recording every attempt it is asked for.
#[derive(Default)]
struct RecordingGateway {
    asked: Mutex<HashMap<Uuid, Vec<u32>>>,
}

impl RecordingGateway {
    fn asked(&self, order_id: Uuid) -> Vec<u32> {
        self.asked
            .lock()
            .expect("not poisoned")
            .get(&order_id)
            .cloned()
            .unwrap_or_default()
    }
}

#[async_trait]
impl PaymentGateway for RecordingGateway {
    async fn capture(&self, request: &CaptureRequest) -> GatewayOutcome {
        self.asked
            .lock()
            .expect("not poisoned")
            .entry(request.order_id)
            .or_default()
            .push(request.attempt);
        SimulatedGateway.capture(request).await
    }
}

/// Places one order per method and lets every subscription but the
/// payment reactor run until all of them shipped: the payment reactor
/// then finds every `OrderShipped` in its first batch.
async fn shipped_orders(app: &TestApp, methods: &[PaymentMethod]) -> Vec<Uuid> {
    app.receive("SKU-1", "main", 1_000).await;
    let mut orders = Vec::new();
    for method in methods {
        orders.push(app.place(&[("SKU-1", 1)], *method).await);
    }
    let options = TestApp::fast_options();
    let subscribers = standard_subscribers(&app.executor, &options)
        .into_iter()
        .filter(|subscriber| subscriber.name() != NAME)
        .collect();
    let runtime = SubscriptionRuntime::start_with(app.store.clone(), subscribers, options);
    for order_id in &orders {
        app.wait_for_status(*order_id, OrderStatus::Shipped).await;
    }
    runtime.shutdown().await;
    orders
}

fn start_payments(
    app: &TestApp,
    gateway: Arc<RecordingGateway>,
    options: RuntimeOptions,
) -> RuntimeHandle {
    let reactor = PaymentReactor {
        executor: app.executor.clone(),
        gateway,
    };
    SubscriptionRuntime::start_with(
        app.store.clone(),
        vec![Subscriber::Reactor(Arc::new(reactor))],
        options,
    )
}

async fn wait_for_captures(app: &TestApp, expected: i64) {
    wait_until(&format!("{expected} payments are captured"), || async {
        app.count_events("PaymentCaptured").await == expected
    })
    .await;
    app.wait_until_idle().await;
}

/// The distinct transactions that wrote events of `event_type`, in the
/// transaction ids PostgreSQL gives (the stored ones carry the log epoch
/// offset).
async fn transactions_writing(app: &TestApp, event_type: &str) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT DISTINCT (e.transaction_id - l.transaction_id_offset) % 4294967296 \
           FROM events e, log_epoch l WHERE e.event_type = $1 ORDER BY 1",
    )
    .bind(event_type)
    .fetch_all(app.store.pool())
    .await
    .expect("transactions")
}

/// The transaction that last moved the payment reactor's checkpoint.
async fn checkpoint_transaction(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT xmin::text::bigint FROM subscription_checkpoints WHERE name = $1")
        .bind(NAME)
        .fetch_one(app.store.pool())
        .await
        .expect("checkpoint")
}

/// Each payment stream's event types, in order.
async fn payment_streams(app: &TestApp) -> HashMap<String, Vec<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT stream_id, event_type FROM events WHERE stream_id LIKE 'payment-%' \
          ORDER BY stream_id, stream_version",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("payment events");
    let mut streams: HashMap<String, Vec<String>> = HashMap::new();
    for (stream_id, event_type) in rows {
        streams.entry(stream_id).or_default().push(event_type);
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_shipped_orders_is_paid_in_two_commits() {
    let app = TestApp::new().await;
    let orders = shipped_orders(&app, &[PaymentMethod::CardOk; 30]).await;
    let gateway = Arc::new(RecordingGateway::default());
    let runtime = start_payments(&app, gateway.clone(), TestApp::fast_options());
    wait_for_captures(&app, 30).await;

    // Every request in one commit, every outcome in one more, which also
    // moved the checkpoint past the batch: two commits for 30 orders.
    let requested = transactions_writing(&app, "PaymentRequested").await;
    let captured = transactions_writing(&app, "PaymentCaptured").await;
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert_eq!(captured.len(), 1, "{captured:?}");
    assert_ne!(
        requested, captured,
        "the requests commit before the gateway is asked"
    );
    assert_eq!(checkpoint_transaction(&app).await, captured[0]);
    assert_eq!(app.count_events("PaymentRequested").await, 30);
    for order_id in &orders {
        assert_eq!(gateway.asked(*order_id), [1], "order {order_id}");
    }
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_in_a_batch_retries_only_its_order() {
    let app = TestApp::new().await;
    let mut methods = vec![PaymentMethod::CardOk; 21];
    // Fails transiently at attempts 1 and 2, captures at 3.
    methods[10] = PaymentMethod::CardFlaky;
    let orders = shipped_orders(&app, &methods).await;
    let flaky = orders[10];
    let gateway = Arc::new(RecordingGateway::default());
    let runtime = start_payments(&app, gateway.clone(), TestApp::fast_options());
    wait_for_captures(&app, 21).await;

    assert_eq!(gateway.asked(flaky), [1, 2, 3]);
    for order_id in orders.iter().filter(|order_id| **order_id != flaky) {
        assert_eq!(gateway.asked(*order_id), [1], "order {order_id}");
    }
    // The batch's requests in one commit, then one for each retry of the
    // flaky order; nothing else was requested again.
    assert_eq!(
        transactions_writing(&app, "PaymentRequested").await.len(),
        3
    );
    assert_eq!(app.count_events("PaymentRequested").await, 23);
    assert_eq!(app.count_events("PaymentFailed").await, 2);
    let streams = payment_streams(&app).await;
    assert_eq!(
        streams[&format!("payment-{flaky}")],
        [
            "PaymentRequested",
            "PaymentFailed",
            "PaymentRequested",
            "PaymentFailed",
            "PaymentRequested",
            "PaymentCaptured"
        ]
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_requests_and_the_checkpoint_pays_nothing_twice() {
    let app = TestApp::new().await;
    let orders = shipped_orders(&app, &[PaymentMethod::CardOk; 12]).await;
    let gateway = Arc::new(RecordingGateway::default());
    let crashed = Arc::new(AtomicBool::new(false));
    let hook_crashed = crashed.clone();
    let options = RuntimeOptions {
        // Once: after the batch's requests and gateway calls, before its
        // outcomes and checkpoint.
        crash_before_checkpoint: Some(Arc::new(move |name: &str, _: &RecordedEvent| {
            name == NAME && !hook_crashed.swap(true, Ordering::SeqCst)
        })),
        ..TestApp::fast_options()
    };
    let runtime = start_payments(&app, gateway.clone(), options);
    wait_for_captures(&app, 12).await;
    assert!(crashed.load(Ordering::SeqCst), "the hook fired");

    // The redelivered batch found its requests stored and asked the
    // gateway again for the same attempt, its idempotency key.
    for order_id in &orders {
        assert_eq!(gateway.asked(*order_id), [1, 1], "order {order_id}");
    }
    let streams = payment_streams(&app).await;
    assert_eq!(streams.len(), 12);
    for (stream_id, events) in &streams {
        assert_eq!(
            events,
            &["PaymentRequested", "PaymentCaptured"],
            "{stream_id}"
        );
    }
    runtime.shutdown().await;
}
