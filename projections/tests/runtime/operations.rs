//! Reset, rebuild and temporal stock.

use aggregates::inventory::Inventory;
use aggregates::order::{Order, OrderCommand, OrderStatus};
use aggregates::stream_id;
use aggregates::values::PaymentMethod;
use chrono::{DateTime, Duration, Utc};
use event_store::AsOf;
use projections::catalogue::projection_names;
use projections::operations::{
    rebuild_pending, request_rebuild, request_reset, subscription_statuses,
};
use projections::read_models::stock::stock_level_at;
use projections::runtime::RuntimeOptions;
use proptest::prelude::*;
use rand::Rng;

use crate::helpers::{request, wait_until, TestApp};

/// Every read model's rows, as text, in a stable order.
async fn read_models(app: &TestApp) -> Vec<String> {
    let mut rows = Vec::new();
    for (table, order) in [
        ("order_summaries", "order_id"),
        ("stock_levels", "sku, warehouse"),
        ("stock_history", "sku, at, transaction_id, position"),
        ("payments", "order_id"),
    ] {
        let table_rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM {table} t ORDER BY {order}"
        ))
        .fetch_all(app.store.pool())
        .await
        .expect("read model rows");
        rows.push(format!("{table}: {}", table_rows.join("\n")));
    }
    rows
}

/// A random workload: stock in two warehouses, orders of every kind, some
/// cancelled; waits until every order has settled.
async fn random_workload(app: &TestApp, seed: u64, orders: usize) {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for sku in ["A", "B", "C"] {
        app.receive(sku, "main", rng.gen_range(1..15)).await;
        app.receive(sku, "east", rng.gen_range(1..10)).await;
    }
    let methods = [
        PaymentMethod::CardOk,
        PaymentMethod::CardDeclined,
        PaymentMethod::CardFlaky,
    ];
    let mut placed = Vec::new();
    for _ in 0..orders {
        let mut lines: Vec<(&str, u32)> = Vec::new();
        for sku in ["A", "B", "C"] {
            if rng.gen_bool(0.6) {
                lines.push((sku, rng.gen_range(1..6)));
            }
        }
        let lines = if lines.is_empty() {
            vec![("A", 1)]
        } else {
            lines
        };
        let order_id = app.place(&lines, methods[rng.gen_range(0..3)]).await;
        if rng.gen_bool(0.2) {
            // May be refused if already shipped: both are part of the workload.
            let _ = app
                .executor
                .execute::<Order>(
                    &stream_id::<Order>(order_id),
                    &OrderCommand::Cancel {
                        reason: "random".into(),
                    },
                    &request(),
                )
                .await;
        }
        placed.push(order_id);
    }
    for order_id in placed {
        wait_until("the order settles", || async {
            matches!(
                app.status(order_id).await,
                Some(
                    OrderStatus::Paid
                        | OrderStatus::Rejected
                        | OrderStatus::Cancelled
                        | OrderStatus::PaymentFailed
                )
            )
        })
        .await;
    }
    app.wait_until_idle().await;
}

#[test]
fn rebuilding_every_read_model_after_a_random_workload_equals_the_live_one() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = ProptestConfig {
        cases: 3,
        ..ProptestConfig::default()
    };
    proptest!(config, |(seed in any::<u64>(), orders in 5..15_usize)| {
        runtime.block_on(async {
            let app = TestApp::new().await;
            // Small rebuild batches: the rebuild spans many, read ahead.
            let subscriptions = app.start(RuntimeOptions {
                rebuild_batch_size: 7,
                ..TestApp::fast_options()
            });
            random_workload(&app, seed, orders).await;
            let live = read_models(&app).await;
            for projection in projection_names() {
                request_rebuild(&app.store, projection).await.expect("request rebuild");
            }
            wait_until("every rebuild is swapped in", || async {
                for projection in projection_names() {
                    if rebuild_pending(&app.store, projection).await.expect("pending") {
                        return false;
                    }
                }
                true
            })
            .await;
            let outcomes: Vec<Option<String>> = sqlx::query_scalar(
                "SELECT outcome FROM subscription_requests WHERE kind = 'rebuild' ORDER BY id",
            )
            .fetch_all(app.store.pool())
            .await
            .expect("outcomes");
            prop_assert_eq!(outcomes, vec![Some("rebuilt".to_owned()); projection_names().count()]);
            app.wait_until_idle().await;
            let rebuilt = read_models(&app).await;
            subscriptions.shutdown().await;
            prop_assert_eq!(live, rebuilt);
            Ok(())
        })?;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetting_every_subscription_to_zero_redelivers_without_a_second_effect_or_a_parked_event()
{
    let app = TestApp::new().await;
    let runtime = app.start(TestApp::fast_options());
    random_workload(&app, 7, 6).await;
    let models_before = read_models(&app).await;
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    for status in subscription_statuses(&app.store).await.expect("statuses") {
        request_reset(&app.store, &status.name, 0)
            .await
            .expect("reset");
    }
    wait_until("every reset is carried out", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT NOT EXISTS (SELECT FROM subscription_requests WHERE done_at IS NULL)",
        )
        .fetch_one(app.store.pool())
        .await
        .unwrap_or(false)
    })
    .await;
    app.wait_until_idle().await;
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(app.store.pool())
        .await
        .expect("count");
    assert_eq!(
        events_after, events_before,
        "reactors redelivered, nothing new written"
    );
    assert_eq!(
        read_models(&app).await,
        models_before,
        "projections applied nothing twice"
    );
    for status in subscription_statuses(&app.store).await.expect("statuses") {
        assert_eq!(
            status.parked, 0,
            "{}: a redelivered event is a no-op, never a failure",
            status.name
        );
    }
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_at_any_instant_equals_folding_the_skus_stream_up_to_it() {
    let app = TestApp::new().await;
    let runtime = app.start(TestApp::fast_options());
    random_workload(&app, 42, 10).await;
    let times: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT recorded_at FROM events WHERE stream_id = 'inventory-A' ORDER BY stream_version",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("times");
    let (first, last) = (times[0], times[times.len() - 1]);
    let mut instants = vec![first - Duration::seconds(1), last + Duration::seconds(1)];
    for at in &times {
        instants.extend([
            *at,
            *at - Duration::microseconds(1),
            *at + Duration::microseconds(1),
        ]);
    }
    let span = (last - first).num_microseconds().unwrap_or(1).max(1);
    let mut rng = rand::thread_rng();
    instants.extend((0..20).map(|_| first + Duration::microseconds(rng.gen_range(0..span))));

    for at in instants {
        let folded = app
            .executor
            .load_as_of::<Inventory>(&stream_id::<Inventory>("A"), AsOf::Instant(at))
            .await
            .expect("fold")
            .state;
        let projected = stock_level_at(app.store.pool(), "A", at)
            .await
            .expect("query")
            .expect("the SKU has history");
        let level = folded.level();
        assert_eq!(
            (projected.on_hand, projected.reserved, projected.available),
            (
                level.on_hand as i64,
                level.reserved as i64,
                level.available as i64
            ),
            "at {at}"
        );
        // A warehouse with nothing in it may be listed on one side only.
        let per_warehouse: Vec<(String, i64, i64)> = folded
            .warehouse_levels()
            .into_iter()
            .map(|(warehouse, level)| {
                (
                    warehouse.as_str().to_owned(),
                    level.on_hand as i64,
                    level.reserved as i64,
                )
            })
            .filter(|(_, on_hand, reserved)| *on_hand > 0 || *reserved > 0)
            .collect();
        let projected_per_warehouse: Vec<(String, i64, i64)> = projected
            .warehouses
            .iter()
            .map(|w| (w.warehouse.clone(), w.on_hand, w.reserved))
            .filter(|(_, on_hand, reserved)| *on_hand > 0 || *reserved > 0)
            .collect();
        assert_eq!(projected_per_warehouse, per_warehouse, "warehouses at {at}");
    }
    runtime.shutdown().await;
}
