//! What `integration_latency` samples during the load and computes after
//! it: backlogs, lag, the commit ceiling, commit times and the report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use event_store::EventStore;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::Channel;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{latency_histogram, quantile_ms, BenchResult};
use crate::{Deliveries, PATIENCE};

/// Keeps in `largest` the most messages seen waiting in Finance's inbox,
/// sampled every 200 ms until aborted.
pub async fn sample_backlog(channel: Channel, queue: String, largest: Arc<AtomicU32>) {
    loop {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        if let Ok(queue) = channel
            .queue_declare(&queue, passive, FieldTable::default())
            .await
        {
            largest.fetch_max(queue.message_count(), Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How far the relay's checkpoint trails the log head, sampled every
/// 250 ms until aborted; the largest kept in `largest`.
pub async fn sample_relay_lag(store: EventStore, largest: Arc<AtomicI64>) {
    loop {
        if let (Ok(head), Ok(Some(checkpoint))) =
            (store.head().await, store.load_checkpoint(relay::NAME).await)
        {
            largest.fetch_max(head.position - checkpoint.position, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Autocommit single-row inserts per second on one connection for 2 s:
/// the ceiling of a consumer that commits each message on its own.
pub async fn commit_rate(pool: &PgPool) -> BenchResult<f64> {
    sqlx::query("CREATE TABLE bench_commits (id bigint)")
        .execute(pool)
        .await?;
    let started = Instant::now();
    let mut commits = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        sqlx::query("INSERT INTO bench_commits VALUES ($1)")
            .bind(i64::from(commits))
            .execute(pool)
            .await?;
        commits += 1;
    }
    let rate = f64::from(commits) / started.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_commits")
        .execute(pool)
        .await?;
    Ok(rate)
}

/// Finance's own booking path (`finance::consumer::book`: the inbox row in
/// one transaction) for an ignored contract, one message after another for
/// 2 s, without the broker: per second.
pub async fn booking_rate(pool: &PgPool) -> BenchResult<f64> {
    let started = Instant::now();
    let mut booked = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        let message_id = Uuid::new_v4().to_string();
        finance::consumer::book(pool, Some(&message_id), "order.placed.v1", b"{}").await?;
        booked += 1;
    }
    Ok(f64::from(booked) / started.elapsed().as_secs_f64())
}

pub async fn wait_until_delivered(deliveries: &Deliveries, orders: usize) -> BenchResult<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let delivered = deliveries
            .lock()
            .map_err(|_| "the consumer panicked")?
            .len();
        if delivered >= orders {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("only {delivered} of {orders} shipments delivered").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_until_booked(finance: &PgPool, orders: usize) -> BenchResult<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let booked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM journal_entries WHERE contract = 'order.shipped.v1'",
        )
        .fetch_one(finance)
        .await?;
        if usize::try_from(booked)? >= orders {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(
                format!("only {booked} of {orders} shipments booked after {PATIENCE:?}").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Order id -> commit time of the row `query` selects (`{ts}` becomes the
/// commit timestamp, or `recorded_at` when the server does not track them).
pub async fn commit_times(pool: &PgPool, query: &str) -> BenchResult<HashMap<Uuid, DateTime<Utc>>> {
    let tracked: String = sqlx::query_scalar("SELECT current_setting('track_commit_timestamp')")
        .fetch_one(pool)
        .await?;
    let ts = if tracked == "on" {
        "pg_xact_commit_timestamp(xmin)"
    } else {
        eprintln!("track_commit_timestamp is off: using recorded_at (before the commit)");
        "recorded_at"
    };
    let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(&query.replace("{ts}", ts))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().collect())
}

pub fn report(
    placed: &[Uuid],
    shipped: &HashMap<Uuid, DateTime<Utc>>,
    booked: Option<&HashMap<Uuid, DateTime<Utc>>>,
    delivered: &HashMap<Uuid, DateTime<Utc>>,
    placing: Duration,
    drained: Duration,
    max_backlog: u32,
) -> BenchResult<()> {
    let micros = |from: DateTime<Utc>, to: DateTime<Utc>| {
        u64::try_from((to - from).num_microseconds().unwrap_or(0).max(1)).unwrap_or(1)
    };
    let (mut total, mut relay, mut finance) = (
        latency_histogram(),
        latency_histogram(),
        latency_histogram(),
    );
    for order_id in placed {
        let (Some(shipped), Some(delivered)) = (shipped.get(order_id), delivered.get(order_id))
        else {
            return Err(format!("order {order_id} was not shipped and delivered").into());
        };
        relay.record(micros(*shipped, *delivered))?;
        if let Some(booked) = booked {
            let booked = booked
                .get(order_id)
                .ok_or_else(|| format!("order {order_id} was not booked"))?;
            total.record(micros(*shipped, *booked))?;
            finance.record(micros(*delivered, *booked))?;
        }
    }
    println!(
        "placed {} orders in {placing:.2?}; the last done {:.2?} after the first was placed",
        placed.len(),
        drained
    );
    if booked.is_some() {
        println!("largest Finance inbox backlog sampled: {max_backlog} messages");
    }
    for (what, histogram) in [
        (
            "relay: OrderShipped committed -> order.shipped.v1 delivered",
            &relay,
        ),
        ("OrderShipped committed -> journal entry committed", &total),
        ("Finance: delivered -> journal entry committed", &finance),
    ] {
        println!(
            "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} orders)",
            quantile_ms(histogram, 0.5),
            quantile_ms(histogram, 0.99),
            histogram.max() as f64 / 1000.0,
            histogram.len()
        );
        if booked.is_none() {
            break;
        }
    }
    Ok(())
}
