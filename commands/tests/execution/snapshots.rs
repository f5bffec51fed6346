//! Snapshots are an optimisation only: loading from snapshot plus tail
//! equals a full fold.

use aggregates::inventory::{Inventory, InventoryCommand};
use aggregates::stream_id;
use aggregates::values::Warehouse;
use commands::{CommandExecutor, ExecutorOptions};
use proptest::prelude::*;
use uuid::Uuid;

use crate::helpers::{new_app, request, sku};

fn command() -> impl Strategy<Value = (u8, u64, bool)> {
    (0..3_u8, 1..20_u64, any::<bool>())
}

#[test]
fn loading_from_a_snapshot_plus_tail_equals_a_full_fold() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let app = runtime.block_on(new_app(ExecutorOptions {
        snapshot_every: Some(5),
        ..ExecutorOptions::default()
    }));
    let without_snapshots = CommandExecutor::new(
        app.store.clone(),
        ExecutorOptions {
            snapshot_every: None,
            ..ExecutorOptions::default()
        },
    );
    let config = ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    };
    proptest!(config, |(commands in proptest::collection::vec(command(), 1..40))| {
        runtime.block_on(async {
            let name = format!("P{}", Uuid::new_v4().simple());
            let stream = stream_id::<Inventory>(&name);
            let mut orders = Vec::new();
            for (kind, quantity, east) in commands {
                let warehouse = Warehouse::parse(if east { "east" } else { "main" }).expect("warehouse");
                let command = match kind {
                    0 => InventoryCommand::Receive { sku: sku(&name), warehouse, quantity },
                    1 => {
                        let order_id = Uuid::new_v4();
                        orders.push(order_id);
                        InventoryCommand::Reserve { sku: sku(&name), order_id, quantity }
                    }
                    _ => match orders.pop() {
                        Some(order_id) => InventoryCommand::Release { sku: sku(&name), order_id },
                        None => InventoryCommand::Receive { sku: sku(&name), warehouse, quantity },
                    },
                };
                // Refused commands (not enough stock) are part of the workload.
                let _ = app.executor.execute::<Inventory>(&stream, &command, &request()).await;
            }
            let from_snapshot = app.executor.load::<Inventory>(&stream).await.expect("load");
            let full_fold = without_snapshots.load::<Inventory>(&stream).await.expect("load");
            prop_assert_eq!(&from_snapshot, &full_fold);
            Ok(())
        })?;
    });
    let snapshots: i64 = runtime
        .block_on(sqlx::query_scalar("SELECT count(*) FROM snapshots").fetch_one(app.store.pool()))
        .expect("count");
    assert!(snapshots > 0, "the workload should have taken snapshots");
}
