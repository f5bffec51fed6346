//! The stock limits hold under concurrency: receipts racing for the last
//! headroom of a SKU are decided one after another on the stream, so the
//! per-SKU limit is never passed, whatever the warehouses.

use aggregates::inventory::{Inventory, InventoryCommand, InventoryError};
use aggregates::limits::{MAX_ON_HAND_PER_SKU, MAX_ON_HAND_PER_WAREHOUSE, MAX_STOCK_MOVEMENT};
use aggregates::stream_id;
use aggregates::values::Warehouse;
use commands::{ExecuteError, ExecutorOptions};

use crate::helpers::{new_app, receive, request, sku, stock_level};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receipts_racing_for_the_last_headroom_of_a_sku_never_pass_its_limit() {
    let app = new_app(ExecutorOptions {
        max_attempts: 50,
        ..ExecutorOptions::default()
    })
    .await;
    // Fill the SKU to one largest receipt below its limit.
    let receipts_per_warehouse = MAX_ON_HAND_PER_WAREHOUSE / MAX_STOCK_MOVEMENT;
    let receipts = MAX_ON_HAND_PER_SKU / MAX_STOCK_MOVEMENT - 1;
    for n in 0..receipts {
        let warehouse = format!("full-{}", n / receipts_per_warehouse);
        receive(&app, "SKU-1", &warehouse, MAX_STOCK_MOVEMENT).await;
    }
    let (on_hand, _, _) = stock_level(&app.executor, "SKU-1").await;
    assert_eq!(on_hand, MAX_ON_HAND_PER_SKU - MAX_STOCK_MOVEMENT);

    let stream = stream_id::<Inventory>("SKU-1");
    let racers = (0..8).map(|n| {
        let executor = app.executor.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            let command = InventoryCommand::Receive {
                sku: sku("SKU-1"),
                warehouse: Warehouse::parse(format!("new-{n}")).expect("valid warehouse"),
                quantity: MAX_STOCK_MOVEMENT,
            };
            executor
                .execute::<Inventory>(&stream, &command, &request())
                .await
        })
    });
    let mut accepted = 0;
    let mut refused = 0;
    for outcome in futures::future::join_all(racers).await {
        match outcome.expect("task") {
            Ok(_) => accepted += 1,
            Err(ExecuteError::Domain(InventoryError::SkuLimitExceeded {
                on_hand,
                increase,
                max,
                ..
            })) => {
                assert_eq!(on_hand, u128::from(MAX_ON_HAND_PER_SKU));
                assert_eq!((increase, max), (MAX_STOCK_MOVEMENT, MAX_ON_HAND_PER_SKU));
                refused += 1;
            }
            Err(other) => panic!("a loser must end in SkuLimitExceeded, got {other:?}"),
        }
    }
    assert_eq!((accepted, refused), (1, 7));
    let (on_hand, reserved, available) = stock_level(&app.executor, "SKU-1").await;
    assert_eq!(
        (on_hand, reserved, available),
        (MAX_ON_HAND_PER_SKU, 0, MAX_ON_HAND_PER_SKU)
    );
}
