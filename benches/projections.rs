//! Projection benchmark: rebuild throughput, memory and end-to-end latency
//! of the subscription runtime, in one run.
//!
//! 1. Rebuild of the `stock` read model from N inventory events (N = 10^5
//!    and 10^6 by default), against the raw catch-up read rate of the same
//!    log: a plain paged `SELECT ... ORDER BY transaction_id, position LIMIT
//!    2000` that decodes each row into a `RecordedEvent`. Each N runs in a
//!    child process (this binary, re-executed), so its peak RSS (`VmHWM`)
//!    is its own: it must not grow with N. The child also reports how long
//!    the runtime's first catch-up of the seeded log took, itself a
//!    catch-up in bounded memory.
//! 2. End-to-end latency of the order choreography: from just before the
//!    place command is executed to the moment the order's `OrderPaid`
//!    event reaches a log subscriber, at 1 and at 200 orders/s, with the
//!    standard runtime (auto fulfilment, simulated gateway, `card_ok`).
//!
//! The seeded log is a realistic inventory history over 1,000 SKUs
//! (`inventory-SKU-0000` ...), interleaved as live traffic would be, in
//! cycles of five events per SKU: goods received, an order reserves part
//! of them and ships, another reserves and releases. It is written by one
//! `INSERT ... SELECT FROM generate_series(...)` in the exact JSON shape of
//! `InventoryEvent` (checked by decoding a sample before measuring).
//!
//! Environment:
//! - `DATABASE_URL`: use that server (fresh `bench_<uuid>` databases are
//!   created and dropped) instead of starting a private cluster;
//! - `BENCH_REBUILD_EVENTS`: the largest log for the rebuild (default
//!   1,000,000); the smaller one is a tenth of it;
//! - `BENCH_SECONDS`: seconds of order placement at each rate (default 10);
//! - `BENCH_LATENCY=0`: skip the latency part (rebuild figures only);
//! - `BENCH_REBUILD_BATCH`: the runtime's `rebuild_batch_size` for the
//!   rebuild (default: the runtime's default).

mod support;

use std::collections::HashMap;
use std::error::Error;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aggregates::inventory::{Inventory, InventoryCommand, InventoryEvent};
use aggregates::order::{Order, OrderCommand, OrderLine, PlaceOrder};
use aggregates::values::{Currency, PaymentMethod, Sku, Warehouse};
use aggregates::{stream_id, DomainEvent};
use commands::{CommandContext, CommandExecutor, ExecutorOptions};
use event_store::{
    EventStore, LogCursor, LogFilter, RecordedEvent, StoreOptions, SubscribeOptions,
};
use futures::StreamExt;
use hdrhistogram::Histogram;
use projections::operations::{rebuild_pending, rebuild_progress, request_rebuild};
use projections::read_models::stock::StockLevels;
use projections::runtime::{RuntimeOptions, Subscriber, SubscriptionRuntime};
use rand::Rng;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use uuid::Uuid;

use support::{
    bench_server, env_number, latency_histogram, micros, proc_status_kb, quantile_ms, thousands,
    wait_until_idle, with_database, yes_no, BenchResult, EVENT_COLUMNS,
};

/// Set in a child process: the number of events of its rebuild run.
const CHILD_EVENTS_VAR: &str = "ORDERSTREAM_BENCH_CHILD_EVENTS";
/// Set in a child process: the server it creates its database on.
const CHILD_URL_VAR: &str = "ORDERSTREAM_BENCH_CHILD_URL";
/// The line a child prints its figures on (JSON after the prefix).
const CHILD_RESULT_PREFIX: &str = "CHILD_RESULT ";

const DEFAULT_REBUILD_EVENTS: i64 = 1_000_000;
const SKUS: i64 = 1_000;
const RAW_PAGE: i64 = 2_000;
const POLL: Duration = Duration::from_millis(50);
const PROGRESS_EVERY: Duration = Duration::from_secs(15);

const LATENCY_RATES: [u32; 2] = [1, 200];
const LATENCY_SKUS: usize = 200;
/// After the last placement, orders have this long to be paid.
const DRAIN_PATIENCE: Duration = Duration::from_secs(30);
/// How long the runtime may take to catch up before a measurement.
const IDLE_PATIENCE: Duration = Duration::from_secs(120);

const REBUILD_RATIO_TARGET: f64 = 0.5;
/// Peak RSS at 10^6 events over 10^5: "must not grow" with room for noise.
const RSS_GROWTH_TARGET: f64 = 1.5;
const LATENCY_P99_TARGET: Duration = Duration::from_millis(50);

/// The seeded inventory log: `$1` events over `$2` SKUs, interleaved, each
/// SKU's stream in five-event cycles on one warehouse.
const SEED_SQL: &str = "\
INSERT INTO events (transaction_id, stream_id, stream_version, event_id, event_type, \
                    schema_version, data, metadata, correlation_id, causation_id, recorded_at) \
SELECT (SELECT log_epoch_offset()) + pg_current_xact_id()::text::bigint, 'inventory-' || c.sku, c.version, gen_random_uuid(), \
       (ARRAY['StockReceived', 'StockReserved', 'StockCommitted', 'StockReserved', \
              'StockReleased'])[c.phase + 1], \
       1, \
       CASE WHEN c.phase = 0 \
            THEN jsonb_build_object('sku', c.sku, 'warehouse', c.warehouse, 'quantity', 10) \
            ELSE jsonb_build_object('sku', c.sku, 'order_id', c.order_id, 'allocations', \
                     jsonb_build_array(jsonb_build_object('warehouse', c.warehouse, \
                                                          'quantity', c.quantity))) \
       END, \
       jsonb_build_object('correlation_id', c.order_id, 'causation_id', c.order_id, \
                          'actor', 'bench'), \
       c.order_id::text, c.order_id, clock_timestamp() \
  FROM generate_series(0, $1 - 1) AS i, \
       LATERAL (SELECT 'SKU-' || lpad((i % $2)::text, 4, '0') AS sku, \
                       i / $2 + 1 AS version, (i / $2) % 5 AS phase, \
                       (i / $2) / 5 AS cycle) AS b, \
       LATERAL (SELECT b.sku, b.version, b.phase, \
                       'wh-' || (b.cycle % 3) AS warehouse, \
                       CASE WHEN b.phase IN (1, 2) THEN 3 ELSE 2 END AS quantity, \
                       md5(b.sku || '/' || b.cycle || \
                           CASE WHEN b.phase IN (1, 2) THEN '/shipped' ELSE '/released' END \
                       )::uuid AS order_id) AS c";

fn main() -> BenchResult<()> {
    if let Ok(events) = std::env::var(CHILD_EVENTS_VAR) {
        return child_main(&events);
    }
    let largest = env_number("BENCH_REBUILD_EVENTS", DEFAULT_REBUILD_EVENTS)?.max(10 * SKUS);
    let seconds = env_number("BENCH_SECONDS", 10)?.max(1);

    // Started before the runtime: starting a cluster blocks.
    let (admin_url, cluster) = bench_server()?;

    let outcome = run_parent(&admin_url, largest, u64::try_from(seconds)?);
    // Dropping the cluster shuts the private server down and removes it.
    drop(cluster);

    let (rebuilds, latencies) = outcome?;
    print_results(&rebuilds, &latencies);
    Ok(())
}

fn run_parent(
    admin_url: &str,
    largest: i64,
    seconds: u64,
) -> BenchResult<(Vec<RebuildFigures>, Vec<LatencyFigures>)> {
    let mut rebuilds = Vec::new();
    for events in [largest / 10, largest] {
        let figures = run_child(admin_url, events)?;
        report_rebuild(&figures);
        rebuilds.push(figures);
    }

    if std::env::var("BENCH_LATENCY").is_ok_and(|value| value == "0") {
        return Ok((rebuilds, Vec::new()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let latencies = runtime.block_on(async {
        with_database(admin_url, |url, _options| async move {
            latency(&url, seconds).await
        })
        .await
    })?;
    Ok((rebuilds, latencies))
}

// ---------------------------------------------------------------------------
// Rebuild (in a child process per log length)
// ---------------------------------------------------------------------------

/// What a child measured, sent to the parent as JSON.
#[derive(Debug, Clone)]
struct RebuildFigures {
    events: i64,
    seed_seconds: f64,
    raw_rate: f64,
    catch_up_seconds: f64,
    rebuild_seconds: f64,
    /// When `rebuild_pending` first said false, seconds after the request.
    pending_cleared_seconds: f64,
    /// Resident set size (kB) after seeding, before anything is read.
    rss_before_kb: u64,
    /// Peak RSS (kB) after the raw read, the first catch-up, the rebuild.
    peak_after_raw_kb: u64,
    peak_after_catch_up_kb: u64,
    peak_after_rebuild_kb: u64,
}

impl RebuildFigures {
    fn to_json(&self) -> serde_json::Value {
        json!({
            "events": self.events,
            "seed_seconds": self.seed_seconds,
            "raw_rate": self.raw_rate,
            "catch_up_seconds": self.catch_up_seconds,
            "rebuild_seconds": self.rebuild_seconds,
            "pending_cleared_seconds": self.pending_cleared_seconds,
            "rss_before_kb": self.rss_before_kb,
            "peak_after_raw_kb": self.peak_after_raw_kb,
            "peak_after_catch_up_kb": self.peak_after_catch_up_kb,
            "peak_after_rebuild_kb": self.peak_after_rebuild_kb,
        })
    }

    fn from_json(value: &serde_json::Value) -> BenchResult<Self> {
        let number = |name: &str| {
            value[name]
                .as_f64()
                .ok_or_else(|| format!("the child's result has no {name}"))
        };
        let kb = |name: &str| {
            value[name]
                .as_u64()
                .ok_or_else(|| format!("the child's result has no {name}"))
        };
        Ok(RebuildFigures {
            events: value["events"]
                .as_i64()
                .ok_or("the child's result has no events")?,
            seed_seconds: number("seed_seconds")?,
            raw_rate: number("raw_rate")?,
            catch_up_seconds: number("catch_up_seconds")?,
            rebuild_seconds: number("rebuild_seconds")?,
            pending_cleared_seconds: number("pending_cleared_seconds")?,
            rss_before_kb: kb("rss_before_kb")?,
            peak_after_raw_kb: kb("peak_after_raw_kb")?,
            peak_after_catch_up_kb: kb("peak_after_catch_up_kb")?,
            peak_after_rebuild_kb: kb("peak_after_rebuild_kb")?,
        })
    }

    fn catch_up_rate(&self) -> f64 {
        self.events as f64 / self.catch_up_seconds
    }

    fn rebuild_rate(&self) -> f64 {
        self.events as f64 / self.rebuild_seconds
    }

    fn ratio(&self) -> f64 {
        self.rebuild_rate() / self.raw_rate
    }
}

/// Re-executes this binary for one log length and collects its figures.
fn run_child(admin_url: &str, events: i64) -> BenchResult<RebuildFigures> {
    eprintln!(
        "rebuild run with {} events (child process)...",
        thousands(events as f64)
    );
    let output = Command::new(std::env::current_exe()?)
        .env(CHILD_EVENTS_VAR, events.to_string())
        .env(CHILD_URL_VAR, admin_url)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("the child for {events} events failed: {}", output.status).into());
    }
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(CHILD_RESULT_PREFIX))
        .ok_or("the child printed no result")?;
    RebuildFigures::from_json(&serde_json::from_str(line)?)
}

fn child_main(events: &str) -> BenchResult<()> {
    let events: i64 = events.parse()?;
    let admin_url = std::env::var(CHILD_URL_VAR)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let figures = runtime.block_on(with_database(&admin_url, |url, options| async move {
        rebuild(&url, &options, events).await
    }))?;
    println!("{CHILD_RESULT_PREFIX}{}", figures.to_json());
    Ok(())
}

async fn rebuild(
    url: &str,
    options: &PgConnectOptions,
    events: i64,
) -> BenchResult<RebuildFigures> {
    let setup = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let seeding = Instant::now();
    sqlx::query(SEED_SQL)
        .bind(events)
        .bind(SKUS)
        .execute(&setup)
        .await?;
    // Hint bits and the visibility map, so the first reader does not pay
    // for writing them; then a checkpoint, so none lands mid-measurement.
    sqlx::query("VACUUM (ANALYZE) events")
        .execute(&setup)
        .await?;
    sqlx::query("CHECKPOINT").execute(&setup).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    eprintln!("  seeded in {seed_seconds:.1} s");
    check_seeded_shape(&setup).await?;
    let rss_before_kb = proc_status_kb("self", "VmRSS")?;

    // Two raw passes, best of both: the first may meet a colder cache.
    let raw = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let mut raw_rate = 0.0_f64;
    for _ in 0..2 {
        raw_rate = raw_rate.max(raw_catch_up(&raw, events).await?);
    }
    raw.close().await;
    eprintln!("  raw catch-up read: {} ev/s", thousands(raw_rate));
    let peak_after_raw_kb = proc_status_kb("self", "VmHWM")?;

    let store = EventStore::connect(url, &StoreOptions::default()).await?;
    let head = store.head().await?;
    let started = Instant::now();
    let defaults = RuntimeOptions::default();
    let runtime = SubscriptionRuntime::start_with(
        store.clone(),
        vec![Subscriber::Projection(Arc::new(StockLevels))],
        RuntimeOptions {
            rebuild_batch_size: env_number("BENCH_REBUILD_BATCH", defaults.rebuild_batch_size)?,
            ..defaults
        },
    );
    let mut last_report = Instant::now();
    while store.load_checkpoint("stock").await?.unwrap_or_default() < head {
        if last_report.elapsed() >= PROGRESS_EVERY {
            let at = store.load_checkpoint("stock").await?.unwrap_or_default();
            eprintln!(
                "  first catch-up: at position {} of {} after {:.0} s",
                thousands(at.position as f64),
                thousands(head.position as f64),
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
    let catch_up_seconds = started.elapsed().as_secs_f64();
    eprintln!("  first catch-up took {catch_up_seconds:.1} s");
    let peak_after_catch_up_kb = proc_status_kb("self", "VmHWM")?;

    let started = Instant::now();
    request_rebuild(&store, "stock").await?;
    // The end of the rebuild is the request's outcome turning to
    // "rebuilt" (set when the new tables are swapped in). `rebuild_pending`
    // is watched too but not trusted: it can turn false early (see
    // `pending_cleared_seconds`).
    let mut pending_cleared_seconds = None;
    let mut last_report = Instant::now();
    loop {
        if pending_cleared_seconds.is_none() && !rebuild_pending(&store, "stock").await? {
            pending_cleared_seconds = Some(started.elapsed().as_secs_f64());
        }
        match last_rebuild_outcome(&setup).await?.as_deref() {
            Some("rebuilt") => break,
            Some(outcome) if outcome.starts_with("failed") => {
                return Err(format!("the rebuild failed: {outcome}").into())
            }
            _ => {}
        }
        if last_report.elapsed() >= PROGRESS_EVERY {
            if let Some((done, total)) = rebuild_progress(&store, "stock").await? {
                eprintln!(
                    "  rebuild: {} of {} after {:.0} s",
                    thousands(done as f64),
                    thousands(total as f64),
                    started.elapsed().as_secs_f64()
                );
            }
            last_report = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
    let rebuild_seconds = started.elapsed().as_secs_f64();
    let peak_after_rebuild_kb = proc_status_kb("self", "VmHWM")?;
    runtime.shutdown().await;
    check_rebuilt(&setup, events).await?;
    eprintln!(
        "  rebuild took {rebuild_seconds:.1} s; rebuild_pending said false after {:.1} s",
        pending_cleared_seconds.unwrap_or(rebuild_seconds)
    );

    store.pool().close().await;
    setup.close().await;
    Ok(RebuildFigures {
        events,
        seed_seconds,
        raw_rate,
        catch_up_seconds,
        rebuild_seconds,
        pending_cleared_seconds: pending_cleared_seconds.unwrap_or(rebuild_seconds),
        rss_before_kb,
        peak_after_raw_kb,
        peak_after_catch_up_kb,
        peak_after_rebuild_kb,
    })
}

/// Decodes the first cycle of one SKU as the projection will: a seeding
/// mistake would otherwise show up as parked events, not as an error.
async fn check_seeded_shape(pool: &PgPool) -> BenchResult<()> {
    let sample: Vec<RecordedEvent> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = 'inventory-SKU-0001' \
         ORDER BY stream_version LIMIT 5"
    ))
    .fetch_all(pool)
    .await?;
    for event in &sample {
        let decoded = InventoryEvent::from_stored(
            &event.event_type,
            event.schema_version,
            event.data.clone(),
        )
        .map_err(|error| format!("seeded {} does not decode: {error}", event.event_type))?;
        if decoded.event_type() != event.event_type {
            return Err(format!("seeded {} decodes as {decoded:?}", event.event_type).into());
        }
    }
    Ok(())
}

/// The rebuild must have produced the right model, or its speed means
/// nothing: every SKU's every warehouse, the stock each cycle leaves
/// behind (10 received, 3 shipped), no reservation, nothing parked.
async fn check_rebuilt(pool: &PgPool, events: i64) -> BenchResult<()> {
    let outcome = last_rebuild_outcome(pool).await?;
    if outcome.as_deref() != Some("rebuilt") {
        return Err(format!("the rebuild ended with {outcome:?}").into());
    }
    let (rows, on_hand, reserved, parked): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(on_hand), 0)::bigint, coalesce(sum(reserved), 0)::bigint, \
                (SELECT count(*) FROM parked_events) \
           FROM stock_levels",
    )
    .fetch_one(pool)
    .await?;
    // Per SKU: full cycles leave 7 each; a partial one its own remainder.
    let expected_on_hand: i64 = (0..SKUS)
        .map(|sku| {
            let length = events / SKUS + i64::from(sku < events % SKUS);
            let partial = match length % 5 {
                0 => 0,
                1 | 2 => 10,
                _ => 7,
            };
            length / 5 * 7 + partial
        })
        .sum();
    if parked != 0 || on_hand != expected_on_hand {
        return Err(format!(
            "the rebuilt stock is wrong: {rows} rows, on hand {on_hand} (expected \
             {expected_on_hand}), reserved {reserved}, {parked} parked"
        )
        .into());
    }
    Ok(())
}

/// The outcome of the latest rebuild request of `stock`, once it has one.
async fn last_rebuild_outcome(pool: &PgPool) -> BenchResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT outcome FROM subscription_requests \
         WHERE subscription = 'stock' AND kind = 'rebuild' ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?
    .flatten())
}

/// Reads the whole log in pages, in the subscription's order, decoding
/// each row; events per second.
async fn raw_catch_up(pool: &PgPool, events: i64) -> BenchResult<f64> {
    let query = format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE transaction_id >= $1 AND (transaction_id, position) > ($1, $2) \
         ORDER BY transaction_id, position LIMIT $3"
    );
    let started = Instant::now();
    let mut after = LogCursor::START;
    let mut seen = 0_i64;
    let mut bytes = 0;
    loop {
        let page: Vec<RecordedEvent> = sqlx::query_as(&query)
            .bind(after.transaction_id)
            .bind(after.position)
            .bind(RAW_PAGE)
            .fetch_all(pool)
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.cursor();
        for event in &page {
            bytes += event.stream_id.len();
        }
        seen += page.len() as i64;
    }
    std::hint::black_box(bytes);
    if seen != events {
        return Err(format!("the raw read saw {seen} events, {events} were seeded").into());
    }
    Ok(seen as f64 / started.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------
// End-to-end latency
// ---------------------------------------------------------------------------

struct LatencyFigures {
    rate: u32,
    placed: u64,
    failed: u64,
    paid: u64,
    place_call: Histogram<u64>,
    reserved: Histogram<u64>,
    shipped: Histogram<u64>,
    paid_latency: Histogram<u64>,
    /// From the last placement until every order was paid (or we gave up).
    drain: Duration,
}

impl LatencyFigures {
    fn kept_up(&self) -> bool {
        self.failed == 0 && self.paid == self.placed
    }
}

async fn latency(url: &str, seconds: u64) -> BenchResult<Vec<LatencyFigures>> {
    let store = EventStore::connect(
        url,
        &StoreOptions {
            max_connections: 40,
            ..StoreOptions::default()
        },
    )
    .await?;
    let executor = CommandExecutor::new(store.clone(), ExecutorOptions::default());
    let skus = (0..LATENCY_SKUS)
        .map(|index| Sku::parse(format!("LAT-{index:03}")))
        .collect::<Result<Vec<_>, _>>()?;
    for sku in &skus {
        let command = InventoryCommand::Receive {
            sku: sku.clone(),
            warehouse: Warehouse::main(),
            quantity: 1_000_000,
        };
        executor
            .execute::<Inventory>(&stream_id::<Inventory>(sku), &command, &context())
            .await?;
    }
    let runtime = SubscriptionRuntime::start(executor.clone(), RuntimeOptions::default());
    wait_until_idle(&store, IDLE_PATIENCE).await?;

    let mut results = Vec::new();
    for rate in LATENCY_RATES {
        let figures = latency_at(&executor, &skus, rate, Duration::from_secs(seconds)).await?;
        report_latency(&figures);
        results.push(figures);
        wait_until_idle(&store, IDLE_PATIENCE).await?;
    }
    runtime.shutdown().await;
    store.pool().close().await;
    Ok(results)
}

fn context() -> CommandContext {
    CommandContext::from_request(Uuid::new_v4(), "bench")
}

/// Per order: when its placement started.
type Started = Arc<Mutex<HashMap<Uuid, Instant>>>;

/// Places orders at `rate` per second for `run_for`, each in its own task,
/// and follows them through the log until each is paid.
async fn latency_at(
    executor: &CommandExecutor,
    skus: &[Sku],
    rate: u32,
    run_for: Duration,
) -> BenchResult<LatencyFigures> {
    let store = executor.store().clone();
    let started_at: Started = Arc::default();
    let placed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));

    let mut subscription = store.subscribe(
        store.head().await?,
        SubscribeOptions {
            filter: LogFilter::Category("order".into()),
            ..SubscribeOptions::default()
        },
    );
    let (placing_done, mut placing_done_rx) = tokio::sync::watch::channel(None::<Instant>);
    let follower = tokio::spawn({
        let started_at = started_at.clone();
        let placed = placed.clone();
        let failed = failed.clone();
        async move {
            let mut reserved = latency_histogram();
            let mut shipped = latency_histogram();
            let mut paid = latency_histogram();
            loop {
                let done = *placing_done_rx.borrow_and_update();
                if let Some(done) = done {
                    let open = placed.load(Ordering::SeqCst) - failed.load(Ordering::SeqCst);
                    if paid.len() >= open || done.elapsed() > DRAIN_PATIENCE {
                        return Ok::<_, Box<dyn Error + Send + Sync>>((
                            reserved,
                            shipped,
                            paid,
                            done.elapsed(),
                        ));
                    }
                }
                let event = tokio::select! {
                    event = subscription.next() => event.ok_or("the subscription ended")?,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    _ = placing_done_rx.changed() => continue,
                };
                let now = Instant::now();
                let histogram = match event.event_type.as_str() {
                    "OrderReserved" => &mut reserved,
                    "OrderShipped" => &mut shipped,
                    "OrderPaid" => &mut paid,
                    _ => continue,
                };
                let Some(order_id) = event
                    .stream_id
                    .strip_prefix("order-")
                    .and_then(|id| Uuid::parse_str(id).ok())
                else {
                    continue;
                };
                let start = started_at
                    .lock()
                    .map_err(|_| "the start-time map is poisoned")?
                    .get(&order_id)
                    .copied();
                if let Some(start) = start {
                    histogram.record(micros(now - start))?;
                }
            }
        }
    });

    let total = u64::from(rate) * run_for.as_secs();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let place_calls = Arc::new(Mutex::new(latency_histogram()));
    let mut placements = Vec::new();
    for _ in 0..total {
        ticks.tick().await;
        let executor = executor.clone();
        let command = random_order(skus);
        let started_at = started_at.clone();
        let placed = placed.clone();
        let failed = failed.clone();
        let place_calls = place_calls.clone();
        placements.push(tokio::spawn(async move {
            let OrderCommand::Place(order) = &command else {
                return Ok::<_, Box<dyn Error + Send + Sync>>(());
            };
            let stream = stream_id::<Order>(order.order_id);
            let start = Instant::now();
            started_at
                .lock()
                .map_err(|_| "the start-time map is poisoned")?
                .insert(order.order_id, start);
            placed.fetch_add(1, Ordering::SeqCst);
            match executor
                .execute::<Order>(&stream, &command, &context())
                .await
            {
                Ok(_) => {
                    place_calls
                        .lock()
                        .map_err(|_| "the histogram is poisoned")?
                        .record(micros(start.elapsed()))?;
                }
                Err(error) => {
                    failed.fetch_add(1, Ordering::SeqCst);
                    eprintln!("placing an order failed: {error}");
                }
            }
            Ok(())
        }));
    }
    for placement in placements {
        placement.await??;
    }
    placing_done.send(Some(Instant::now()))?;
    let (reserved, shipped, paid_latency, drain) = follower.await??;
    let place_call = place_calls
        .lock()
        .map_err(|_| "the histogram is poisoned")?
        .clone();
    Ok(LatencyFigures {
        rate,
        placed: placed.load(Ordering::SeqCst),
        failed: failed.load(Ordering::SeqCst),
        paid: paid_latency.len(),
        place_call,
        reserved,
        shipped,
        paid_latency,
        drain,
    })
}

/// One or two lines of random SKUs, paid by `card_ok`.
fn random_order(skus: &[Sku]) -> OrderCommand {
    let mut rng = rand::thread_rng();
    let lines = rng.gen_range(1..=2);
    let mut chosen: Vec<&Sku> = Vec::new();
    while chosen.len() < lines {
        let sku = &skus[rng.gen_range(0..skus.len())];
        if !chosen.contains(&sku) {
            chosen.push(sku);
        }
    }
    let order_id = Uuid::new_v4();
    OrderCommand::Place(PlaceOrder {
        order_id,
        customer_id: format!("customer-{}", rng.gen_range(0..10_000)),
        currency: Currency::Usd,
        lines: chosen
            .into_iter()
            .map(|sku| OrderLine {
                sku: sku.clone(),
                quantity: rng.gen_range(1..=3),
                unit_price: rust_decimal::Decimal::new(rng.gen_range(100..10_000), 2),
            })
            .collect(),
        payment_method: PaymentMethod::CardOk,
    })
}

// ---------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------

fn report_rebuild(figures: &RebuildFigures) {
    println!(
        "rebuild of stock from {} events: {} ev/s, raw catch-up read {} ev/s, ratio {:.3}; \
         first catch-up {:.1} s ({} ev/s); peak RSS {} MiB (after seeding {} MiB)",
        thousands(figures.events as f64),
        thousands(figures.rebuild_rate()),
        thousands(figures.raw_rate),
        figures.ratio(),
        figures.catch_up_seconds,
        thousands(figures.catch_up_rate()),
        mib(figures.peak_after_rebuild_kb),
        mib(figures.rss_before_kb),
    );
}

fn report_latency(figures: &LatencyFigures) {
    println!(
        "latency at {}/s: {} placed, {} failed, {} paid; placed to paid p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms; reserved p50 {:.1} / p99 {:.1} ms, shipped p50 {:.1} / \
         p99 {:.1} ms; place call p50 {:.1} / p99 {:.1} ms; drained {:.1} s after the last placement",
        figures.rate,
        figures.placed,
        figures.failed,
        figures.paid,
        quantile_ms(&figures.paid_latency, 0.5),
        quantile_ms(&figures.paid_latency, 0.99),
        quantile_ms(&figures.paid_latency, 1.0),
        quantile_ms(&figures.reserved, 0.5),
        quantile_ms(&figures.reserved, 0.99),
        quantile_ms(&figures.shipped, 0.5),
        quantile_ms(&figures.shipped, 0.99),
        quantile_ms(&figures.place_call, 0.5),
        quantile_ms(&figures.place_call, 0.99),
        figures.drain.as_secs_f64(),
    );
}

fn print_results(rebuilds: &[RebuildFigures], latencies: &[LatencyFigures]) {
    println!();
    println!("== results ==");
    println!("| figure | value | target | met? |");
    println!("|---|---|---|---|");
    for figures in rebuilds {
        let events = thousands(figures.events as f64);
        println!(
            "| rebuild of `stock`, {events} events | {} ev/s vs raw read {} ev/s: ratio {:.3} \
             ({:.1} s) | ratio >= {REBUILD_RATIO_TARGET} | {} |",
            thousands(figures.rebuild_rate()),
            thousands(figures.raw_rate),
            figures.ratio(),
            figures.rebuild_seconds,
            yes_no(figures.ratio() >= REBUILD_RATIO_TARGET),
        );
        println!(
            "| first catch-up of `stock`, {events} events | {:.1} s, {} ev/s | (none) | |",
            figures.catch_up_seconds,
            thousands(figures.catch_up_rate()),
        );
        println!(
            "| peak RSS, {events} events | {} MiB (after seeding {} MiB, raw read {} MiB, \
             first catch-up {} MiB) | flat in N | |",
            mib(figures.peak_after_rebuild_kb),
            mib(figures.rss_before_kb),
            mib(figures.peak_after_raw_kb),
            mib(figures.peak_after_catch_up_kb),
        );
    }
    if let [small, large] = rebuilds {
        let growth = large.peak_after_rebuild_kb as f64 / small.peak_after_rebuild_kb as f64;
        println!(
            "| peak RSS growth, {} / {} events | {growth:.2}x | <= {RSS_GROWTH_TARGET}x (flat) | {} |",
            thousands(large.events as f64),
            thousands(small.events as f64),
            yes_no(growth <= RSS_GROWTH_TARGET),
        );
    }
    for figures in latencies {
        let p99 = Duration::from_micros(figures.paid_latency.value_at_quantile(0.99));
        let (target, met) = if figures.rate >= 200 {
            (
                format!("p99 < {} ms, all paid", LATENCY_P99_TARGET.as_millis()),
                yes_no(p99 < LATENCY_P99_TARGET && figures.kept_up()),
            )
        } else {
            ("(none)".to_owned(), "")
        };
        println!(
            "| placed to paid at {}/s ({} orders, {} paid) | p50 {:.1} ms, p99 {:.1} ms, \
             max {:.1} ms | {target} | {met} |",
            figures.rate,
            figures.placed,
            figures.paid,
            quantile_ms(&figures.paid_latency, 0.5),
            quantile_ms(&figures.paid_latency, 0.99),
            quantile_ms(&figures.paid_latency, 1.0),
        );
    }
}

fn mib(kb: u64) -> String {
    format!("{:.0}", kb as f64 / 1024.0)
}
