//! A real restore: `pg_dump` of a database with events and checkpoints on
//! the shared test cluster, restored with `psql` into a fresh cluster whose
//! transaction ids start low, then opened by a store as `serve` would.

use event_store::{EventStore, ExpectedVersion, LogCursor, StoreOptions, StreamAppend};
use futures::StreamExt;
use sqlx::PgPool;
use test_support::{advance_transaction_ids, restore_into_fresh_cluster};

use crate::helpers::{all_visible, event, label, new_store};

/// Transaction ids the source cluster is brought to before it appends: far
/// above what a fresh cluster uses for initdb and the restore (well under a
/// few thousand), so the dump holds ids the new cluster has not reached,
/// as any dump of a cluster that has run for a while does.
const SOURCE_IDS_AT_LEAST: i64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restored_into_a_fresh_cluster_keeps_its_log_order_and_flows_on() {
    // The source: events from several transactions and both append paths,
    // and a subscription's checkpoint part-way through.
    let (source_db, source) = new_store().await;
    advance_transaction_ids(source.pool(), SOURCE_IDS_AT_LEAST)
        .await
        .expect("advance transaction ids");
    source
        .append_to_stream("order-1", ExpectedVersion::NoStream, vec![event("o1")])
        .await
        .expect("append");
    source
        .append_to_streams(&[
            StreamAppend::new("stock-A", ExpectedVersion::NoStream, vec![event("sA")]),
            StreamAppend::new("stock-B", ExpectedVersion::NoStream, vec![event("sB")]),
        ])
        .await
        .expect("append");
    source
        .append_to_stream(
            "order-1",
            ExpectedVersion::Exact(1),
            vec![event("o2"), event("o3")],
        )
        .await
        .expect("append");
    source
        .append_to_stream("order-2", ExpectedVersion::NoStream, vec![event("p1")])
        .await
        .expect("append");
    all_visible(&source).await;
    let before = source.read_log(LogCursor::START, 100).await.expect("read");
    assert_eq!(before.len(), 6);
    let checkpoint = before[2].cursor();
    source
        .save_checkpoint("projection", checkpoint)
        .await
        .expect("checkpoint");

    // Roles belong to the cluster, not to the dump: the operator creates
    // them first (or restores `pg_dumpall --roles-only`).
    let (cluster, target_url) = restore_into_fresh_cluster(source_db.url(), &["orderstream_app"])
        .await
        .expect("restore into a fresh cluster");

    // The scenario is real: the stored ids are beyond the new cluster's.
    let plain = PgPool::connect(&target_url).await.expect("connect");
    let ahead: bool = sqlx::query_scalar(
        "SELECT max(transaction_id) >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint \
                + (SELECT transaction_id_offset FROM log_epoch) FROM events",
    )
    .fetch_one(&plain)
    .await
    .expect("compare ids");
    assert!(
        ahead,
        "the restored ids should be ahead of the fresh cluster's"
    );
    plain.close().await;

    // Starting the service on it: connecting heals the log order.
    let restored = EventStore::connect(&target_url, &StoreOptions::default())
        .await
        .expect("connect to the restored database");
    all_visible(&restored).await;
    let after = restored
        .read_log(LogCursor::START, 100)
        .await
        .expect("read");
    let ids = |events: &[event_store::RecordedEvent]| {
        events.iter().map(|e| e.event_id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&after),
        ids(&before),
        "every old event, in the same order"
    );

    let resumed_from = restored
        .load_checkpoint("projection")
        .await
        .expect("load")
        .expect("restored checkpoint");
    assert_eq!(resumed_from, checkpoint);
    let mut subscription = Box::pin(restored.subscribe(resumed_from, Default::default()));
    let appended = restored
        .append_to_stream("order-3", ExpectedVersion::NoStream, vec![event("new")])
        .await
        .expect("append to the restored log");
    let max_old = before.iter().map(|e| e.cursor()).max().expect("events");
    assert!(appended.last_cursor().expect("one event") > max_old);

    let mut delivered = Vec::new();
    while delivered.len() < 4 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(20), subscription.next())
            .await
            .unwrap_or_else(|_| panic!("no event after {delivered:?}"))
            .expect("subscriptions never end");
        delivered.push(label(&event));
    }
    assert_eq!(delivered, ["o2", "o3", "p1", "new"]);
    all_visible(&restored).await;
    let everything = restored
        .read_log(LogCursor::START, 100)
        .await
        .expect("read");
    assert_eq!(everything.len(), 7, "nothing but the new event was added");
    assert_eq!(label(&everything[6]), "new");

    drop(subscription);
    restored.pool().close().await;
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .expect("stop the cluster");
}
