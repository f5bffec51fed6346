//! Crashes between an effect and its checkpoint, and poison events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aggregates::order::OrderStatus;
use aggregates::values::PaymentMethod;
use async_trait::async_trait;
use event_store::{ExpectedVersion, FailureClass, LogCursor, NewEvent, RecordedEvent};
use projections::operations::{parked_events, request_replay_parked};
use projections::read_models::stock;
use projections::runtime::{RuntimeOptions, Subscriber, SubscriptionRuntime};
use projections::{HandlerError, Reactor};
use serde_json::json;
use sqlx::Connection;

use crate::helpers::{wait_until, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_effect_and_checkpoint_causes_no_second_effect() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 10).await;
    // Every subscription "crashes" after the effects of its first three
    // batches, before their checkpoints; each restart redelivers them.
    let crashes: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let hook_crashes = crashes.clone();
    let options = RuntimeOptions {
        crash_before_checkpoint: Some(Arc::new(move |name: &str, _event: &RecordedEvent| {
            let mut crashes = hook_crashes
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let count = crashes.entry(name.to_owned()).or_default();
            *count += 1;
            *count <= 3
        })),
        ..TestApp::fast_options()
    };
    let runtime = app.start(options);
    let first = app.place(&[("SKU-1", 2)], PaymentMethod::CardOk).await;
    let second = app.place(&[("SKU-1", 3)], PaymentMethod::CardFlaky).await;
    app.wait_for_status(first, OrderStatus::Paid).await;
    app.wait_for_status(second, OrderStatus::Paid).await;
    app.wait_until_idle().await;

    for (event_type, expected) in [
        ("InventoryReserved", 2),
        ("StockReserved", 2),
        ("OrderReserved", 2),
        ("OrderShipped", 2),
        ("StockCommitted", 2),
        ("PaymentCaptured", 2),
        ("OrderPaid", 2),
    ] {
        assert_eq!(app.count_events(event_type).await, expected, "{event_type}");
    }
    let level = stock::stock_level(app.store.pool(), "SKU-1")
        .await
        .expect("query")
        .expect("row");
    assert_eq!(
        (level.on_hand, level.reserved),
        (5, 0),
        "the projection applied each event once"
    );
    let history = stock::stock_history(app.store.pool(), "SKU-1", stock::HistoryRange::first(1000))
        .await
        .expect("history");
    assert_eq!(
        history.len(),
        5,
        "receipt, two reservations, two commits: one row each"
    );
    let crashed = crashes
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone();
    assert!(
        crashed.values().any(|count| *count > 3),
        "the hook fired: {crashed:?}"
    );
    runtime.shutdown().await;
}

/// A reactor that fails on events labelled "poison" while `broken`.
struct Fragile {
    broken: Arc<AtomicBool>,
    /// Labels handled, by stream: only each stream's order is promised
    /// (streams of one batch are handled concurrently).
    handled: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

#[async_trait]
impl Reactor for Fragile {
    fn name(&self) -> &'static str {
        "fragile"
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        let label = event.data["label"].as_str().unwrap_or_default().to_owned();
        if label.starts_with("poison") && self.broken.load(Ordering::SeqCst) {
            return Err(HandlerError::new(format!("cannot digest {label}")));
        }
        self.handled
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .entry(event.stream_id.clone())
            .or_default()
            .push(label);
        Ok(())
    }
}

async fn append(app: &TestApp, stream: &str, label: &str) {
    app.store
        .append_to_stream(
            stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("Labelled", json!({ "label": label }))],
        )
        .await
        .expect("append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_parked_its_stream_waits_and_replay_handles_it_once() {
    let app = TestApp::new().await;
    // A transaction open all along, older than every event, that appends
    // nothing (another database's `CREATE DATABASE` can be one): one-off
    // reads of the log hide everything after it, and a replay that read
    // its parked events that way found none of them and unblocked the
    // stream. Live readers and the replay must not wait for it.
    let mut bystander = sqlx::PgConnection::connect(app.database.url())
        .await
        .expect("connect");
    let mut open = bystander.begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *open)
        .await
        .expect("take a transaction id");
    let broken = Arc::new(AtomicBool::new(true));
    let handled: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let reactor = Fragile {
        broken: broken.clone(),
        handled: handled.clone(),
    };
    let runtime = SubscriptionRuntime::start_with(
        app.store.clone(),
        vec![Subscriber::Reactor(Arc::new(reactor))],
        RuntimeOptions {
            max_attempts: 3,
            ..TestApp::fast_options()
        },
    );
    let labels = |stream: &str| {
        handled
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(stream)
            .cloned()
            .unwrap_or_default()
    };
    append(&app, "a-1", "a1").await;
    append(&app, "a-1", "poison-a2").await;
    append(&app, "b-1", "b1").await;
    append(&app, "a-1", "a3").await;
    append(&app, "b-1", "b2").await;

    wait_until("the other stream went on", || async {
        labels("b-1").contains(&"b2".to_owned())
    })
    .await;
    wait_until("a2 and a3 are parked", || async {
        parked_events(&app.store, "fragile", LogCursor::START, 1000)
            .await
            .map(|parked| parked.len() == 2)
            .unwrap_or(false)
    })
    .await;
    assert_eq!(labels("a-1"), ["a1"], "a3 waits behind the poison event");
    assert_eq!(labels("b-1"), ["b1", "b2"]);
    let parked = parked_events(&app.store, "fragile", LogCursor::START, 1000)
        .await
        .expect("parked");
    assert_eq!(parked[0].attempts, 3);
    assert_eq!(parked[0].blocked_by, None);
    assert!(parked[0].last_error.contains("cannot digest poison-a2"));
    assert_eq!(
        parked[1].blocked_by,
        Some(parked[0].position),
        "a3 waits behind a2"
    );

    append(&app, "a-1", "a4").await;
    wait_until("a4 is parked behind a2 too", || async {
        parked_events(&app.store, "fragile", LogCursor::START, 1000)
            .await
            .map(|parked| parked.len() == 3)
            .unwrap_or(false)
    })
    .await;

    broken.store(false, Ordering::SeqCst);
    request_replay_parked(&app.store, "fragile")
        .await
        .expect("replay");
    wait_until("the parked events are handled", || async {
        parked_events(&app.store, "fragile", LogCursor::START, 1000)
            .await
            .map(|parked| parked.is_empty())
            .unwrap_or(false)
    })
    .await;
    append(&app, "a-1", "a5").await;
    wait_until("the stream flows again", || async {
        labels("a-1").contains(&"a5".to_owned())
    })
    .await;
    assert_eq!(labels("a-1"), ["a1", "poison-a2", "a3", "a4", "a5"]);
    assert_eq!(labels("b-1"), ["b1", "b2"], "each event handled once");
    open.rollback().await.expect("end the bystander");
    runtime.shutdown().await;
}

/// A reactor whose database is "down" for its first `outage_tries` tries.
struct DuringAnOutage {
    tries: Arc<AtomicU32>,
    outage_tries: u32,
    handled: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Reactor for DuringAnOutage {
    fn name(&self) -> &'static str {
        "during-an-outage"
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if self.tries.fetch_add(1, Ordering::SeqCst) < self.outage_tries {
            return Err(HandlerError::with_class(
                FailureClass::Unavailable,
                "connection refused",
            ));
        }
        let label = event.data["label"].as_str().unwrap_or_default().to_owned();
        self.handled
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(label);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_retry_budget_is_waited_out_and_parks_nothing() {
    let app = TestApp::new().await;
    let tries = Arc::new(AtomicU32::new(0));
    let handled: Arc<Mutex<Vec<String>>> = Arc::default();
    let reactor = DuringAnOutage {
        tries: tries.clone(),
        outage_tries: 8,
        handled: handled.clone(),
    };
    let runtime = SubscriptionRuntime::start_with(
        app.store.clone(),
        vec![Subscriber::Reactor(Arc::new(reactor))],
        RuntimeOptions {
            max_attempts: 3,
            outage_retry_max: std::time::Duration::from_millis(20),
            ..TestApp::fast_options()
        },
    );
    append(&app, "a-1", "during").await;
    append(&app, "a-1", "after").await;
    wait_until(
        "both events are handled once the database is back",
        || async {
            handled
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .len()
                == 2
        },
    )
    .await;
    assert!(
        tries.load(Ordering::SeqCst) > 8,
        "eight failed tries, more than max_attempts, were waited out"
    );
    assert!(
        parked_events(&app.store, "during-an-outage", LogCursor::START, 1000)
            .await
            .expect("parked")
            .is_empty(),
        "an outage is not poison"
    );
    assert_eq!(
        *handled.lock().unwrap_or_else(|poison| poison.into_inner()),
        ["during", "after"]
    );
    runtime.shutdown().await;
}
