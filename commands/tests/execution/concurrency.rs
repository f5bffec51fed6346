//! Commands racing for the same stream.

use aggregates::inventory::{Inventory, InventoryCommand, InventoryError};
use aggregates::stream_id;
use commands::{ExecuteError, ExecutorOptions};
use uuid::Uuid;

use crate::helpers::{new_app, receive, request, sku};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_reservations_of_one_unit_against_fifty_in_stock_sell_exactly_fifty() {
    let app = new_app(ExecutorOptions {
        max_attempts: 200,
        ..ExecutorOptions::default()
    })
    .await;
    receive(&app, "SKU-1", "main", 50).await;
    let stream = stream_id::<Inventory>("SKU-1");
    let attempts = (0..100).map(|_| {
        let executor = app.executor.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            let command = InventoryCommand::Reserve {
                sku: sku("SKU-1"),
                order_id: Uuid::new_v4(),
                quantity: 1,
            };
            executor
                .execute::<Inventory>(&stream, &command, &request())
                .await
        })
    });
    let mut reserved = 0;
    let mut refused = 0;
    for outcome in futures::future::join_all(attempts).await {
        match outcome.expect("task") {
            Ok(_) => reserved += 1,
            Err(ExecuteError::Domain(InventoryError::InsufficientStock {
                requested: 1,
                available: 0,
                ..
            })) => refused += 1,
            Err(other) => panic!("a loser must end in InsufficientStock, got {other:?}"),
        }
    }
    assert_eq!((reserved, refused), (50, 50));
    let inventory = app.executor.load::<Inventory>(&stream).await.expect("load");
    let level = inventory.state.level();
    assert_eq!(
        (level.on_hand, level.reserved, level.available),
        (50, 50, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_that_keeps_losing_gets_a_typed_conflict() {
    let app = new_app(ExecutorOptions {
        max_attempts: 1,
        ..ExecutorOptions::default()
    })
    .await;
    receive(&app, "SKU-1", "main", 1000).await;
    let stream = stream_id::<Inventory>("SKU-1");
    let attempts = (0..40).map(|_| {
        let executor = app.executor.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            let command = InventoryCommand::Reserve {
                sku: sku("SKU-1"),
                order_id: Uuid::new_v4(),
                quantity: 1,
            };
            executor
                .execute::<Inventory>(&stream, &command, &request())
                .await
        })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let conflicts = outcomes
        .iter()
        .filter(|outcome| {
            matches!(outcome, Ok(Err(ExecuteError::Conflict { stream_id, attempts: 1 })) if *stream_id == stream)
        })
        .count();
    let successes = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(Ok(_))))
        .count();
    assert_eq!(
        conflicts + successes,
        40,
        "every outcome is a success or a typed conflict"
    );
    assert!(successes >= 1);
    let level = app
        .executor
        .load::<Inventory>(&stream)
        .await
        .expect("load")
        .state
        .level();
    assert_eq!(level.reserved as usize, successes);
}
