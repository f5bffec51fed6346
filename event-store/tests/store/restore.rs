//! A real restore: `pg_dump` of a database with events and checkpoints on
//! the shared test cluster, restored with `psql` into a fresh cluster whose
//! transaction ids start low, then opened by a store as `serve` would.

use std::process::{Command, Stdio};

use event_store::{EventStore, ExpectedVersion, LogCursor, StoreOptions, StreamAppend};
use futures::StreamExt;
use pg_embedded::{client_program, Cluster, ClusterOptions};
use sqlx::PgPool;

use crate::helpers::{all_visible, event, label, new_store};

/// Transaction ids the source cluster is brought to before it appends: far
/// above what a fresh cluster uses for initdb and the restore (well under a
/// few thousand), so the dump holds ids the new cluster has not reached,
/// as any dump of a cluster that has run for a while does.
const SOURCE_IDS_AT_LEAST: i64 = 20_000;

async fn burn_transaction_ids_up_to(pool: &PgPool, target: i64) {
    let mut connection = pool.acquire().await.expect("connection");
    sqlx::query("CREATE TEMP TABLE burn (n int)")
        .execute(&mut *connection)
        .await
        .expect("temp table");
    // Each block with an exception handler is a subtransaction, and each
    // that writes takes an id of its own: thousands in one round trip.
    sqlx::query(&format!(
        "DO $$ BEGIN \
           FOR i IN 1 .. {target} - pg_snapshot_xmax(pg_current_snapshot())::text::bigint LOOP \
             BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN OTHERS THEN NULL; END; \
           END LOOP; \
         END $$"
    ))
    .execute(&mut *connection)
    .await
    .expect("burn transaction ids");
    sqlx::query("DROP TABLE burn")
        .execute(&mut *connection)
        .await
        .expect("drop temp table");
}

/// `pg_dump source | psql target`, stopping at the first error.
fn dump_and_restore(source_url: &str, target_url: &str) {
    let mut dump = Command::new(client_program("pg_dump").expect("pg_dump"))
        .args(["--dbname", source_url])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start pg_dump");
    let dumped = dump.stdout.take().expect("pg_dump's output");
    let restore = Command::new(client_program("psql").expect("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"])
        .args(["--dbname", target_url])
        .stdin(dumped)
        .stdout(Stdio::null())
        .output()
        .expect("run psql");
    assert!(
        dump.wait().expect("pg_dump ends").success(),
        "pg_dump failed"
    );
    assert!(
        restore.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&restore.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restored_into_a_fresh_cluster_keeps_its_log_order_and_flows_on() {
    // The source: events from several transactions and both append paths,
    // and a subscription's checkpoint part-way through.
    let (source_db, source) = new_store().await;
    burn_transaction_ids_up_to(source.pool(), SOURCE_IDS_AT_LEAST).await;
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

    let cluster = tokio::task::spawn_blocking(|| {
        Cluster::start_temporary(&ClusterOptions {
            unsafe_fast: true,
            ..ClusterOptions::default()
        })
    })
    .await
    .expect("task")
    .expect("a fresh cluster");
    let admin = PgPool::connect(&cluster.url("postgres"))
        .await
        .expect("admin");
    // Roles belong to the cluster, not to the dump: the operator creates
    // them first (or restores `pg_dumpall --roles-only`).
    for statement in [
        "CREATE ROLE orderstream_app NOLOGIN",
        "CREATE DATABASE restored",
    ] {
        sqlx::query(statement)
            .execute(&admin)
            .await
            .expect(statement);
    }
    admin.close().await;
    let target_url = cluster.url("restored");
    let source_url = source_db.url().to_owned();
    let restore_to = target_url.clone();
    tokio::task::spawn_blocking(move || dump_and_restore(&source_url, &restore_to))
        .await
        .expect("dump and restore");

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
