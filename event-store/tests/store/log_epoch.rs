//! The log epoch offset, on a database made to look restored from another
//! cluster: events whose transaction ids are far above this cluster's, as
//! `pg_dump` and a restore leave them (the real thing is `restore.rs`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use event_store::{
    EventStore, ExpectedVersion, LogCursor, RecordedEvent, StoreOptions, StreamAppend,
    SubscribeOptions,
};
use futures::{Stream, StreamExt};
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::helpers::{all_visible, event, label, new_store, new_store_with, wait_until};

const PATIENCE: Duration = Duration::from_secs(20);

/// A transaction id this cluster will not reach during the test: what the
/// old cluster's ids look like to the new one after a restore.
async fn far_ahead(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint \
                + (SELECT transaction_id_offset FROM log_epoch) + 1000000",
    )
    .fetch_one(pool)
    .await
    .expect("xmax")
}

/// Stores events of one old transaction as a restore does: plain rows
/// with the old cluster's transaction id (the log refuses updates and
/// deletes, not inserts). Returns their cursors in log order.
async fn insert_restored(
    pool: &PgPool,
    transaction_id: i64,
    stream_id: &str,
    first_version: i64,
    labels: &[&str],
) -> Vec<LogCursor> {
    let mut cursors = Vec::new();
    for (version, label) in (first_version..).zip(labels) {
        let (transaction_id, position) = sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO events (transaction_id, stream_id, stream_version, event_id, \
                                 event_type, schema_version, data, metadata, recorded_at) \
             VALUES ($1, $2, $3, $4, 'Something', 1, $5, '{}', now()) \
             RETURNING transaction_id, position",
        )
        .bind(transaction_id)
        .bind(stream_id)
        .bind(version)
        .bind(Uuid::new_v4())
        .bind(json!({ "label": label }))
        .fetch_one(pool)
        .await
        .expect("insert a restored event");
        cursors.push(LogCursor {
            transaction_id,
            position,
        });
    }
    cursors
}

/// The restored log every test starts from: `a`, `b` on `s-1` in one old
/// transaction, `c` on `s-2` in a later one. Returns the largest stored
/// transaction id and the cursor after `b`.
async fn restored_log(pool: &PgPool) -> (i64, LogCursor) {
    let ahead = far_ahead(pool).await;
    let first = insert_restored(pool, ahead, "s-1", 1, &["a", "b"]).await;
    insert_restored(pool, ahead + 7, "s-2", 1, &["c"]).await;
    (ahead + 7, first[1])
}

async fn log_labels(store: &EventStore) -> Vec<String> {
    all_visible(store).await;
    read_all(store).await.iter().map(label).collect()
}

async fn read_all(store: &EventStore) -> Vec<RecordedEvent> {
    store
        .read_log(LogCursor::START, 10_000)
        .await
        .expect("read the log")
}

async fn offset(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT transaction_id_offset FROM log_epoch")
        .fetch_one(pool)
        .await
        .expect("offset")
}

async fn next_labels(
    subscription: &mut (impl Stream<Item = RecordedEvent> + Unpin),
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

#[tokio::test]
async fn a_restored_log_is_invisible_until_the_offset_moves_then_whole_and_in_order() {
    let (_db, store) = new_store().await;
    let (max_stored, _) = restored_log(store.pool()).await;
    // The bug this guards against: ids above the horizon are never shown.
    assert!(read_all(&store).await.is_empty());

    let shift = store
        .ensure_log_order()
        .await
        .expect("ensure")
        .expect("stored ids are ahead, so the offset moves");
    assert_eq!(shift.old_offset, 0);
    assert!(shift.new_offset > shift.old_offset);
    assert_eq!(shift.max_stored_transaction_id, max_stored);
    assert_eq!(offset(store.pool()).await, shift.new_offset);
    assert_eq!(
        store.ensure_log_order().await.expect("ensure again"),
        None,
        "a healed log is left alone"
    );
    assert_eq!(log_labels(&store).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn events_appended_after_the_shift_sort_after_every_restored_event() {
    let (_db, store) = new_store().await;
    let (max_stored, _) = restored_log(store.pool()).await;
    store.ensure_log_order().await.expect("ensure");

    // All three append paths: a new stream (one plain INSERT), an existing
    // stream (append_events) and several streams at once.
    let appends = [
        store
            .append_to_stream("new-1", ExpectedVersion::NoStream, vec![event("d")])
            .await,
        store
            .append_to_stream("s-1", ExpectedVersion::Exact(2), vec![event("e")])
            .await,
        store
            .append_to_streams(&[
                StreamAppend::new("s-2", ExpectedVersion::Exact(1), vec![event("f")]),
                StreamAppend::new("new-2", ExpectedVersion::NoStream, vec![event("g")]),
            ])
            .await,
    ];
    for append in appends {
        let append = append.expect("append");
        assert!(append
            .events
            .iter()
            .all(|event| event.transaction_id > max_stored));
    }
    assert_eq!(
        log_labels(&store).await,
        ["a", "b", "c", "d", "e", "f", "g"]
    );
    let s1: Vec<i64> = read_all(&store)
        .await
        .iter()
        .filter(|event| event.stream_id == "s-1")
        .map(|event| event.stream_version)
        .collect();
    assert_eq!(s1, [1, 2, 3], "a stream stays in version order across it");
}

#[tokio::test]
async fn a_checkpoint_taken_before_the_shift_resumes_with_exactly_the_events_after_it() {
    let (_db, store) = new_store().await;
    let (_, after_b) = restored_log(store.pool()).await;
    // As a restore leaves it: the checkpoint of a subscription that had
    // handled a and b in the old cluster.
    store
        .save_checkpoint("projection", after_b)
        .await
        .expect("checkpoint");
    store.ensure_log_order().await.expect("ensure");
    store
        .append_to_stream("s-3", ExpectedVersion::NoStream, vec![event("new")])
        .await
        .expect("append");

    let checkpoint = store
        .load_checkpoint("projection")
        .await
        .expect("load")
        .expect("saved");
    assert_eq!(checkpoint, after_b, "checkpoints are never rewritten");
    let mut subscription = Box::pin(store.subscribe(checkpoint, SubscribeOptions::default()));
    assert_eq!(next_labels(&mut subscription, 2).await, ["c", "new"]);
    all_visible(&store).await;
    let rest = store.read_log(checkpoint, 100).await.expect("read");
    assert_eq!(rest.iter().map(label).collect::<Vec<_>>(), ["c", "new"]);
}

#[tokio::test]
async fn connecting_a_store_to_a_restored_database_heals_its_log_order() {
    let (db, store) = new_store().await;
    restored_log(store.pool()).await;
    // A process starting on the restored database.
    let started = EventStore::connect(db.url(), &StoreOptions::default())
        .await
        .expect("connect");
    assert!(offset(started.pool()).await > 0);
    assert_eq!(started.ensure_log_order().await.expect("ensure"), None);
    assert_eq!(log_labels(&started).await, ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_eight_processes_healing_a_restored_database_at_once_exactly_one_moves_the_offset() {
    let (db, store) = new_store().await;
    restored_log(store.pool()).await;
    let processes = futures::future::join_all((0..8).map(|_| async {
        // Each its own pool, as separate processes have.
        let pool = PgPool::connect(db.url()).await.expect("connect");
        EventStore::from_pool(pool).ensure_log_order().await
    }))
    .await;
    let shifts: Vec<_> = processes
        .into_iter()
        .filter_map(|outcome| outcome.expect("ensure"))
        .collect();
    assert_eq!(shifts.len(), 1, "{shifts:?}");
    assert_eq!(offset(store.pool()).await, shifts[0].new_offset);
}

#[tokio::test]
async fn the_service_role_may_heal_a_restored_log_but_not_set_the_offset() {
    let (db, store) = new_store().await;
    restored_log(store.pool()).await;
    let mut service = PgConnection::connect(db.url()).await.expect("connect");
    sqlx::query("SET ROLE orderstream_app")
        .execute(&mut service)
        .await
        .expect("become the service");
    let moved: i64 = sqlx::query_scalar("SELECT count(*) FROM ensure_log_order()")
        .fetch_one(&mut service)
        .await
        .expect("the service may heal the log");
    assert_eq!(moved, 1);
    let refused = sqlx::query("UPDATE log_epoch SET transaction_id_offset = 0")
        .execute(&mut service)
        .await
        .expect_err("the service may not write the offset");
    assert!(
        refused.to_string().contains("permission denied"),
        "{refused}"
    );
    assert_eq!(log_labels(&store).await, ["a", "b", "c"]);
}

/// Appends `label` to `stream_id` through `append_events` on `connection`,
/// inside whatever transaction it has open; returns the stored id.
async fn append_on(connection: &mut PgConnection, stream_id: &str, label: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT transaction_id FROM append_events(ARRAY[$1], ARRAY['any'], ARRAY[-1::bigint], \
         ARRAY[1], ARRAY[1], ARRAY[$2::uuid], ARRAY['Something'], ARRAY[1], ARRAY[$3::jsonb], \
         ARRAY['{}'::jsonb], ARRAY[NULL::text], ARRAY[NULL::uuid], false)",
    )
    .bind(stream_id)
    .bind(Uuid::new_v4())
    .bind(json!({ "label": label }))
    .fetch_one(connection)
    .await
    .expect("append")
}

/// Waiters on the log-epoch lock (advisory class 3, key 0).
async fn epoch_lock_waiters(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 3 \
           AND objid = 0 AND database = (SELECT oid FROM pg_database \
                                         WHERE datname = current_database()) \
           AND NOT granted",
    )
    .fetch_one(pool)
    .await
    .expect("pg_locks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shift_waits_for_appends_holding_the_old_offset_and_every_later_append_follows_the_restored_log(
) {
    let (db, store) = new_store().await;
    let (max_stored, _) = restored_log(store.pool()).await;

    // An append in flight: it has read the old offset and not committed.
    let mut in_flight = PgConnection::connect(db.url()).await.expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut in_flight)
        .await
        .expect("begin");
    let old_id = append_on(&mut in_flight, "early", "early").await;
    assert!(old_id < max_stored);
    // A transaction that already has its id when the shift runs and
    // appends only after it.
    let mut older = PgConnection::connect(db.url()).await.expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut older)
        .await
        .expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut older)
        .await
        .expect("take an id");

    let shift = tokio::spawn({
        let store = store.clone();
        async move { store.ensure_log_order().await }
    });
    wait_until("the shift waits for the append", PATIENCE, || async {
        epoch_lock_waiters(store.pool()).await == 1
    })
    .await;
    // An append arriving now queues behind the shift.
    let queued = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .append_to_stream("late", ExpectedVersion::NoStream, vec![event("late")])
                .await
        }
    });
    wait_until(
        "the new append queues behind the shift",
        PATIENCE,
        || async { epoch_lock_waiters(store.pool()).await == 2 },
    )
    .await;
    assert!(!shift.is_finished());

    sqlx::query("COMMIT")
        .execute(&mut in_flight)
        .await
        .expect("commit");
    let shift = shift.await.expect("task").expect("ensure").expect("moved");
    assert_eq!(shift.max_stored_transaction_id, max_stored);
    let queued = queued.await.expect("task").expect("append");
    assert!(queued.events[0].transaction_id > max_stored);
    let older_id = append_on(&mut older, "older", "older").await;
    sqlx::query("COMMIT")
        .execute(&mut older)
        .await
        .expect("commit");
    assert!(older_id > max_stored, "{older_id} > {max_stored}");

    let labels = log_labels(&store).await;
    assert_eq!(labels[..4], ["early", "a", "b", "c"]);
    let tail: HashSet<&str> = labels[4..].iter().map(String::as_str).collect();
    assert_eq!(tail, HashSet::from(["older", "late"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_following_the_log_across_a_shift_gets_every_event_once_in_order() {
    let (_db, store) = new_store_with(StoreOptions {
        max_connections: 24,
        ..StoreOptions::default()
    })
    .await;
    let (max_stored, _) = restored_log(store.pool()).await;
    let mut subscription = Box::pin(store.subscribe(LogCursor::START, SubscribeOptions::default()));

    // Writers on both append paths, before, during and after the shift;
    // each notes which appends started once the shift had returned.
    let shifted_at = std::sync::Arc::new(std::sync::OnceLock::<Instant>::new());
    let writers = (0..6).map(|writer| {
        let store = store.clone();
        let shifted_at = shifted_at.clone();
        tokio::spawn(async move {
            let mut after_shift = Vec::new();
            for n in 0..40 {
                let started = Instant::now();
                let (stream, expected) = if n % 2 == 0 {
                    (format!("w{writer}-{n}"), ExpectedVersion::NoStream)
                } else {
                    (format!("w{writer}"), ExpectedVersion::Any)
                };
                let appended = store
                    .append_to_stream(&stream, expected, vec![event(&format!("{writer}/{n}"))])
                    .await
                    .expect("append");
                if shifted_at.get().is_some_and(|shifted| started > *shifted) {
                    after_shift.push(appended.events[0].transaction_id);
                }
            }
            after_shift
        })
    });
    let writers: Vec<_> = writers.collect();
    wait_until("the writers are under way", PATIENCE, || async {
        read_all(&store).await.len() >= 30
    })
    .await;
    let shift = store.ensure_log_order().await.expect("ensure");
    assert!(shift.is_some());
    let _ = shifted_at.set(Instant::now());
    let mut after_shift = Vec::new();
    for writer in futures::future::join_all(writers).await {
        after_shift.extend(writer.expect("writer"));
    }
    assert!(
        after_shift.iter().all(|id| *id > max_stored),
        "every append started after the shift follows the restored log"
    );

    let expected = 3 + 6 * 40;
    let mut delivered = Vec::new();
    while delivered.len() < expected {
        let event = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("stuck after {} events", delivered.len()))
            .expect("subscriptions never end");
        delivered.push(event);
    }
    let ids: HashSet<Uuid> = delivered.iter().map(|event| event.event_id).collect();
    assert_eq!(ids.len(), expected, "no event twice");
    assert!(delivered.windows(2).all(|w| w[0].cursor() < w[1].cursor()));
    let mut next_version: HashMap<&str, i64> = HashMap::new();
    for event in &delivered {
        let version = next_version.entry(&event.stream_id).or_insert(1);
        assert_eq!(event.stream_version, *version, "{}", event.stream_id);
        *version += 1;
    }
    all_visible(&store).await;
    assert_eq!(read_all(&store).await.len(), expected);
}
