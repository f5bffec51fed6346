//! Decision batches: several commands decided, then appended together in a
//! transaction the caller owns, or not at all.

use aggregates::inventory::{Inventory, InventoryCommand, InventoryError};
use aggregates::stream_id;
use commands::{BatchRefused, CommandContext, CommandExecutor, ExecuteError, ExecutorOptions};
use event_store::{ExpectedVersion, NewEvent, StoreError};
use uuid::Uuid;

use crate::helpers::{new_app, receive, request, sku, stock_level};

fn reserve(quantity: u64) -> InventoryCommand {
    InventoryCommand::Reserve {
        sku: sku("SKU-1"),
        order_id: Uuid::new_v4(),
        quantity,
    }
}

#[tokio::test]
async fn commands_of_one_batch_build_on_each_other_and_land_in_one_transaction() {
    let app = new_app(ExecutorOptions::default()).await;
    receive(&app, "SKU-1", "main", 5).await;
    receive(&app, "SKU-2", "main", 5).await;
    let stream = stream_id::<Inventory>("SKU-1");

    let mut batch = app.executor.decision_batch();
    batch
        .decide::<Inventory>(&stream, &reserve(3), &request())
        .await
        .expect("first");
    // Decided on the state the first left: only 2 are available.
    let refused = batch
        .decide::<Inventory>(&stream, &reserve(3), &request())
        .await;
    assert!(
        matches!(
            refused,
            Err(ExecuteError::Domain(InventoryError::InsufficientStock {
                available: 2,
                ..
            }))
        ),
        "{refused:?}"
    );
    batch
        .decide::<Inventory>(&stream, &reserve(2), &request())
        .await
        .expect("third");
    let other = stream_id::<Inventory>("SKU-2");
    let mut command = reserve(1);
    if let InventoryCommand::Reserve { sku: target, .. } = &mut command {
        *target = sku("SKU-2");
    }
    batch
        .decide::<Inventory>(&other, &command, &request())
        .await
        .expect("another stream");

    let mut transaction = app.store.pool().begin().await.expect("begin");
    let appended = batch.append_in(&mut transaction).await.expect("append");
    transaction.commit().await.expect("commit");
    batch.committed().await;

    assert_eq!(appended.events.len(), 3);
    let transactions: std::collections::HashSet<i64> =
        appended.events.iter().map(|e| e.transaction_id).collect();
    assert_eq!(transactions.len(), 1, "one transaction for the batch");
    assert_eq!(stock_level(&app.executor, "SKU-1").await, (5, 5, 0));
    assert_eq!(stock_level(&app.executor, "SKU-2").await, (5, 1, 4));
}

#[tokio::test]
async fn a_stale_guess_fails_the_whole_batch_and_writes_nothing() {
    let app = new_app(ExecutorOptions::default()).await;
    // Our executor caches SKU-1 at 5 available.
    receive(&app, "SKU-1", "main", 5).await;
    receive(&app, "SKU-2", "main", 5).await;
    let theirs = CommandExecutor::new(app.store.clone(), ExecutorOptions::default());
    theirs
        .execute::<Inventory>(&stream_id::<Inventory>("SKU-1"), &reserve(1), &request())
        .await
        .expect("their reservation");

    let mut batch = app.executor.decision_batch();
    let mut on_two = reserve(1);
    if let InventoryCommand::Reserve { sku: target, .. } = &mut on_two {
        *target = sku("SKU-2");
    }
    batch
        .decide::<Inventory>(&stream_id::<Inventory>("SKU-2"), &on_two, &request())
        .await
        .expect("decided");
    batch
        .decide::<Inventory>(&stream_id::<Inventory>("SKU-1"), &reserve(1), &request())
        .await
        .expect("decided on the stale cache");
    let mut transaction = app.store.pool().begin().await.expect("begin");
    let refused = batch.append_in(&mut transaction).await;
    assert!(
        matches!(
            refused,
            Err(BatchRefused::Store(StoreError::WrongExpectedVersion { .. }))
        ),
        "{refused:?}"
    );
    drop(transaction);
    batch.abandoned();
    assert_eq!(stock_level(&app.executor, "SKU-1").await, (5, 1, 4));
    assert_eq!(
        stock_level(&app.executor, "SKU-2").await,
        (5, 0, 5),
        "nothing of the batch was written"
    );
}

/// A command caused by one event decides the same events with the same
/// ids however often it is decided; decided again on a state older than
/// the stored one, its events are all stored already. The batch is then
/// refused, not taken as written: what it decided on has moved on.
#[tokio::test]
async fn a_batch_whose_events_are_all_stored_already_is_refused_as_a_repeat() {
    let app = new_app(ExecutorOptions::default()).await;
    // Our executor caches SKU-1 as received.
    receive(&app, "SKU-1", "main", 5).await;
    let stream = stream_id::<Inventory>("SKU-1");
    let command = InventoryCommand::Reserve {
        sku: sku("SKU-1"),
        order_id: Uuid::new_v4(),
        quantity: 2,
    };
    let context = CommandContext::caused_by_event("test-reactor", Uuid::new_v4(), None);
    let theirs = CommandExecutor::new(app.store.clone(), ExecutorOptions::default());
    theirs
        .execute::<Inventory>(&stream, &command, &context)
        .await
        .expect("their reservation");

    let mut batch = app.executor.decision_batch();
    batch
        .decide::<Inventory>(&stream, &command, &context)
        .await
        .expect("decided on the stale cache");
    let mut transaction = app.store.pool().begin().await.expect("begin");
    let refused = batch.append_in(&mut transaction).await;
    assert!(matches!(refused, Err(BatchRefused::Repeat)), "{refused:?}");
    drop(transaction);
    batch.abandoned();
    assert_eq!(stock_level(&app.executor, "SKU-1").await, (5, 2, 3));
}

#[tokio::test]
async fn an_append_after_another_write_in_its_transaction_is_refused() {
    let app = new_app(ExecutorOptions::default()).await;
    let mut transaction = app.store.pool().begin().await.expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *transaction)
        .await
        .expect("an id, as a write would take");
    let refused = app
        .store
        .append_in_transaction(
            &mut transaction,
            &[event_store::StreamAppend::new(
                "s-1",
                ExpectedVersion::Any,
                vec![NewEvent::new("Something", serde_json::json!({}))],
            )],
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidRequest(_))),
        "{refused:?}"
    );
}
