//! Reads: a stream forward, backward and as of a version, position or
//! instant; a category; a correlation; checkpoints and snapshots.

use event_store::{AsOf, ExpectedVersion, LogCursor, Snapshot, StreamRead};
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

use crate::helpers::{all_visible, correlated_event, event, label, new_store};

async fn seeded_stream(store: &event_store::EventStore, stream: &str, count: usize) {
    let events = (1..=count)
        .map(|n| event(&format!("{stream}#{n}")))
        .collect();
    store
        .append_to_stream(stream, ExpectedVersion::Any, events)
        .await
        .expect("seed");
}

#[tokio::test]
async fn a_stream_reads_forward_and_backward_from_a_version_with_a_limit() {
    let (_db, store) = new_store().await;
    seeded_stream(&store, "s-1", 5).await;
    let forward = store
        .read_stream("s-1", StreamRead::forward_from(2).limit(2))
        .await
        .expect("read");
    assert_eq!(
        forward.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [2, 3]
    );
    let backward = store
        .read_stream("s-1", StreamRead::backward().limit(2))
        .await
        .expect("read");
    assert_eq!(
        backward
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        [5, 4]
    );
    let backward_from = store
        .read_stream(
            "s-1",
            StreamRead {
                from_version: Some(2),
                ..StreamRead::backward()
            },
        )
        .await
        .expect("read");
    assert_eq!(
        backward_from
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>(),
        [2, 1]
    );
    let missing = store
        .read_stream("s-9", StreamRead::default())
        .await
        .expect("read");
    assert!(missing.is_empty());
}

#[tokio::test]
async fn a_stream_reads_as_of_a_version_a_position_and_an_instant() {
    let (_db, store) = new_store().await;
    let first = store
        .append_to_stream("s-1", ExpectedVersion::Any, vec![event("one")])
        .await
        .expect("append");
    store
        .append_to_stream("other-1", ExpectedVersion::Any, vec![event("noise")])
        .await
        .expect("append");
    let between = chrono::Utc::now();
    wait_for_clock_to_pass(between).await;
    store
        .append_to_stream(
            "s-1",
            ExpectedVersion::Any,
            vec![event("two"), event("three")],
        )
        .await
        .expect("append");

    let labels =
        |events: Vec<event_store::RecordedEvent>| events.iter().map(label).collect::<Vec<_>>();
    let as_of_version = store
        .read_stream("s-1", StreamRead::default().as_of(AsOf::Version(2)))
        .await
        .expect("read");
    assert_eq!(labels(as_of_version), ["one", "two"]);
    let first_position = first.events[0].position;
    let as_of_position = store
        .read_stream(
            "s-1",
            StreamRead::default().as_of(AsOf::Position(first_position)),
        )
        .await
        .expect("read");
    assert_eq!(labels(as_of_position), ["one"]);
    let as_of_instant = store
        .read_stream("s-1", StreamRead::default().as_of(AsOf::Instant(between)))
        .await
        .expect("read");
    assert_eq!(labels(as_of_instant), ["one"]);
    let before_everything = store
        .read_stream(
            "s-1",
            StreamRead::default().as_of(AsOf::Instant(
                first.events[0].recorded_at - chrono::Duration::seconds(1),
            )),
        )
        .await
        .expect("read");
    assert!(before_everything.is_empty());
    assert_eq!(
        store
            .stream_version_as_of("s-1", AsOf::Instant(between))
            .await
            .expect("version"),
        1
    );
}

/// Makes sure the database clock has moved past `instant`, so events
/// appended next are recorded strictly after it.
async fn wait_for_clock_to_pass(instant: chrono::DateTime<chrono::Utc>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while chrono::Utc::now() <= instant + chrono::Duration::milliseconds(2) {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_category_read_returns_only_that_categorys_streams_in_log_order() {
    let (_db, store) = new_store().await;
    for stream in ["order-1", "inventory-a", "order-2", "orders-x", "order-1"] {
        store
            .append_to_stream(stream, ExpectedVersion::Any, vec![event(stream)])
            .await
            .expect("append");
    }
    all_visible(&store).await;
    let orders = store
        .read_category("order", LogCursor::START, 100)
        .await
        .expect("read");
    assert_eq!(
        orders.iter().map(label).collect::<Vec<_>>(),
        ["order-1", "order-2", "order-1"]
    );
    let after_first = store
        .read_category("order", orders[0].cursor(), 100)
        .await
        .expect("read");
    assert_eq!(after_first.len(), 2);
}

#[tokio::test]
async fn the_log_pages_in_order_from_any_cursor_and_position() {
    let (_db, store) = new_store().await;
    for n in 0..7 {
        seeded_stream(&store, &format!("s-{n}"), 1).await;
    }
    all_visible(&store).await;
    let mut cursor = LogCursor::START;
    let mut pages = Vec::new();
    loop {
        let page = store.read_log(cursor, 3).await.expect("read");
        let Some(last) = page.last() else { break };
        cursor = last.cursor();
        pages.push(page.len());
    }
    assert_eq!(pages, [3, 3, 1]);
    assert_eq!(store.head().await.expect("head"), cursor);
    let third = store.read_log(LogCursor::START, 3).await.expect("read")[2].clone();
    let from_position = store.cursor_at(third.position).await.expect("cursor");
    assert_eq!(from_position, third.cursor());
    assert_eq!(store.cursor_at(0).await.expect("cursor"), LogCursor::START);
}

#[tokio::test]
async fn every_event_of_a_correlation_is_one_query_away() {
    let (_db, store) = new_store().await;
    let flow = Uuid::new_v4();
    store
        .append_to_stream(
            "order-1",
            ExpectedVersion::Any,
            vec![correlated_event("placed", flow)],
        )
        .await
        .expect("append");
    store
        .append_to_stream(
            "order-2",
            ExpectedVersion::Any,
            vec![correlated_event("other", Uuid::new_v4())],
        )
        .await
        .expect("append");
    store
        .append_to_stream(
            "reservation-1",
            ExpectedVersion::Any,
            vec![correlated_event("reserved", flow)],
        )
        .await
        .expect("append");
    all_visible(&store).await;
    let events = store
        .read_correlation(&flow.into(), LogCursor::START, 100)
        .await
        .expect("read");
    assert_eq!(
        events.iter().map(label).collect::<Vec<_>>(),
        ["placed", "reserved"]
    );
    assert_eq!(events[0].correlation_id, Some(flow.into()));
    assert_eq!(events[0].metadata["correlation_id"], json!(flow));
}

#[tokio::test]
async fn checkpoints_only_move_forward_unless_reset() {
    let (_db, store) = new_store().await;
    let at = |position| LogCursor {
        transaction_id: 10,
        position,
    };
    assert_eq!(
        store.load_checkpoint("projector").await.expect("load"),
        None
    );
    assert!(store
        .save_checkpoint("projector", at(5))
        .await
        .expect("save"));
    assert!(!store
        .save_checkpoint("projector", at(3))
        .await
        .expect("save"));
    assert_eq!(
        store.load_checkpoint("projector").await.expect("load"),
        Some(at(5))
    );
    store
        .reset_checkpoint("projector", at(1))
        .await
        .expect("reset");
    assert_eq!(
        store.load_checkpoint("projector").await.expect("load"),
        Some(at(1))
    );
}

#[tokio::test]
async fn the_newest_snapshot_of_a_stream_is_kept() {
    let (_db, store) = new_store().await;
    let snapshot = |version| Snapshot {
        stream_id: "inventory-a".into(),
        stream_version: version,
        schema_version: 1,
        state: json!({ "at": version }),
    };
    assert_eq!(
        store.load_snapshot("inventory-a").await.expect("load"),
        None
    );
    store.save_snapshot(&snapshot(10)).await.expect("save");
    store.save_snapshot(&snapshot(4)).await.expect("save older");
    assert_eq!(
        store.load_snapshot("inventory-a").await.expect("load"),
        Some(snapshot(10))
    );
    store
        .save_snapshot(&snapshot(20))
        .await
        .expect("save newer");
    assert_eq!(
        store.load_snapshot("inventory-a").await.expect("load"),
        Some(snapshot(20))
    );
}

/// A transaction that took its id before another one's append, and its
/// position after it: its event sorts first in the log but has the greater
/// position. A reader resuming from the later append's position must still
/// read it, whether it commits before the reader resolves the position or
/// after.
#[tokio::test]
async fn resuming_from_a_position_reads_a_greater_position_that_sorts_before_it() {
    let (database, store) = new_store().await;
    store
        .append_to_stream("s-0", ExpectedVersion::Any, vec![event("s-0#1")])
        .await
        .expect("seed");
    let mut older = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut older)
        .await
        .expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut older)
        .await
        .expect("take a transaction id");
    let written = store
        .append_to_stream("s-1", ExpectedVersion::Any, vec![event("s-1#1")])
        .await
        .expect("append");
    let held = written.last_cursor().expect("one event").position;
    // What a client holding `held` from the write response resolves while
    // the older transaction still runs.
    let resolved_early = store.cursor_at(held).await.expect("cursor");
    sqlx::query(
        "INSERT INTO events (transaction_id, stream_id, stream_version, event_id, event_type, \
                             schema_version, data, metadata, recorded_at) \
         SELECT log_epoch_offset() + pg_current_xact_id()::text::bigint, 's-2', 1, $1, \
                'Late', 1, '{}', '{}', now()",
    )
    .bind(Uuid::new_v4())
    .execute(&mut older)
    .await
    .expect("insert");
    sqlx::query("COMMIT")
        .execute(&mut older)
        .await
        .expect("commit");
    all_visible(&store).await;
    let streams = |events: Vec<event_store::RecordedEvent>| -> Vec<String> {
        events.into_iter().map(|event| event.stream_id).collect()
    };
    let log = store.read_log(LogCursor::START, 100).await.expect("read");
    let late = log[1].clone();
    assert_eq!(
        streams(log),
        ["s-0", "s-2", "s-1"],
        "the late event sorts first"
    );
    assert!(late.position > held, "and has the greater position");
    let after_the_held_event = written.last_cursor().expect("one event");
    assert!(
        store
            .read_log(after_the_held_event, 100)
            .await
            .expect("read")
            .is_empty(),
        "the held event's own cursor is past the late event"
    );
    for (when, cursor) in [
        ("before it commits", resolved_early),
        (
            "after it commits",
            store.cursor_at(held).await.expect("cursor"),
        ),
    ] {
        let read = store.read_log(cursor, 100).await.expect("read");
        assert_eq!(streams(read), ["s-2", "s-1"], "resolved {when}");
    }
}
