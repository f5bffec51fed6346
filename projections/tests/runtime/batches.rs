//! A batch gives exactly the rows event-by-event application gives, for
//! every read model with its own `apply_batch`, over random event
//! sequences with redeliveries (a reset replays a prefix); so does a
//! rebuild session over many batches.

use std::collections::BTreeMap;

use aggregates::inventory::{Allocation, InventoryEvent};
use aggregates::order::{OrderEvent, OrderLine};
use aggregates::payment::PaymentEvent;
use aggregates::values::{Currency, PaymentMethod, Shortage, Sku, Warehouse};
use aggregates::DomainEvent;
use chrono::{DateTime, Duration, Utc};
use event_store::{CorrelationId, EventStore, RecordedEvent, StoreOptions, MIGRATOR};
use projections::read_models::orders::OrderSummaries;
use projections::read_models::payments::Payments;
use projections::read_models::stock::StockLevels;
use projections::{Projection, RebuildSession};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use sqlx::{Connection, PgConnection};
use test_support::TestDatabase;
use uuid::Uuid;

fn order_event(rng: &mut StdRng, order_id: Uuid, first: bool) -> OrderEvent {
    let kind = if first && rng.gen_bool(0.9) {
        0
    } else {
        rng.gen_range(0..9)
    };
    let text = |rng: &mut StdRng| format!("reason-{}", rng.gen_range(0..3));
    match kind {
        0 => OrderEvent::Placed {
            order_id,
            customer_id: format!("c-{}", rng.gen_range(0..3)),
            currency: Currency::Usd,
            lines: vec![OrderLine {
                sku: Sku::parse("A").expect("sku"),
                quantity: rng.gen_range(1..4),
                unit_price: Decimal::new(rng.gen_range(1..10_000), 2),
            }],
            total: Decimal::new(rng.gen_range(1..100_000), 2),
            payment_method: PaymentMethod::CardOk,
        },
        1 => OrderEvent::Reserved {},
        2 => OrderEvent::Rejected {
            shortages: vec![Shortage {
                sku: Sku::parse("A").expect("sku"),
                requested: rng.gen_range(2..5),
                available: 1,
            }],
        },
        3 => OrderEvent::Cancelled { reason: text(rng) },
        4 => OrderEvent::Shipped {},
        5 => OrderEvent::Paid {
            amount: Decimal::new(1250, 2),
        },
        6 => OrderEvent::PaymentFailed { reason: text(rng) },
        _ => OrderEvent::PaymentRetryRequested {
            round: rng.gen_range(2..4),
        },
    }
}

fn payment_event(rng: &mut StdRng, order_id: Uuid, first: bool) -> PaymentEvent {
    let kind = if first && rng.gen_bool(0.9) {
        0
    } else {
        rng.gen_range(0..5)
    };
    let attempt = rng.gen_range(1..4);
    match kind {
        0 | 1 => PaymentEvent::Requested {
            order_id,
            amount: Decimal::new(rng.gen_range(1..100_000), 2),
            currency: Currency::Usd,
            method: PaymentMethod::CardFlaky,
            attempt,
        },
        2 => PaymentEvent::Captured {
            reference: format!("ref-{}", rng.gen_range(0..3)),
            amount: Decimal::new(1250, 2),
            attempt,
        },
        3 => PaymentEvent::Failed {
            reason: format!("declined-{}", rng.gen_range(0..3)),
            retryable: rng.gen_bool(0.5),
            attempt,
        },
        _ => PaymentEvent::Refunded {
            amount: Decimal::new(1250, 2),
        },
    }
}

/// A log of `streams` interleaved streams of `prefix-<uuid>`, then the
/// order a subscriber receives it in: once, with a random prefix
/// delivered again in the middle (a reset, a stale owner's redelivery).
fn deliveries<E: DomainEvent>(
    rng: &mut StdRng,
    prefix: &str,
    streams: usize,
    event: fn(&mut StdRng, Uuid, bool) -> E,
) -> Vec<RecordedEvent> {
    let ids: Vec<Uuid> = (0..streams).map(|_| Uuid::new_v4()).collect();
    let mut versions = vec![0_i64; streams];
    let start: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
    let mut log = Vec::new();
    for position in 1..=rng.gen_range(1..40_i64) {
        let stream = rng.gen_range(0..streams);
        versions[stream] += 1;
        let domain_event = event(rng, ids[stream], versions[stream] == 1);
        log.push(RecordedEvent {
            position,
            transaction_id: position,
            stream_id: format!("{prefix}-{}", ids[stream]),
            stream_version: versions[stream],
            event_id: Uuid::new_v4(),
            event_type: domain_event.event_type().to_owned(),
            schema_version: domain_event.schema_version(),
            data: domain_event.to_json(),
            metadata: serde_json::json!({}),
            correlation_id: rng
                .gen_bool(0.5)
                .then(|| CorrelationId::new(format!("flow-{position}")).expect("id")),
            causation_id: None,
            recorded_at: start + Duration::milliseconds(position),
        });
    }
    let replay_from = rng.gen_range(0..=log.len());
    let replay_to = rng.gen_range(replay_from..=log.len());
    let mut delivered = log[..replay_to].to_vec();
    delivered.extend_from_slice(&log[replay_from..]);
    delivered
}

/// The projection's tables, as text, in a stable order.
async fn rows(connection: &mut PgConnection, projection: &dyn Projection) -> Vec<String> {
    let mut rows = Vec::new();
    for table in projection.tables() {
        let table_rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM {table} t ORDER BY row_to_json(t)::text"
        ))
        .fetch_all(&mut *connection)
        .await
        .expect("rows");
        rows.extend(table_rows);
    }
    rows
}

async fn clear(connection: &mut PgConnection, projection: &dyn Projection) {
    for table in projection.tables() {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *connection)
            .await
            .expect("clear");
    }
}

/// Applies `events` one by one, then again in random batches, and
/// returns both tables' rows.
async fn one_by_one_and_batched(
    connection: &mut PgConnection,
    projection: &dyn Projection,
    events: &[RecordedEvent],
    rng: &mut StdRng,
) -> (Vec<String>, Vec<String>) {
    clear(connection, projection).await;
    let mut transaction = connection.begin().await.expect("begin");
    for event in events {
        projection
            .apply(&mut transaction, event)
            .await
            .expect("apply");
    }
    transaction.commit().await.expect("commit");
    let one_by_one = rows(connection, projection).await;

    clear(connection, projection).await;
    let mut rest = events;
    while !rest.is_empty() {
        let (batch, after) = rest.split_at(rng.gen_range(1..=rest.len()));
        let mut transaction = connection.begin().await.expect("begin");
        projection
            .apply_batch(&mut transaction, batch)
            .await
            .expect("apply batch");
        transaction.commit().await.expect("commit");
        rest = after;
    }
    (one_by_one, rows(connection, projection).await)
}

#[test]
fn a_batch_gives_the_rows_of_event_by_event_application() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_database, store) = runtime.block_on(async {
        let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
        let store = EventStore::connect(database.url(), &StoreOptions::default())
            .await
            .expect("connect");
        (database, store)
    });
    let config = ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    };
    proptest!(config, |(seed in any::<u64>(), streams in 1..5_usize)| {
        runtime.block_on(async {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut connection = store.pool().acquire().await.expect("connection");
            let orders = deliveries(&mut rng, "order", streams, order_event);
            let (one_by_one, batched) =
                one_by_one_and_batched(&mut connection, &OrderSummaries, &orders, &mut rng).await;
            prop_assert_eq!(one_by_one, batched);
            let payments = deliveries(&mut rng, "payment", streams, payment_event);
            let (one_by_one, batched) =
                one_by_one_and_batched(&mut connection, &Payments, &payments, &mut rng).await;
            prop_assert_eq!(one_by_one, batched);
            Ok(())
        })?;
    });
}

/// A random valid event of the inventory of `sku` (no level goes below
/// zero: the history's CHECK refuses it), applied to `levels` (on hand,
/// reserved per warehouse). Warehouse names sort differently by bytes and
/// by a natural-language collation.
fn inventory_event(
    rng: &mut StdRng,
    sku: &str,
    levels: &mut BTreeMap<&'static str, (u64, u64)>,
) -> InventoryEvent {
    const WAREHOUSES: [&str; 4] = ["east", "Main", "wh-1", "wh.2"];
    let sku = Sku::parse(sku).expect("sku");
    let order_id = Uuid::new_v4();
    // Up to two allocations that `fits` allows (sometimes none: an event
    // that changes no level still has a history row), applied by `apply`.
    let mut allocations =
        |rng: &mut StdRng, fits: fn((u64, u64)) -> u64, apply: fn(&mut (u64, u64), u64)| {
            let mut allocations = Vec::new();
            for _ in 0..rng.gen_range(0..3) {
                let name = WAREHOUSES[rng.gen_range(0..4)];
                let level = levels.entry(name).or_default();
                let most = fits(*level).min(4);
                if most == 0 {
                    continue;
                }
                let quantity = rng.gen_range(1..=most);
                apply(level, quantity);
                allocations.push(Allocation {
                    warehouse: Warehouse::parse(name).expect("warehouse"),
                    quantity,
                });
            }
            allocations
        };
    match rng.gen_range(0..5) {
        0 => {
            let allocations = allocations(
                rng,
                |(on_hand, reserved)| on_hand - reserved,
                |level, quantity| level.1 += quantity,
            );
            InventoryEvent::Reserved {
                sku,
                order_id,
                allocations,
            }
        }
        1 => {
            let allocations = allocations(
                rng,
                |(_, reserved)| reserved,
                |level, quantity| level.1 -= quantity,
            );
            InventoryEvent::Released {
                sku,
                order_id,
                allocations,
            }
        }
        2 => {
            let allocations = allocations(
                rng,
                |(_, reserved)| reserved,
                |level, quantity| {
                    level.0 -= quantity;
                    level.1 -= quantity;
                },
            );
            InventoryEvent::Committed {
                sku,
                order_id,
                allocations,
            }
        }
        3 => {
            let name = WAREHOUSES[rng.gen_range(0..4)];
            let level = levels.entry(name).or_default();
            let available = i64::try_from(level.0 - level.1).expect("small");
            let delta = rng.gen_range(-available..=5);
            level.0 = level.0.checked_add_signed(delta).expect("not below zero");
            InventoryEvent::Adjusted {
                sku,
                warehouse: Warehouse::parse(name).expect("warehouse"),
                delta,
                reason: "count".into(),
            }
        }
        _ => {
            let name = WAREHOUSES[rng.gen_range(0..4)];
            let quantity = rng.gen_range(1..20);
            levels.entry(name).or_default().0 += quantity;
            InventoryEvent::Received {
                sku,
                warehouse: Warehouse::parse(name).expect("warehouse"),
                quantity,
            }
        }
    }
}

/// A log of interleaved `inventory-<sku>` streams over `skus` SKUs.
fn inventory_log(rng: &mut StdRng, skus: usize) -> Vec<RecordedEvent> {
    let names: Vec<String> = (0..skus).map(|sku| format!("S-{sku}")).collect();
    let mut versions = vec![0_i64; skus];
    let mut levels = vec![BTreeMap::new(); skus];
    let start: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
    (1..=rng.gen_range(1..150_i64))
        .map(|position| {
            let sku = rng.gen_range(0..skus);
            versions[sku] += 1;
            let domain_event = inventory_event(rng, &names[sku], &mut levels[sku]);
            RecordedEvent {
                position,
                // Several events per transaction, as a multi-stream append writes.
                transaction_id: position / 3,
                stream_id: format!("inventory-{}", names[sku]),
                stream_version: versions[sku],
                event_id: Uuid::new_v4(),
                event_type: domain_event.event_type().to_owned(),
                schema_version: domain_event.schema_version(),
                data: domain_event.to_json(),
                metadata: serde_json::json!({}),
                correlation_id: None,
                causation_id: None,
                recorded_at: start + Duration::milliseconds(position / 2),
            }
        })
        .collect()
}

/// Runs `events` through rebuild sessions as a rebuild does: each session
/// gets its share of the streams in log order (`partitions` sessions, a
/// SKU to each), in random batches of one transaction each, then finishes
/// in one more. The log is cut in two at a random point, each part through
/// sessions of its own, as the catch-up after a fill continues from the
/// rows the fill wrote.
async fn through_rebuild_sessions(
    connection: &mut PgConnection,
    events: &[RecordedEvent],
    partitions: usize,
    max_skus: usize,
    rng: &mut StdRng,
) {
    let cut = rng.gen_range(0..=events.len());
    for part in [&events[..cut], &events[cut..]] {
        let mut sessions: Vec<Box<dyn RebuildSession>> = (0..partitions)
            .map(|_| StockLevels.rebuild_session_holding(max_skus))
            .collect();
        let mut shares: Vec<Vec<RecordedEvent>> = vec![Vec::new(); partitions];
        for event in part {
            let partition = event.stream_id.bytes().map(usize::from).sum::<usize>() % partitions;
            shares[partition].push(event.clone());
        }
        for (session, share) in sessions.iter_mut().zip(shares) {
            let mut rest = share;
            while !rest.is_empty() {
                let after = rest.split_off(rng.gen_range(1..=rest.len()));
                let mut transaction = connection.begin().await.expect("begin");
                session
                    .apply_batch(&mut transaction, rest)
                    .await
                    .expect("session batch");
                transaction.commit().await.expect("commit");
                rest = after;
            }
        }
        for session in sessions {
            let mut transaction = connection.begin().await.expect("begin");
            session.finish(&mut transaction).await.expect("finish");
            transaction.commit().await.expect("commit");
        }
    }
}

#[test]
fn a_rebuild_session_over_many_batches_gives_the_rows_of_event_by_event_application() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_database, store) = runtime.block_on(async {
        let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
        let store = EventStore::connect(database.url(), &StoreOptions::default())
            .await
            .expect("connect");
        (database, store)
    });
    let config = ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    };
    // `max_skus` 1 and 2 make sessions write and forget their levels in
    // the middle of the fill; 100 never does here.
    proptest!(config, |(seed in any::<u64>(), skus in 1..6_usize,
                        partitions in 1..3_usize, max_skus in prop_oneof![Just(1), Just(2), Just(100)])| {
        runtime.block_on(async {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut connection = store.pool().acquire().await.expect("connection");
            let log = inventory_log(&mut rng, skus);

            clear(&mut connection, &StockLevels).await;
            let mut transaction = connection.begin().await.expect("begin");
            for event in &log {
                StockLevels
                    .apply(&mut transaction, event)
                    .await
                    .expect("apply");
            }
            transaction.commit().await.expect("commit");
            let one_by_one = rows(&mut connection, &StockLevels).await;
            prop_assert!(!one_by_one.is_empty());

            clear(&mut connection, &StockLevels).await;
            through_rebuild_sessions(&mut connection, &log, partitions, max_skus, &mut rng).await;
            prop_assert_eq!(&one_by_one, &rows(&mut connection, &StockLevels).await);

            // The live batches of the same log, for good measure.
            let (_, batched) =
                one_by_one_and_batched(&mut connection, &StockLevels, &log, &mut rng).await;
            prop_assert_eq!(&one_by_one, &batched);

            // Levels lost, history kept: the whole log again in one batch
            // meets every history row already stored (the `COPY` fails, the
            // checking insert finds them equal) and restores the levels.
            sqlx::query("DELETE FROM stock_levels")
                .execute(&mut *connection)
                .await
                .expect("delete levels");
            let mut transaction = connection.begin().await.expect("begin");
            StockLevels
                .apply_batch(&mut transaction, &log)
                .await
                .expect("apply again");
            transaction.commit().await.expect("commit");
            prop_assert_eq!(one_by_one, rows(&mut connection, &StockLevels).await);
            Ok(())
        })?;
    });
}
