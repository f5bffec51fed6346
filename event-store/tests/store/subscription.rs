//! Live subscriptions: catch up, follow, wake across processes, and survive
//! a dropped connection.

use std::time::Duration;

use event_store::{
    EventStore, ExpectedVersion, LogCursor, LogFilter, StoreOptions, SubscribeOptions,
};
use futures::{Stream, StreamExt};
use sqlx::Connection;

use crate::helpers::{event, label, new_store};

const PATIENCE: Duration = Duration::from_secs(20);

/// The next `count` labels from a subscription, or a panic after PATIENCE.
async fn next_labels(
    subscription: &mut (impl Stream<Item = event_store::RecordedEvent> + Unpin),
    count: usize,
) -> Vec<String> {
    let mut labels = Vec::new();
    while labels.len() < count {
        let event = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("no event within {PATIENCE:?}; got {labels:?}"))
            .expect("subscriptions never end");
        labels.push(label(&event));
    }
    labels
}

/// Options with the safety-net poll pushed out of the way, so a passing
/// test proves the wake-up path, not the poll.
fn no_poll() -> SubscribeOptions {
    SubscribeOptions {
        poll_interval: Duration::from_secs(3600),
        ..SubscribeOptions::default()
    }
}

#[tokio::test]
async fn a_subscription_catches_up_then_follows_live_appends() {
    let (_db, store) = new_store().await;
    for n in 0..3 {
        store
            .append_to_stream("s-1", ExpectedVersion::Any, vec![event(&format!("old{n}"))])
            .await
            .expect("append");
    }
    let mut subscription = Box::pin(store.subscribe(LogCursor::START, no_poll()));
    assert_eq!(
        next_labels(&mut subscription, 3).await,
        ["old0", "old1", "old2"]
    );
    store
        .append_to_stream("s-2", ExpectedVersion::Any, vec![event("new")])
        .await
        .expect("append");
    assert_eq!(next_labels(&mut subscription, 1).await, ["new"]);
}

#[tokio::test]
async fn a_subscription_from_a_checkpoint_starts_after_it() {
    let (_db, store) = new_store().await;
    let result = store
        .append_to_stream(
            "s-1",
            ExpectedVersion::Any,
            vec![event("a"), event("b"), event("c")],
        )
        .await
        .expect("append");
    let after_a = LogCursor {
        transaction_id: result.events[0].transaction_id,
        position: result.events[0].position,
    };
    let mut subscription = Box::pin(store.subscribe(after_a, no_poll()));
    assert_eq!(next_labels(&mut subscription, 2).await, ["b", "c"]);
}

#[tokio::test]
async fn a_category_subscription_sees_only_its_category() {
    let (_db, store) = new_store().await;
    let options = SubscribeOptions {
        filter: LogFilter::Category("order".into()),
        ..no_poll()
    };
    let mut subscription = Box::pin(store.subscribe(LogCursor::START, options));
    for stream in ["inventory-a", "order-1", "payment-1", "order-2"] {
        store
            .append_to_stream(stream, ExpectedVersion::Any, vec![event(stream)])
            .await
            .expect("append");
    }
    assert_eq!(
        next_labels(&mut subscription, 2).await,
        ["order-1", "order-2"]
    );
}

/// A long transaction that writes but appends nothing (a projection batch,
/// a rebuild) used to hold every live reader back until it ended: readers
/// wait only for open *appends* now, and are woken, not polling.
#[tokio::test]
async fn a_long_open_transaction_that_appends_nothing_does_not_hold_a_subscriber_back() {
    let (db, store) = new_store().await;
    let mut subscription = Box::pin(store.subscribe(LogCursor::START, no_poll()));
    store
        .append_to_stream("s-1", ExpectedVersion::Any, vec![event("before")])
        .await
        .expect("append");
    assert_eq!(next_labels(&mut subscription, 1).await, ["before"]);

    let mut projection = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    let mut batch = sqlx::Connection::begin(&mut projection)
        .await
        .expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *batch)
        .await
        .expect("a transaction with an id");
    for n in 0..3 {
        store
            .append_to_stream(
                "s-2",
                ExpectedVersion::Any,
                vec![event(&format!("during{n}"))],
            )
            .await
            .expect("append");
    }
    assert_eq!(
        next_labels(&mut subscription, 3).await,
        ["during0", "during1", "during2"],
        "delivered while the other transaction is still open"
    );
    batch.rollback().await.expect("rollback");
}

#[tokio::test]
async fn appends_from_another_process_wake_a_subscriber() {
    let (db, store) = new_store().await;
    // A second store on the same database shares no memory with the first:
    // it can only reach the subscriber through PostgreSQL.
    let other_process = EventStore::connect(db.url(), &StoreOptions::default())
        .await
        .expect("connect");
    let mut subscription = Box::pin(store.subscribe(LogCursor::START, no_poll()));
    other_process
        .append_to_stream("s-1", ExpectedVersion::Any, vec![event("first")])
        .await
        .expect("append");
    assert_eq!(next_labels(&mut subscription, 1).await, ["first"]);
    other_process
        .append_to_stream("s-1", ExpectedVersion::Any, vec![event("second")])
        .await
        .expect("append");
    assert_eq!(next_labels(&mut subscription, 1).await, ["second"]);
}

#[tokio::test]
async fn a_subscription_survives_its_connections_being_killed() {
    let (db, store) = new_store().await;
    let mut subscription = Box::pin(store.subscribe(
        LogCursor::START,
        SubscribeOptions {
            batch_size: 2,
            poll_interval: Duration::from_millis(200),
            ..SubscribeOptions::default()
        },
    ));
    for n in 0..5 {
        store
            .append_to_stream(
                "s-1",
                ExpectedVersion::Any,
                vec![event(&format!("before{n}"))],
            )
            .await
            .expect("append");
    }
    assert_eq!(
        next_labels(&mut subscription, 3).await,
        ["before0", "before1", "before2"]
    );

    let admin = sqlx::PgPool::connect(db.url()).await.expect("admin pool");
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&admin)
    .await
    .expect("terminate");
    assert!(!killed.is_empty(), "the store had connections to kill");

    for n in 0..3 {
        // The pool notices dead connections on use; an append may meet one.
        let label = format!("after{n}");
        let append = || {
            store.append_to_stream(
                "s-2",
                ExpectedVersion::Any,
                vec![event(&label).with_id(uuid::Uuid::new_v5(
                    &uuid::Uuid::NAMESPACE_OID,
                    label.as_bytes(),
                ))],
            )
        };
        if append().await.is_err() {
            append().await.expect("append after reconnect");
        }
    }
    assert_eq!(
        next_labels(&mut subscription, 5).await,
        ["before3", "before4", "after0", "after1", "after2"],
        "resumes after the last delivered event: nothing lost, nothing repeated"
    );
}
