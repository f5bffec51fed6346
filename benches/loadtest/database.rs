//! What the bench itself reads from and writes to PostgreSQL: the raw
//! baseline's inserts, paid orders and their placed-to-paid latency (read
//! from the log, one clock), transaction counts.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{latency_histogram, quantile_ms, sample_event_data, BenchResult};

/// The same row as a single-event append writes (as in `event_store.rs`).
const RAW_SINGLE_INSERT: &str = "INSERT INTO raw_events (transaction_id, stream_id, \
     stream_version, event_id, event_type, schema_version, data, metadata, correlation_id, \
     causation_id, recorded_at) VALUES (pg_current_xact_id()::text::bigint, $1, 1, $2, \
     'OrderLineAdded', 1, $3, $4, $5, NULL, clock_timestamp())";

/// Ten such rows in one statement (one transaction): the raw rate of the
/// choreography's unit of work, about ten events an order.
const RAW_TEN_INSERT: &str = "INSERT INTO raw_events (transaction_id, stream_id, \
     stream_version, event_id, event_type, schema_version, data, metadata, correlation_id, \
     causation_id, recorded_at) \
     SELECT pg_current_xact_id()::text::bigint, $1, n.version, n.event_id, 'OrderLineAdded', 1, \
            $3, $4, $5, NULL, clock_timestamp() \
       FROM unnest($2::uuid[]) WITH ORDINALITY AS n(event_id, version)";

pub struct Drain {
    /// Orders paid when the wait ended.
    pub paid: usize,
    pub elapsed: Duration,
}

/// Waits (up to `patience`) until every order of `order_ids` is paid.
pub async fn wait_until_paid(
    pool: &PgPool,
    order_ids: &[Uuid],
    patience: Duration,
) -> BenchResult<Drain> {
    let streams: Vec<String> = order_ids.iter().map(|id| format!("order-{id}")).collect();
    let started = Instant::now();
    loop {
        let paid: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'OrderPaid' AND stream_id = ANY($1)",
        )
        .bind(&streams)
        .fetch_one(pool)
        .await?;
        let paid = usize::try_from(paid)?;
        if paid >= order_ids.len() || started.elapsed() > patience {
            return Ok(Drain {
                paid,
                elapsed: started.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn describe_drain(drain: &Drain, orders: usize) -> String {
    if drain.paid >= orders {
        format!("{:.1} s", drain.elapsed.as_secs_f64())
    } else {
        format!(
            "only {} of {orders} paid after {:.0} s",
            drain.paid,
            drain.elapsed.as_secs_f64()
        )
    }
}

/// `OrderPaid.recorded_at - OrderPlaced.recorded_at` of the paid orders.
pub async fn placed_to_paid(pool: &PgPool, order_ids: &[Uuid]) -> BenchResult<Histogram<u64>> {
    let streams: Vec<String> = order_ids.iter().map(|id| format!("order-{id}")).collect();
    let micros: Vec<i64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM paid.recorded_at - placed.recorded_at) * 1e6)::int8 \
           FROM events placed \
           JOIN events paid ON paid.stream_id = placed.stream_id \
                           AND paid.event_type = 'OrderPaid' \
          WHERE placed.event_type = 'OrderPlaced' AND placed.stream_id = ANY($1)",
    )
    .bind(&streams)
    .fetch_all(pool)
    .await?;
    let mut histogram = latency_histogram();
    for value in micros {
        histogram.record(u64::try_from(value.max(1))?)?;
    }
    Ok(histogram)
}

pub fn describe_latency(histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "none paid".into();
    }
    format!(
        "{:.0} ms / {:.0} ms ({:.0} ms)",
        quantile_ms(histogram, 0.5),
        quantile_ms(histogram, 0.99),
        histogram.max() as f64 / 1000.0
    )
}

/// Transactions committed or rolled back in this database so far.
pub async fn transactions(pool: &PgPool) -> BenchResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database \
          WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?)
}

pub async fn events_per_order(pool: &PgPool, orders: u64) -> BenchResult<f64> {
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type <> 'StockReceived'")
            .fetch_one(pool)
            .await?;
    Ok(events as f64 / orders.max(1) as f64)
}

/// `tasks` tasks inserting `per_statement` rows (1 or 10) per autocommit
/// statement, for `run_for`: rows/s.
pub async fn raw_inserts(
    pool: &PgPool,
    tasks: usize,
    run_for: Duration,
    per_statement: usize,
) -> BenchResult<f64> {
    let started = Instant::now();
    let deadline = started + run_for;
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut rows = 0u64;
                while Instant::now() < deadline {
                    let order_id = Uuid::new_v4();
                    let data = sample_event_data(order_id);
                    let correlation_id = Uuid::new_v4();
                    let metadata = serde_json::json!({
                        "correlation_id": correlation_id,
                        "actor": "bench",
                    });
                    if per_statement == 1 {
                        sqlx::query(RAW_SINGLE_INSERT)
                            .bind(format!("order-{order_id}"))
                            .bind(Uuid::new_v4())
                            .bind(&data)
                            .bind(&metadata)
                            .bind(correlation_id.to_string())
                            .execute(&pool)
                            .await?;
                    } else {
                        let ids: Vec<Uuid> = (0..per_statement).map(|_| Uuid::new_v4()).collect();
                        sqlx::query(RAW_TEN_INSERT)
                            .bind(format!("order-{order_id}"))
                            .bind(&ids)
                            .bind(&data)
                            .bind(&metadata)
                            .bind(correlation_id.to_string())
                            .execute(&pool)
                            .await?;
                    }
                    rows += per_statement as u64;
                }
                Ok::<u64, sqlx::Error>(rows)
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
