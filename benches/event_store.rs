//! Event-store benchmark: what the store's guarantees cost over raw SQL.
//!
//! In one run, against one PostgreSQL server and one fresh database, it
//! measures:
//!
//! 1. single-event appends to new streams (`ExpectedVersion::NoStream`) with
//!    1, 16 and 64 concurrent tasks, against a plain autocommit `INSERT` of
//!    the same row with the same concurrency;
//! 2. 100-event appends to one new stream each, against a plain multi-row
//!    `INSERT ... SELECT FROM unnest(...)` of the same 100 rows;
//! 3. a catch-up read of the log through `subscribe`, against a plain paged
//!    `SELECT ... WHERE position > $1 ORDER BY position LIMIT 1000` loop that
//!    decodes the same columns;
//! 4. append-to-subscriber latency (p50 and p99) for a live subscriber.
//!
//! Absolute numbers depend on the machine, the disk and whatever else runs
//! there, so each throughput is printed with its ratio to a raw-SQL baseline
//! measured moments before or after on the same server, the same table
//! shape and the same row content: the ratio is the store's own overhead
//! (the version check, the advisory lock, the idempotency check, the
//! gap-free read order, wake-ups), and it is what the targets are about.
//!
//! Baselines write to `raw_events`, a copy of `events` with the same
//! columns, identity, constraints and indexes but no triggers.
//!
//! Environment:
//! - `DATABASE_URL`: use that server (a fresh `bench_<uuid>` database is
//!   created and dropped) instead of starting a private cluster;
//! - `BENCH_CATCHUP_EVENTS`: events for the catch-up read (default 1,000,000);
//! - `BENCH_SECONDS`: seconds per throughput measurement (default 3).

mod support;

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_store::{
    EventMetadata, EventStore, ExpectedVersion, LogCursor, NewEvent, RecordedEvent, StoreOptions,
    SubscribeOptions,
};
use futures::StreamExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use uuid::Uuid;

use support::{
    bench_server, env_number, latency_histogram, micros, millis, quantile_ms, sample_event_data,
    thousands, with_database, BenchResult, EVENT_COLUMNS,
};

const SINGLE_CONCURRENCY: [usize; 3] = [1, 16, 64];
const BATCH_CONCURRENCY: [usize; 2] = [1, 16];
const BATCH_SIZE: usize = 100;
const DEFAULT_CATCHUP_EVENTS: i64 = 1_000_000;
const PAGE_SIZE: i64 = 1000;
const WARMUP: Duration = Duration::from_millis(500);
const LATENCY_RATE_PER_SECOND: u64 = 200;
const LATENCY_DURATION: Duration = Duration::from_secs(5);

const APPEND_TARGET: f64 = 0.8;
const CATCHUP_TARGET: f64 = 0.7;
const LATENCY_P99_TARGET: Duration = Duration::from_millis(10);

/// The columns an insert names (all but the identity `position`); a macro
/// so that statements can be `concat!`ed into constants.
macro_rules! insert_columns {
    () => {
        "transaction_id, stream_id, stream_version, event_id, event_type, \
         schema_version, data, metadata, correlation_id, causation_id, recorded_at"
    };
}

/// The same row as a single-event append writes.
const RAW_SINGLE_INSERT: &str = concat!(
    "INSERT INTO raw_events (",
    insert_columns!(),
    ") VALUES (pg_current_xact_id()::text::bigint, $1, 1, $2, $3, $4, $5, $6, $7, $8, \
       clock_timestamp()) RETURNING position"
);

/// The same rows as a 100-event append writes.
const RAW_BATCH_INSERT: &str = concat!(
    "INSERT INTO raw_events (",
    insert_columns!(),
    ") SELECT pg_current_xact_id()::text::bigint, $1, n.ordinal, n.event_id, n.event_type, \
              n.schema_version, n.data, n.metadata, n.correlation_id, n.causation_id, \
              clock_timestamp() \
         FROM unnest($2::uuid[], $3::text[], $4::int[], $5::jsonb[], $6::jsonb[], \
                     $7::text[], $8::uuid[]) WITH ORDINALITY \
              AS n(event_id, event_type, schema_version, data, metadata, \
                   correlation_id, causation_id, ordinal)"
);

fn main() -> BenchResult<()> {
    let catchup_events = env_number("BENCH_CATCHUP_EVENTS", DEFAULT_CATCHUP_EVENTS)?;
    let seconds = env_number("BENCH_SECONDS", 3)?;
    let config = Config {
        run_for: Duration::from_secs(u64::try_from(seconds.max(1))?),
        catchup_events: catchup_events.max(PAGE_SIZE),
    };

    // Started before the runtime: starting a cluster blocks.
    let (admin_url, cluster) = bench_server()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(run(&admin_url, &config));
    drop(runtime);
    // Dropping the cluster shuts the private server down and removes it.
    drop(cluster);

    let rows = outcome?;
    println!();
    println!("== results ==");
    for row in &rows {
        println!("{row}");
    }
    Ok(())
}

struct Config {
    run_for: Duration,
    catchup_events: i64,
}

/// Runs every measurement on a fresh database.
async fn run(admin_url: &str, config: &Config) -> BenchResult<Vec<String>> {
    with_database(admin_url, |url, options| async move {
        run_in(&url, &options, config).await
    })
    .await
}

async fn run_in(
    url: &str,
    options: &PgConnectOptions,
    config: &Config,
) -> BenchResult<Vec<String>> {
    let setup = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.clone())
        .await?;
    create_raw_table(&setup).await?;

    let mut results = Vec::new();

    for tasks in SINGLE_CONCURRENCY {
        let store = store_with_pool(url, tasks).await?;
        let raw = raw_pool(options, tasks).await?;
        checkpoint(&setup).await?;
        let store_rate = measure(tasks, config.run_for, {
            let store = store.clone();
            move || store_single_append(store.clone())
        })
        .await?;
        checkpoint(&setup).await?;
        let raw_rate = measure(tasks, config.run_for, {
            let raw = raw.clone();
            move || raw_single_insert(raw.clone())
        })
        .await?;
        results.push(ratio_line(
            &format!("single-event appends, {tasks} tasks"),
            store_rate,
            raw_rate,
            "ev/s",
            (tasks > 1).then_some(APPEND_TARGET),
        ));
        report(results.last());
        store.pool().close().await;
        raw.close().await;
    }

    for tasks in BATCH_CONCURRENCY {
        let store = store_with_pool(url, tasks).await?;
        let raw = raw_pool(options, tasks).await?;
        checkpoint(&setup).await?;
        let store_rate = measure(tasks, config.run_for, {
            let store = store.clone();
            move || store_batch_append(store.clone())
        })
        .await?;
        checkpoint(&setup).await?;
        let raw_rate = measure(tasks, config.run_for, {
            let raw = raw.clone();
            move || raw_batch_insert(raw.clone())
        })
        .await?;
        results.push(ratio_line(
            &format!("{BATCH_SIZE}-event appends, {tasks} tasks"),
            store_rate,
            raw_rate,
            "ev/s",
            Some(APPEND_TARGET),
        ));
        report(results.last());
        store.pool().close().await;
        raw.close().await;
    }

    results.push(catch_up(url, options, &setup, config.catchup_events).await?);
    report(results.last());

    results.push(latency(url).await?);
    report(results.last());

    setup.close().await;
    Ok(results)
}

fn report(line: Option<&String>) {
    if let Some(line) = line {
        println!("{line}");
    }
}

/// `raw_events`: `events`' columns, identity, constraints and indexes, but
/// none of its triggers (`LIKE` never copies triggers). Checked, since the
/// comparison is only fair if the copy is complete.
async fn create_raw_table(pool: &PgPool) -> BenchResult<()> {
    sqlx::query("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await?;
    let identity: String = sqlx::query_scalar(
        "SELECT attidentity::text FROM pg_attribute \
         WHERE attrelid = 'raw_events'::regclass AND attname = 'position'",
    )
    .fetch_one(pool)
    .await?;
    let index_count = |table: &'static str| {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_indexes WHERE tablename = $1")
            .bind(table)
            .fetch_one(pool)
    };
    let (events_indexes, raw_indexes) = (
        index_count("events").await?,
        index_count("raw_events").await?,
    );
    let raw_triggers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'raw_events'::regclass",
    )
    .fetch_one(pool)
    .await?;
    if identity != "a" || events_indexes != raw_indexes || raw_triggers != 0 {
        return Err(format!(
            "raw_events is not a faithful copy of events: identity {identity:?}, \
             {raw_indexes} indexes (events has {events_indexes}), {raw_triggers} triggers"
        )
        .into());
    }
    eprintln!("raw_events: identity position, {raw_indexes} indexes like events, no triggers");
    Ok(())
}

/// Flushes dirty buffers so a checkpoint does not land in the middle of the
/// next measurement more often for one side than the other.
async fn checkpoint(pool: &PgPool) -> BenchResult<()> {
    sqlx::query("CHECKPOINT").execute(pool).await?;
    Ok(())
}

async fn store_with_pool(url: &str, connections: usize) -> BenchResult<EventStore> {
    let options = StoreOptions {
        max_connections: u32::try_from(connections)?,
        ..StoreOptions::default()
    };
    Ok(EventStore::connect(url, &options).await?)
}

async fn raw_pool(options: &PgConnectOptions, connections: usize) -> BenchResult<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(u32::try_from(connections)?)
        .connect_with(options.clone())
        .await?)
}

/// A realistic event: ~150 bytes of data, a correlation id and an actor.
fn sample_event() -> NewEvent {
    let order_id = Uuid::new_v4();
    let data = sample_event_data(order_id);
    NewEvent::new("OrderLineAdded", data).with_metadata(EventMetadata {
        correlation_id: Some(Uuid::new_v4().into()),
        causation_id: None,
        actor: Some("bench".into()),
        traceparent: None,
    })
}

fn new_stream_id() -> String {
    format!("order-{}", Uuid::new_v4())
}

/// One unit of work: returns the number of events it wrote.
type Work = std::pin::Pin<Box<dyn std::future::Future<Output = BenchResult<u64>> + Send>>;

/// Runs `tasks` copies of `work` in a loop, first for a short warm-up, then
/// for `run_for`; returns events per second over the measured part (until
/// the last in-flight unit ends).
async fn measure<F>(tasks: usize, run_for: Duration, work: F) -> BenchResult<f64>
where
    F: Fn() -> Work + Clone + Send + 'static,
{
    run_workers(tasks, WARMUP, work.clone()).await?;
    let started = Instant::now();
    let events = run_workers(tasks, run_for, work).await?;
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

async fn run_workers<F>(tasks: usize, run_for: Duration, work: F) -> BenchResult<u64>
where
    F: Fn() -> Work + Clone + Send + 'static,
{
    let deadline = Instant::now() + run_for;
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let work = work.clone();
            tokio::spawn(async move {
                let mut events = 0;
                while Instant::now() < deadline {
                    events += work().await?;
                }
                Ok::<u64, Box<dyn Error + Send + Sync>>(events)
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await??;
    }
    Ok(total)
}

fn store_single_append(store: EventStore) -> Work {
    Box::pin(async move {
        store
            .append_to_stream(
                &new_stream_id(),
                ExpectedVersion::NoStream,
                vec![sample_event()],
            )
            .await?;
        Ok(1)
    })
}

fn raw_single_insert(pool: PgPool) -> Work {
    Box::pin(async move {
        let event = sample_event();
        let metadata = serde_json::to_value(&event.metadata)?;
        sqlx::query_scalar::<_, i64>(RAW_SINGLE_INSERT)
            .bind(new_stream_id())
            .bind(event.event_id)
            .bind(&event.event_type)
            .bind(event.schema_version)
            .bind(&event.data)
            .bind(&metadata)
            .bind(&event.metadata.correlation_id)
            .bind(event.metadata.causation_id)
            .fetch_one(&pool)
            .await?;
        Ok(1)
    })
}

fn store_batch_append(store: EventStore) -> Work {
    Box::pin(async move {
        let events = (0..BATCH_SIZE).map(|_| sample_event()).collect();
        store
            .append_to_stream(&new_stream_id(), ExpectedVersion::NoStream, events)
            .await?;
        Ok(BATCH_SIZE as u64)
    })
}

fn raw_batch_insert(pool: PgPool) -> Work {
    Box::pin(async move {
        let events: Vec<NewEvent> = (0..BATCH_SIZE).map(|_| sample_event()).collect();
        let mut event_ids = Vec::with_capacity(BATCH_SIZE);
        let mut event_types = Vec::with_capacity(BATCH_SIZE);
        let mut schema_versions = Vec::with_capacity(BATCH_SIZE);
        let mut data = Vec::with_capacity(BATCH_SIZE);
        let mut metadata = Vec::with_capacity(BATCH_SIZE);
        let mut correlation_ids = Vec::with_capacity(BATCH_SIZE);
        let mut causation_ids = Vec::with_capacity(BATCH_SIZE);
        for event in events {
            metadata.push(serde_json::to_value(&event.metadata)?);
            event_ids.push(event.event_id);
            event_types.push(event.event_type);
            schema_versions.push(event.schema_version);
            data.push(event.data);
            correlation_ids.push(event.metadata.correlation_id);
            causation_ids.push(event.metadata.causation_id);
        }
        sqlx::query(RAW_BATCH_INSERT)
            .bind(new_stream_id())
            .bind(&event_ids)
            .bind(&event_types)
            .bind(&schema_versions)
            .bind(&data)
            .bind(&metadata)
            .bind(&correlation_ids)
            .bind(&causation_ids)
            .execute(&pool)
            .await?;
        Ok(BATCH_SIZE as u64)
    })
}

/// Seeds `count` events in one statement, then reads them back both ways.
async fn catch_up(
    url: &str,
    options: &PgConnectOptions,
    setup: &PgPool,
    count: i64,
) -> BenchResult<String> {
    let store = store_with_pool(url, 4).await?;
    let from = store.head().await?;
    let from_position: i64 =
        sqlx::query_scalar("SELECT coalesce(max(position), 0)::bigint FROM events")
            .fetch_one(setup)
            .await?;
    eprintln!(
        "seeding {} events for the catch-up read...",
        thousands(count as f64)
    );
    let seeding = Instant::now();
    sqlx::query(concat!(
        "INSERT INTO events (",
        insert_columns!(),
        ") SELECT (SELECT log_epoch_offset()) + pg_current_xact_id()::text::bigint, \
                'cart-' || (i / 10), (i % 10) + 1, gen_random_uuid(), 'CartItemAdded', 1, \
                jsonb_build_object( \
                    'cart_id', md5((i / 10)::text)::uuid, \
                    'customer_id', 'customer-' || (i % 50000), \
                    'sku', 'SKU-' || lpad((i % 9973)::text, 6, '0'), \
                    'quantity', i % 7 + 1, \
                    'unit_price', ((i % 5000) / 100.0)::text, \
                    'currency', 'EUR', \
                    'warehouse', 'wh-' || (i % 3)), \
                jsonb_build_object('correlation_id', md5((i / 10)::text)::uuid, 'actor', 'bench'), \
                md5((i / 10)::text)::uuid::text, NULL, clock_timestamp() \
           FROM generate_series(0, $1 - 1) AS i"
    ))
    .bind(count)
    .execute(setup)
    .await?;
    // Sets hint bits and the visibility map, so the first reader does not
    // pay for writing them.
    sqlx::query("VACUUM (ANALYZE) events")
        .execute(setup)
        .await?;
    eprintln!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    let raw = raw_pool(options, 1).await?;
    // Two alternating rounds, best of each: the first pass over a cold
    // table would otherwise penalise whichever side goes first.
    let mut store_best = 0.0_f64;
    let mut raw_best = 0.0_f64;
    for _round in 0..2 {
        raw_best = raw_best.max(raw_catch_up(&raw, from_position, count).await?);
        store_best = store_best.max(store_catch_up(&store, from, count).await?);
    }
    raw.close().await;
    store.pool().close().await;
    Ok(ratio_line(
        &format!("catch-up read of {} events", thousands(count as f64)),
        store_best,
        raw_best,
        "ev/s",
        Some(CATCHUP_TARGET),
    ))
}

async fn store_catch_up(store: &EventStore, from: LogCursor, count: i64) -> BenchResult<f64> {
    let started = Instant::now();
    let mut subscription = store.subscribe(from, SubscribeOptions::default());
    let mut seen = 0;
    let mut bytes = 0;
    while seen < count {
        let event = subscription
            .next()
            .await
            .ok_or("the subscription ended before the catch-up was done")?;
        bytes += event.stream_id.len();
        seen += 1;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    drop(subscription);
    std::hint::black_box(bytes);
    Ok(rate)
}

async fn raw_catch_up(pool: &PgPool, from_position: i64, count: i64) -> BenchResult<f64> {
    let started = Instant::now();
    let query = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
    );
    let mut after = from_position;
    let mut seen = 0;
    let mut bytes = 0;
    while seen < count {
        let page: Vec<RecordedEvent> = sqlx::query_as(&query)
            .bind(after)
            .bind(PAGE_SIZE)
            .fetch_all(pool)
            .await?;
        let last = page.last().ok_or("the raw read ran out of events")?;
        after = last.position;
        for event in &page {
            bytes += event.stream_id.len();
        }
        seen += page.len() as i64;
    }
    std::hint::black_box(bytes);
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// A live subscriber and one appender at a modest rate: the time from just
/// before `append_to_stream` to the subscriber holding the event.
async fn latency(url: &str) -> BenchResult<String> {
    let store = store_with_pool(url, 4).await?;
    let from = store.head().await?;
    let started_at: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let total = LATENCY_RATE_PER_SECOND * LATENCY_DURATION.as_secs();

    let mut subscription = store.subscribe(from, SubscribeOptions::default());
    let subscriber = tokio::spawn({
        let started_at = started_at.clone();
        async move {
            let mut histogram = latency_histogram();
            let mut received = 0;
            while received < total {
                let event = tokio::time::timeout(Duration::from_secs(10), subscription.next())
                    .await
                    .map_err(|_| "no event reached the subscriber for 10 s")?
                    .ok_or("the subscription ended")?;
                let now = Instant::now();
                let start = started_at
                    .lock()
                    .map_err(|_| "the start-time map is poisoned")?
                    .remove(&event.event_id)
                    .ok_or("the subscriber saw an event nobody appended")?;
                histogram.record(micros(now - start))?;
                received += 1;
            }
            Ok::<_, Box<dyn Error + Send + Sync>>(histogram)
        }
    });

    let mut ticks = tokio::time::interval(Duration::from_secs(1) / LATENCY_RATE_PER_SECOND as u32);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // How long the append call itself takes, to tell a slow append from
    // a slow delivery.
    let mut append_histogram = latency_histogram();
    for _ in 0..total {
        ticks.tick().await;
        let event = sample_event();
        let start = Instant::now();
        started_at
            .lock()
            .map_err(|_| "the start-time map is poisoned")?
            .insert(event.event_id, start);
        store
            .append_to_stream(&new_stream_id(), ExpectedVersion::NoStream, vec![event])
            .await?;
        append_histogram.record(micros(start.elapsed()))?;
    }
    let histogram = subscriber.await??;
    store.pool().close().await;

    let p50 = Duration::from_micros(histogram.value_at_quantile(0.50));
    let p99 = Duration::from_micros(histogram.value_at_quantile(0.99));
    let max = Duration::from_micros(histogram.max());
    Ok(format!(
        "append-to-subscriber latency, {total} events at {LATENCY_RATE_PER_SECOND}/s: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < {} ms: {}); \
         the append call alone: p50 {:.2} ms, p99 {:.2} ms",
        millis(p50),
        millis(p99),
        millis(max),
        LATENCY_P99_TARGET.as_millis(),
        if p99 < LATENCY_P99_TARGET {
            "met"
        } else {
            "MISSED"
        },
        quantile_ms(&append_histogram, 0.50),
        quantile_ms(&append_histogram, 0.99),
    ))
}

fn ratio_line(label: &str, store: f64, raw: f64, unit: &str, target: Option<f64>) -> String {
    let ratio = store / raw;
    let verdict = match target {
        Some(target) if ratio >= target => format!(" (target >= {target}: met)"),
        Some(target) => format!(" (target >= {target}: MISSED)"),
        None => String::new(),
    };
    format!(
        "{label}: store {} {unit}, raw {} {unit}, ratio {ratio:.2}{verdict}",
        thousands(store),
        thousands(raw),
    )
}
