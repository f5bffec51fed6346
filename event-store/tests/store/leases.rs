//! Checkpoint leases: the fencing that keeps a stale subscription owner
//! from committing anything once another has taken over.

use std::time::Duration;

use event_store::{LogCursor, StoreError};
use sqlx::Connection;

use crate::helpers::{new_store, wait_until};

fn at(position: i64) -> LogCursor {
    LogCursor {
        transaction_id: 10,
        position,
    }
}

fn is_fenced(outcome: Result<(), StoreError>) -> bool {
    matches!(outcome, Err(StoreError::Fenced { .. }))
}

#[tokio::test]
async fn a_stale_lease_can_neither_advance_nor_reset_nor_confirm() {
    let (_db, store) = new_store().await;
    let (first, cursor) = store.take_checkpoint_lease("stock").await.expect("lease");
    assert_eq!(cursor, LogCursor::START, "a new checkpoint starts at 0");
    first.advance(store.pool(), at(5)).await.expect("advance");

    let (second, cursor) = store.take_checkpoint_lease("stock").await.expect("lease");
    assert!(second.epoch() > first.epoch());
    assert_eq!(cursor, at(5), "the new owner resumes where the old one was");

    assert!(is_fenced(first.advance(store.pool(), at(9)).await));
    assert!(is_fenced(first.reset(store.pool(), at(0)).await));
    assert!(is_fenced(first.confirm(store.pool()).await));
    assert_eq!(
        store.load_checkpoint("stock").await.expect("load"),
        Some(at(5))
    );

    second.advance(store.pool(), at(7)).await.expect("advance");
    second
        .advance(store.pool(), at(6))
        .await
        .expect("a cursor behind is accepted and changes nothing");
    assert_eq!(
        store.load_checkpoint("stock").await.expect("load"),
        Some(at(7))
    );
    second.reset(store.pool(), at(2)).await.expect("reset");
    second.confirm(store.pool()).await.expect("confirm");
    assert_eq!(
        store.load_checkpoint("stock").await.expect("load"),
        Some(at(2))
    );
    assert_eq!(
        store.checkpoint_epoch("stock").await.expect("epoch"),
        second.epoch()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_waits_for_the_old_owners_open_transaction_and_then_fences_it() {
    let (db, store) = new_store().await;
    let (old, _) = store.take_checkpoint_lease("orders").await.expect("lease");
    // The old owner is mid-batch: its transaction advanced the checkpoint
    // (holding the row) and has not committed yet.
    let mut connection = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    let mut batch = connection.begin().await.expect("begin");
    old.advance(&mut *batch, at(3)).await.expect("advance");

    let takeover = tokio::spawn({
        let store = store.clone();
        async move { store.take_checkpoint_lease("orders").await }
    });
    // The takeover cannot complete while the batch is open: it waits on
    // the checkpoint row...
    wait_until(
        "the takeover waits on the batch's lock",
        Duration::from_secs(10),
        || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT FROM pg_stat_activity \
                             WHERE datname = current_database() AND wait_event_type = 'Lock')",
            )
            .fetch_one(store.pool())
            .await
            .unwrap_or(false)
        },
    )
    .await;
    assert!(!takeover.is_finished(), "the takeover waits for the batch");
    // ...and sees its effect once it commits: nothing is lost or repeated.
    batch.commit().await.expect("commit");
    let (new, cursor) = takeover.await.expect("join").expect("lease");
    assert_eq!(cursor, at(3));

    // From now on the old owner's next batch fails, whole.
    let mut batch = connection.begin().await.expect("begin");
    assert!(is_fenced(old.advance(&mut *batch, at(4)).await));
    drop(batch);
    assert_eq!(
        store.load_checkpoint("orders").await.expect("load"),
        Some(at(3))
    );
    new.advance(store.pool(), at(4))
        .await
        .expect("the new owner goes on");
}
