//! The whole order -> reserve -> ship -> pay flow, for each path.

use std::sync::{Arc, Mutex};

use aggregates::inventory::{Inventory, InventoryCommand};
use aggregates::order::{Order, OrderCommand, OrderError, OrderStatus};
use aggregates::payment::GatewayOutcome;
use aggregates::stream_id;
use aggregates::values::{PaymentMethod, Sku, Warehouse};
use async_trait::async_trait;
use commands::{CommandExecutor, ExecuteError, ExecutorOptions};
use event_store::{LogCursor, StreamRead};
use projections::gateway::{CaptureRequest, PaymentGateway};
use projections::operations::request_reset;
use projections::read_models::{orders, payments, stock};
use projections::runtime::{Fulfilment, RuntimeOptions};

use crate::helpers::{request, wait_until, TestApp};

fn manual() -> RuntimeOptions {
    RuntimeOptions {
        fulfilment: Fulfilment::Manual,
        ..TestApp::fast_options()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_goes_through_every_step_and_every_read_model() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 10).await;
    let runtime = app.start(TestApp::fast_options());
    let order_id = app.place(&[("SKU-1", 3)], PaymentMethod::CardOk).await;
    app.wait_for_status(order_id, OrderStatus::Paid).await;
    assert_eq!(
        app.stock("SKU-1").await,
        (7, 0, 7),
        "shipped stock left on hand"
    );

    app.wait_until_idle().await;
    let summary = orders::find_order(app.store.pool(), order_id)
        .await
        .expect("query")
        .expect("summary");
    assert_eq!(summary.status, OrderStatus::Paid);
    assert_eq!(summary.total.to_string(), "37.50");
    let payment = payments::find_payment(app.store.pool(), order_id)
        .await
        .expect("query")
        .expect("payment");
    assert_eq!(payment.status, "captured");
    let level = stock::stock_level(app.store.pool(), "SKU-1")
        .await
        .expect("query")
        .expect("level");
    assert_eq!((level.on_hand, level.reserved, level.available), (7, 0, 7));

    // The whole flow shares the order's correlation id, each step caused
    // by the one before.
    let placed = app
        .store
        .read_stream(&stream_id::<Order>(order_id), StreamRead::default())
        .await
        .expect("read");
    let correlation = placed[0].correlation_id.clone().expect("correlation id");
    let flow = app
        .store
        .read_correlation(&correlation, LogCursor::START, 100)
        .await
        .expect("timeline");
    let types: Vec<&str> = flow.iter().map(|e| e.event_type.as_str()).collect();
    for expected in [
        "OrderPlaced",
        "InventoryReserved",
        "StockReserved",
        "OrderReserved",
        "OrderShipped",
        "InventoryCommitted",
        "StockCommitted",
        "PaymentRequested",
        "PaymentCaptured",
        "OrderPaid",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    let ids: std::collections::HashSet<_> = flow.iter().map(|e| e.event_id).collect();
    assert!(
        flow.iter().skip(1).all(|e| e
            .causation_id
            .is_some_and(|cause| ids.contains(&cause) || Some(cause) == correlation.as_uuid())),
        "every event is caused by an event of the flow"
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_with_a_short_line_is_rejected_and_holds_no_stock() {
    let app = TestApp::new().await;
    app.receive("A", "main", 10).await;
    app.receive("B", "main", 1).await;
    let runtime = app.start(TestApp::fast_options());
    let order_id = app
        .place(&[("A", 2), ("B", 2)], PaymentMethod::CardOk)
        .await;
    app.wait_for_status(order_id, OrderStatus::Rejected).await;
    assert_eq!(app.stock("A").await, (10, 0, 10));
    assert_eq!(app.stock("B").await, (1, 0, 1));
    app.wait_until_idle().await;
    let summary = orders::find_order(app.store.pool(), order_id)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(summary.status, OrderStatus::Rejected);
    assert!(summary.shortages.is_some());
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_before_shipping_releases_the_stock() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 5).await;
    let runtime = app.start(manual());
    let order_id = app.place(&[("SKU-1", 4)], PaymentMethod::CardOk).await;
    app.wait_for_status(order_id, OrderStatus::Reserved).await;
    assert_eq!(app.stock("SKU-1").await, (5, 4, 1));
    app.executor
        .execute::<Order>(
            &stream_id::<Order>(order_id),
            &OrderCommand::Cancel {
                reason: "changed my mind".into(),
            },
            &request(),
        )
        .await
        .expect("cancel");
    wait_until("the reservation is released", || async {
        app.stock("SKU-1").await == (5, 0, 5)
    })
    .await;
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_after_shipping_is_refused() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 5).await;
    let runtime = app.start(manual());
    let order_id = app.place(&[("SKU-1", 1)], PaymentMethod::CardOk).await;
    app.wait_for_status(order_id, OrderStatus::Reserved).await;
    app.executor
        .ship_order(order_id, &request())
        .await
        .expect("ship");
    app.wait_for_status(order_id, OrderStatus::Paid).await;
    let refused = app
        .executor
        .execute::<Order>(
            &stream_id::<Order>(order_id),
            &OrderCommand::Cancel {
                reason: "too late".into(),
            },
            &request(),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(ExecuteError::Domain(OrderError::CannotCancel { .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(app.stock("SKU-1").await, (4, 0, 4));
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_leaves_the_order_payment_failed() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 5).await;
    let runtime = app.start(TestApp::fast_options());
    let order_id = app
        .place(&[("SKU-1", 1)], PaymentMethod::CardDeclined)
        .await;
    app.wait_for_status(order_id, OrderStatus::PaymentFailed)
        .await;
    assert_eq!(app.count_events("PaymentCaptured").await, 0);
    assert_eq!(app.count_events("PaymentFailed").await, 1);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_card_is_retried_and_captured_exactly_once() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 5).await;
    let runtime = app.start(TestApp::fast_options());
    let order_id = app.place(&[("SKU-1", 1)], PaymentMethod::CardFlaky).await;
    app.wait_for_status(order_id, OrderStatus::Paid).await;
    app.wait_until_idle().await;
    assert_eq!(app.count_events("PaymentCaptured").await, 1);
    assert_eq!(
        app.count_events("PaymentFailed").await,
        2,
        "two transient failures first"
    );
    assert_eq!(app.count_events("OrderPaid").await, 1);
    runtime.shutdown().await;
}

/// Resets the payment reactor to the start of the log and waits until it
/// has handled everything again.
async fn redeliver_to_the_payment_reactor(app: &TestApp) {
    request_reset(&app.store, projections::reactors::payment::NAME, 0)
        .await
        .expect("reset");
    wait_until("the reset is carried out", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT NOT EXISTS (SELECT FROM subscription_requests WHERE done_at IS NULL)",
        )
        .fetch_one(app.store.pool())
        .await
        .unwrap_or(false)
    })
    .await;
    app.wait_until_idle().await;
}

/// A gateway that answers each attempt number from a script (captures
/// past its end) and records every attempt it was asked.
struct ScriptedGateway {
    script: Vec<GatewayOutcome>,
    asked: Mutex<Vec<u32>>,
}

impl ScriptedGateway {
    fn new(script: Vec<GatewayOutcome>) -> Arc<Self> {
        Arc::new(ScriptedGateway {
            script,
            asked: Mutex::new(Vec::new()),
        })
    }

    fn asked(&self) -> Vec<u32> {
        self.asked.lock().expect("not poisoned").clone()
    }
}

#[async_trait]
impl PaymentGateway for ScriptedGateway {
    async fn capture(&self, request: &CaptureRequest) -> GatewayOutcome {
        self.asked
            .lock()
            .expect("not poisoned")
            .push(request.attempt);
        usize::try_from(request.attempt)
            .ok()
            .and_then(|attempt| self.script.get(attempt.wrapping_sub(1)))
            .copied()
            .unwrap_or(GatewayOutcome::Captured)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_transient_then_a_permanent_failure_is_paid_with_one_capture() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 5).await;
    let gateway = ScriptedGateway::new(vec![
        GatewayOutcome::TransientFailure,
        GatewayOutcome::PermanentFailure,
    ]);
    let runtime = app.start(RuntimeOptions {
        gateway: gateway.clone(),
        ..TestApp::fast_options()
    });
    let order_id = app.place(&[("SKU-1", 1)], PaymentMethod::CardOk).await;
    // Two gateway attempts, one failure the order knows of.
    app.wait_for_status(order_id, OrderStatus::PaymentFailed)
        .await;
    assert_eq!(app.count_events("PaymentFailed").await, 2);
    assert_eq!(app.count_events("OrderPaymentFailed").await, 1);

    app.executor
        .execute::<Order>(
            &stream_id::<Order>(order_id),
            &OrderCommand::RetryPayment,
            &request(),
        )
        .await
        .expect("retry");
    app.wait_for_status(order_id, OrderStatus::Paid).await;
    app.wait_until_idle().await;
    assert_eq!(app.count_events("PaymentCaptured").await, 1);
    assert_eq!(app.count_events("OrderPaid").await, 1);
    assert_eq!(gateway.asked(), [1, 2, 3]);

    // Redelivering the shipment and the retry request (the payment reactor
    // from the start of the log) asks the gateway nothing more.
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    redeliver_to_the_payment_reactor(&app).await;
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    assert_eq!(events_after, events_before);
    assert_eq!(gateway.asked(), [1, 2, 3]);
    assert_eq!(app.status(order_id).await, Some(OrderStatus::Paid));
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_shipment_after_a_permanent_failure_neither_pays_nor_fails_again() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 5).await;
    let gateway = ScriptedGateway::new(vec![
        GatewayOutcome::TransientFailure,
        GatewayOutcome::PermanentFailure,
    ]);
    let runtime = app.start(RuntimeOptions {
        gateway: gateway.clone(),
        ..TestApp::fast_options()
    });
    let order_id = app.place(&[("SKU-1", 1)], PaymentMethod::CardOk).await;
    app.wait_for_status(order_id, OrderStatus::PaymentFailed)
        .await;
    app.wait_until_idle().await;
    redeliver_to_the_payment_reactor(&app).await;
    assert_eq!(gateway.asked(), [1, 2]);
    assert_eq!(app.count_events("PaymentFailed").await, 2);
    assert_eq!(app.count_events("OrderPaymentFailed").await, 1);
    assert_eq!(app.status(order_id).await, Some(OrderStatus::PaymentFailed));
    runtime.shutdown().await;
}

/// Orders placed while no runtime runs reach the reactors as one batch:
/// each batched reactor decides it at once and commits every effect with
/// its checkpoint in one transaction, and the orders end paid, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reactors_batch_is_committed_in_one_transaction_with_every_effect_once() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 100).await;
    let (runtime, events, transactions) = pay_twenty_orders_for_one_sku(&app).await;
    assert_eq!(events, 20, "one reservation per order");
    assert_eq!(
        transactions, 1,
        "the inventory reactor's first batch held every order: one commit"
    );
    assert_eq!(app.count_events("OrderPaid").await, 20);
    assert_eq!(app.count_events("PaymentCaptured").await, 20);
    assert_eq!(app.stock("SKU-1").await, (80, 0, 80));
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_batch_refused_on_a_stale_guess_is_decided_again_and_still_committed_at_once() {
    let app = TestApp::new().await;
    // The runtime's executor keeps SKU-1 at its first version; another
    // process (another executor) then moves the stream on.
    app.receive("SKU-1", "main", 100).await;
    let elsewhere = CommandExecutor::new(app.store.clone(), ExecutorOptions::default());
    elsewhere
        .execute::<Inventory>(
            &stream_id::<Inventory>("SKU-1"),
            &InventoryCommand::Receive {
                sku: Sku::parse("SKU-1").expect("sku"),
                warehouse: Warehouse::parse("main").expect("warehouse"),
                quantity: 5,
            },
            &request(),
        )
        .await
        .expect("receive elsewhere");
    let (runtime, events, transactions) = pay_twenty_orders_for_one_sku(&app).await;
    assert_eq!(events, 20, "one reservation per order");
    assert_eq!(
        transactions, 1,
        "the stale guess was refused, the batch decided again on the stored stock: one commit"
    );
    assert_eq!(app.stock("SKU-1").await, (85, 0, 85));
    runtime.shutdown().await;
}

/// Places 20 one-unit orders of SKU-1, then starts the runtime (so one
/// batch holds them all) and waits until they are paid; returns the
/// runtime, the `InventoryReserved` events and the transactions they took.
async fn pay_twenty_orders_for_one_sku(
    app: &TestApp,
) -> (projections::runtime::RuntimeHandle, i64, i64) {
    let mut orders = Vec::new();
    for _ in 0..20 {
        orders.push(app.place(&[("SKU-1", 1)], PaymentMethod::CardOk).await);
    }
    let runtime = app.start(TestApp::fast_options());
    for order_id in &orders {
        app.wait_for_status(*order_id, OrderStatus::Paid).await;
    }
    app.wait_until_idle().await;
    let (events, transactions): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT transaction_id) FROM events \
          WHERE event_type = 'InventoryReserved'",
    )
    .fetch_one(app.store.pool())
    .await
    .expect("query");
    (runtime, events, transactions)
}
