//! The store under concurrent writers: optimistic concurrency, and the
//! gap-free log when transactions commit out of position order.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use event_store::{
    ExpectedVersion, LogCursor, StoreError, StoreOptions, StreamRead, SubscribeOptions,
};
use futures::StreamExt;
use rand::Rng;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{event, new_store, new_store_with, wait_until};

fn wide_pool() -> StoreOptions {
    StoreOptions {
        max_connections: 70,
        ..StoreOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_64_writers_expecting_an_empty_stream_exactly_one_wins() {
    let (_db, store) = new_store_with(wide_pool()).await;
    let attempts = (0..64).map(|writer| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append_to_stream(
                    "race-1",
                    ExpectedVersion::Exact(0),
                    vec![event(&writer.to_string())],
                )
                .await
        })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let mut winners = 0;
    for outcome in outcomes {
        match outcome.expect("task") {
            Ok(_) => winners += 1,
            Err(StoreError::WrongExpectedVersion {
                expected, actual, ..
            }) => {
                assert_eq!(expected, ExpectedVersion::Exact(0));
                assert_eq!(actual, 1);
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(store.stream_version("race-1").await.expect("version"), 1);
}

/// Creating a stream takes a shorter path than other appends (one plain
/// statement, no version read); racing them must still end in typed
/// outcomes and streams in version order in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_creators_racing_other_writers_keep_streams_whole_and_in_order() {
    let (_db, store) = new_store_with(wide_pool()).await;
    const STREAMS: usize = 48;
    const OTHERS: usize = 3;
    let writers = (0..STREAMS)
        .flat_map(|stream| (0..=OTHERS).map(move |writer| (format!("new-{stream}"), writer)));
    let tasks = writers.map(|(stream, writer)| {
        let store = store.clone();
        tokio::spawn(async move {
            // Writer 0 creates the stream; the others append to it as it is.
            let expected = if writer == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Any
            };
            let events = vec![event(&format!("{writer}a")), event(&format!("{writer}b"))];
            (
                writer,
                store.append_to_stream(&stream, expected, events).await,
            )
        })
    });
    let mut created = 0;
    for outcome in futures::future::join_all(tasks).await {
        match outcome.expect("task") {
            (0, Ok(_)) => created += 1,
            (0, Err(StoreError::WrongExpectedVersion { actual, .. })) => assert!(actual > 0),
            (_, Ok(_)) => {}
            (writer, Err(error)) => panic!("writer {writer}: unexpected {error:?}"),
        }
    }
    assert!(created > 0, "some creator ran first");
    let log = store.read_log(LogCursor::START, 10_000).await.expect("log");
    let mut versions: HashMap<String, Vec<i64>> = HashMap::new();
    for recorded in &log {
        versions
            .entry(recorded.stream_id.clone())
            .or_default()
            .push(recorded.stream_version);
    }
    assert_eq!(versions.len(), STREAMS);
    for (stream, seen) in versions {
        let written = seen.len() as i64;
        assert_eq!(
            seen,
            (1..=written).collect::<Vec<_>>(),
            "{stream}: log order"
        );
        assert!(
            written >= 2 * OTHERS as i64,
            "{stream}: every Any writer wrote"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_writers_with_exact_expectations_write_every_version_once() {
    let (_db, store) = new_store_with(wide_pool()).await;
    const WRITERS: usize = 64;
    const EACH: usize = 4;
    let writers = (0..WRITERS).map(|writer| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut conflicts = 0;
            let mut written = 0;
            while written < EACH {
                let version = store.stream_version("contended-1").await.expect("version");
                let label = format!("{writer}/{written}");
                match store
                    .append_to_stream(
                        "contended-1",
                        ExpectedVersion::Exact(version),
                        vec![event(&label)],
                    )
                    .await
                {
                    Ok(result) => {
                        assert_eq!(result.stream_version("contended-1"), Some(version + 1));
                        written += 1;
                    }
                    Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                        assert!(actual > version, "a conflict means someone wrote first");
                        conflicts += 1;
                    }
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            }
            conflicts
        })
    });
    let conflicts: usize = futures::future::join_all(writers)
        .await
        .into_iter()
        .map(|outcome| outcome.expect("task"))
        .sum();
    let events = store
        .read_stream("contended-1", StreamRead::default().limit(10_000))
        .await
        .expect("read");
    let versions: Vec<i64> = events.iter().map(|e| e.stream_version).collect();
    let expected: Vec<i64> = (1..=(WRITERS * EACH) as i64).collect();
    assert_eq!(versions, expected, "every version exactly once");
    let labels: HashSet<String> = events.iter().map(crate::helpers::label).collect();
    assert_eq!(labels.len(), WRITERS * EACH, "every write landed once");
    assert!(
        conflicts > 0,
        "64 writers on one stream should have collided"
    );
}

/// Appends through the store's SQL function inside a transaction of the
/// test's own, so that the test can hold it open (or roll it back) after
/// its position is taken.
async fn append_in_open_transaction(
    pool: &PgPool,
    stream_id: &str,
    label: &str,
    hold_for: Duration,
    commit: bool,
) -> Option<Uuid> {
    let mut tx = pool.begin().await.expect("begin");
    let event_id = Uuid::new_v4();
    sqlx::query(
        "SELECT * FROM append_events(ARRAY[$1], ARRAY['any'], ARRAY[-1::bigint], ARRAY[1], ARRAY[1], \
         ARRAY[$2::uuid], ARRAY['Something'], ARRAY[1], ARRAY[$3::jsonb], ARRAY['{}'::jsonb], \
         ARRAY[NULL::text], ARRAY[NULL::uuid], false)",
    )
    .bind(stream_id)
    .bind(event_id)
    .bind(json!({ "label": label }))
    .execute(&mut *tx)
    .await
    .expect("append");
    sqlx::query("SELECT pg_sleep($1)")
        .bind(hold_for.as_secs_f64())
        .execute(&mut *tx)
        .await
        .expect("sleep");
    if commit {
        tx.commit().await.expect("commit");
        Some(event_id)
    } else {
        tx.rollback().await.expect("rollback");
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_gets_every_event_once_when_commits_land_out_of_order() {
    let (_db, store) = new_store_with(wide_pool()).await;
    const WRITERS: usize = 16;
    const APPENDS_EACH: usize = 150;

    // The subscriber follows the log from the start while writers run.
    let mut subscription = store.subscribe(LogCursor::START, SubscribeOptions::default());
    let delivered = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let collector = {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            while let Some(event) = subscription.next().await {
                delivered.lock().await.push(event);
            }
        })
    };

    let writers = (0..WRITERS).map(|writer| {
        let pool = store.pool().clone();
        tokio::spawn(async move {
            let mut committed = Vec::new();
            for n in 0..APPENDS_EACH {
                let (hold_ms, commit) = {
                    let mut rng = rand::thread_rng();
                    (rng.gen_range(0..4_u64), rng.gen_ratio(9, 10))
                };
                let stream = format!("w{writer}-{}", n % 3);
                let label = format!("{writer}/{n}");
                if let Some(id) = append_in_open_transaction(
                    &pool,
                    &stream,
                    &label,
                    Duration::from_millis(hold_ms),
                    commit,
                )
                .await
                {
                    committed.push(id);
                }
            }
            committed
        })
    });
    let committed: HashSet<Uuid> = futures::future::join_all(writers)
        .await
        .into_iter()
        .flat_map(|outcome| outcome.expect("writer"))
        .collect();
    assert!(committed.len() > WRITERS * APPENDS_EACH * 8 / 10);

    wait_until(
        "the subscriber has caught up",
        Duration::from_secs(60),
        || {
            let delivered = delivered.clone();
            let expected = committed.len();
            async move { delivered.lock().await.len() >= expected }
        },
    )
    .await;
    collector.abort();
    let delivered = delivered.lock().await;

    let ids: Vec<Uuid> = delivered.iter().map(|e| e.event_id).collect();
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event delivered twice");
    assert_eq!(
        unique, committed,
        "exactly the committed events, rolled back ones absent"
    );
    let cursors: Vec<LogCursor> = delivered.iter().map(|e| e.cursor()).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "cursor strictly increases"
    );
    let mut next_version: HashMap<&str, i64> = HashMap::new();
    for event in delivered.iter() {
        let expected = next_version.entry(&event.stream_id).or_insert(1);
        assert_eq!(
            event.stream_version, *expected,
            "stream {} in version order",
            event.stream_id
        );
        *expected += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paging_the_log_by_cursor_never_skips_a_late_commit() {
    let (_db, store) = new_store_with(wide_pool()).await;
    // A transaction takes a position, then holds its commit while a later
    // one commits; a pager that checkpoints in between must still get both.
    let slow = {
        let pool = store.pool().clone();
        tokio::spawn(async move {
            append_in_open_transaction(&pool, "slow-1", "slow", Duration::from_millis(1500), true)
                .await
        })
    };
    wait_until(
        "the slow append has taken its position",
        Duration::from_secs(10),
        || {
            let pool = store.pool().clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT last_value FROM events_position_seq")
                    .fetch_one(&pool)
                    .await
                    .is_ok_and(|last| last >= 1)
                    && sqlx::query_scalar::<_, bool>("SELECT is_called FROM events_position_seq")
                        .fetch_one(&pool)
                        .await
                        .unwrap_or(false)
            }
        },
    )
    .await;
    store
        .append_to_stream("fast-1", ExpectedVersion::Any, vec![event("fast")])
        .await
        .expect("fast append");
    let early_page = store.read_log(LogCursor::START, 100).await.expect("read");
    assert!(
        early_page.is_empty(),
        "the fast event waits behind the open transaction"
    );
    slow.await.expect("slow writer");

    let mut cursor = LogCursor::START;
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out; read {seen:?}"
        );
        for event in store.read_log(cursor, 1).await.expect("read") {
            cursor = event.cursor();
            seen.push(crate::helpers::label(&event));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen, ["slow", "fast"], "log order is commit-safe order");
}

#[tokio::test]
async fn a_rolled_back_append_leaves_no_trace_and_does_not_stall_readers() {
    let (_db, store) = new_store().await;
    let rolled_back =
        append_in_open_transaction(store.pool(), "s-1", "gone", Duration::ZERO, false).await;
    assert!(rolled_back.is_none());
    store
        .append_to_stream("s-1", ExpectedVersion::NoStream, vec![event("kept")])
        .await
        .expect("a rolled-back append leaves the stream empty");
    crate::helpers::all_visible(&store).await;
    let log = store.read_log(LogCursor::START, 10).await.expect("read");
    let labels: Vec<String> = log.iter().map(crate::helpers::label).collect();
    assert_eq!(labels, ["kept"]);
    assert_eq!(log[0].stream_version, 1);
}

/// Writers repeating one append (same event ids, `Any` expectation: a
/// retried command) at once: the events are stored once, and every writer
/// gets a typed answer, never the raw unique violation on `event_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_repeating_the_same_events_at_once_store_them_once_with_typed_answers() {
    let (_db, store) = new_store_with(wide_pool()).await;
    store
        .append_to_stream("repeat-1", ExpectedVersion::NoStream, vec![event("first")])
        .await
        .expect("create the stream");
    for round in 0..20 {
        let repeated = vec![
            event(&format!("round {round}")),
            event("second of the round"),
        ];
        let attempts = (0..16).map(|_| {
            let store = store.clone();
            let events = repeated.clone();
            tokio::spawn(async move {
                store
                    .append_to_stream("repeat-1", ExpectedVersion::Any, events)
                    .await
            })
        });
        for outcome in futures::future::join_all(attempts).await {
            match outcome.expect("task") {
                Ok(_) | Err(StoreError::PartialRepeat) => {}
                Err(other) => panic!("round {round}: an untyped answer {other:?}"),
            }
        }
        assert_eq!(
            store.stream_version("repeat-1").await.expect("version"),
            1 + 2 * (round + 1),
            "round {round}: the two events are stored once"
        );
    }
}
