//! A batch gives exactly the rows event-by-event application gives, for
//! every read model with its own `apply_batch`, over random event
//! sequences with redeliveries (a reset replays a prefix).

use aggregates::order::{OrderEvent, OrderLine};
use aggregates::payment::PaymentEvent;
use aggregates::values::{Currency, PaymentMethod, Shortage, Sku};
use aggregates::DomainEvent;
use chrono::{DateTime, Duration, Utc};
use event_store::{CorrelationId, EventStore, RecordedEvent, StoreOptions, MIGRATOR};
use projections::read_models::orders::OrderSummaries;
use projections::read_models::payments::Payments;
use projections::Projection;
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
