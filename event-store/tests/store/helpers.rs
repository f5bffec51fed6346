//! Set-up shared by the store tests: a migrated database of one's own, and
//! event builders.

use std::future::Future;
use std::time::Duration;

use event_store::{CorrelationId, EventMetadata, EventStore, NewEvent, StoreOptions, MIGRATOR};
use serde_json::json;
use test_support::TestDatabase;

/// A store on a fresh database. Keep the `TestDatabase` alive with it.
pub async fn new_store() -> (TestDatabase, EventStore) {
    new_store_with(StoreOptions::default()).await
}

pub async fn new_store_with(options: StoreOptions) -> (TestDatabase, EventStore) {
    let database = TestDatabase::new(&MIGRATOR)
        .await
        .expect("test database should be created");
    let store = EventStore::connect(database.url(), &options)
        .await
        .expect("store should connect");
    (database, store)
}

/// An event with a fresh id whose data says which one it is.
pub fn event(label: &str) -> NewEvent {
    NewEvent::new("Something", json!({ "label": label }))
}

pub fn correlated_event(label: &str, correlation_id: impl Into<CorrelationId>) -> NewEvent {
    event(label).with_metadata(EventMetadata {
        correlation_id: Some(correlation_id.into()),
        causation_id: None,
        actor: Some("test".into()),
        traceparent: None,
    })
}

pub fn label(event: &event_store::RecordedEvent) -> String {
    event.data["label"].as_str().unwrap_or_default().to_string()
}

/// [`test_support::wait_until`], in the argument order these tests use.
pub async fn wait_until<Fut>(what: &str, timeout: Duration, condition: impl FnMut() -> Fut)
where
    Fut: Future<Output = bool>,
{
    test_support::wait_until(timeout, what, condition).await;
}

/// Waits until every committed event is visible to log readers. Tests share
/// one cluster, and another test's open transaction holds back the
/// visibility horizon of all of them (see the store's `log.rs`).
pub async fn all_visible(store: &EventStore) {
    wait_until(
        "every committed event is visible",
        Duration::from_secs(20),
        || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT NOT EXISTS (SELECT FROM events \
             WHERE transaction_id >= (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
                                             + transaction_id_offset FROM log_epoch))",
            )
            .fetch_one(store.pool())
            .await
            .unwrap_or(false)
        },
    )
    .await;
}
