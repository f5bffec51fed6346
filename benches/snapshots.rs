//! Snapshot benchmark: loading a long inventory stream with and without
//! snapshots, in one run.
//!
//! For each stream length (1,000, 10,000 and 100,000 events by default) it
//! seeds one `inventory-*` stream, saves a snapshot of its state 7 events
//! before the end, then measures the mean time of
//! `CommandExecutor::load::<Inventory>` with an executor that reads
//! snapshots (`snapshot_every: Some(..)`: latest snapshot plus the 7 later
//! events) and with one that does not (`None`: a fold of every event). It
//! prints both, their ratio, and how flat the snapshot load stays from the
//! shortest stream to the longest (target: within 2x).
//!
//! The stream is a realistic mix, in cycles of five events on one
//! warehouse: goods received, an order reserves part of them and ships,
//! another reserves and releases. The state stays small (three warehouses,
//! no open reservation at a cycle's end), as a real SKU's does.
//!
//! Environment:
//! - `DATABASE_URL`: use that server (a fresh `bench_<uuid>` database is
//!   created and dropped) instead of starting a private cluster;
//! - `BENCH_SNAPSHOT_SIZES`: stream lengths separated by spaces (default
//!   `1000 10000 100000`);
//! - `BENCH_LOADS`: loads with snapshots per stream, spread over 10
//!   interleaved rounds (default 500); loads without snapshots are at most
//!   as many, and fewer for long streams (10 of the 100,000-event stream).

mod support;

use std::time::{Duration, Instant};

use aggregates::inventory::{Allocation, Inventory, InventoryEvent};
use aggregates::values::{Sku, Warehouse};
use aggregates::{stream_id, Aggregate, EncodedEvent};
use commands::{CommandExecutor, ExecutorOptions};
use event_store::{EventMetadata, EventStore, ExpectedVersion, NewEvent, Snapshot, StoreOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use uuid::Uuid;

use support::{bench_server, env_number, millis, thousands, with_database, BenchResult};

const DEFAULT_SIZES: [i64; 3] = [1_000, 10_000, 100_000];
/// Events per seeding append: big batches keep seeding 100,000 events to a
/// few seconds.
const SEED_BATCH: i64 = 5_000;
/// The snapshot is this many events behind the stream's end, so a load
/// with snapshots folds a few events too, as it usually would.
const SNAPSHOT_LAG: i64 = 7;
/// A load without snapshots takes about this many events' worth of reads
/// per measurement, so the 100,000-event stream is loaded only a few times.
const UNSNAPSHOTTED_EVENT_BUDGET: i64 = 1_000_000;
const MIN_LOADS: i64 = 5;
const WARMUP_LOADS: i64 = 3;
/// Rounds over which the loads with snapshots are interleaved.
const ROUNDS: i64 = 10;

/// Load time with snapshots at the longest stream over the shortest.
const FLATNESS_TARGET: f64 = 2.0;

fn main() -> BenchResult<()> {
    let sizes = env_sizes()?;
    let loads = env_number("BENCH_LOADS", 500)?.max(1);

    // Started before the runtime: starting a cluster blocks.
    let (admin_url, cluster) = bench_server()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(run(&admin_url, &sizes, loads));
    drop(runtime);
    // Dropping the cluster shuts the private server down and removes it.
    drop(cluster);

    print_results(&outcome?);
    Ok(())
}

fn env_sizes() -> BenchResult<Vec<i64>> {
    let Ok(value) = std::env::var("BENCH_SNAPSHOT_SIZES") else {
        return Ok(DEFAULT_SIZES.to_vec());
    };
    let mut sizes = value
        .split_whitespace()
        .map(|size| {
            size.replace('_', "")
                .parse::<i64>()
                .map_err(|error| format!("BENCH_SNAPSHOT_SIZES: {size} is not a number: {error}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    sizes.retain(|size| *size > SNAPSHOT_LAG);
    sizes.sort_unstable();
    if sizes.is_empty() {
        return Err(format!("BENCH_SNAPSHOT_SIZES={value}: no size above {SNAPSHOT_LAG}").into());
    }
    Ok(sizes)
}

/// One stream length's figures.
struct Measured {
    events: i64,
    without: Duration,
    without_loads: i64,
    with: Duration,
    with_loads: i64,
}

/// Runs every measurement on a fresh database.
async fn run(admin_url: &str, sizes: &[i64], loads: i64) -> BenchResult<Vec<Measured>> {
    with_database(admin_url, |url, options| async move {
        run_in(&url, &options, sizes, loads).await
    })
    .await
}

async fn run_in(
    url: &str,
    options: &PgConnectOptions,
    sizes: &[i64],
    loads: i64,
) -> BenchResult<Vec<Measured>> {
    let setup = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let store = EventStore::connect(
        url,
        &StoreOptions {
            max_connections: 4,
            ..StoreOptions::default()
        },
    )
    .await?;

    let mut streams = Vec::new();
    for &events in sizes {
        let seeding = Instant::now();
        let stream = seed(&store, events).await?;
        eprintln!(
            "seeded {stream} ({} events, snapshot at {}) in {:.1} s",
            thousands(events as f64),
            thousands((events - SNAPSHOT_LAG) as f64),
            seeding.elapsed().as_secs_f64()
        );
        streams.push((events, stream));
    }
    // Hint bits and statistics, so the first load does not pay for them.
    sqlx::query("VACUUM (ANALYZE) events, snapshots")
        .execute(&setup)
        .await?;
    sqlx::query("CHECKPOINT").execute(&setup).await?;

    // `snapshot_every` only decides whether loads read snapshots here:
    // nothing is executed, so nothing new is saved.
    let with_snapshots = CommandExecutor::new(
        store.clone(),
        ExecutorOptions {
            snapshot_every: Some(1_000),
            ..ExecutorOptions::default()
        },
    );
    let without_snapshots = CommandExecutor::new(
        store.clone(),
        ExecutorOptions {
            snapshot_every: None,
            ..ExecutorOptions::default()
        },
    );

    // Loads without snapshots, one size after the other: each takes long
    // enough that drift on a shared machine averages out.
    let mut without = Vec::new();
    for (events, stream) in &streams {
        let events = *events;
        // Both ways must give the same aggregate, or the comparison means
        // nothing.
        let full = without_snapshots.load::<Inventory>(stream).await?;
        let fast = with_snapshots.load::<Inventory>(stream).await?;
        if full != fast || full.version != events {
            return Err(format!(
                "{stream}: loads disagree (version {} without snapshots, {} with, {events} expected)",
                full.version, fast.version
            )
            .into());
        }
        let loads = (UNSNAPSHOTTED_EVENT_BUDGET / events).clamp(MIN_LOADS, loads);
        without.push((mean_load(&without_snapshots, stream, loads).await?, loads));
    }

    // Loads with snapshots take well under a millisecond, so a burst of
    // load from elsewhere on the machine can double one size's figure.
    // Interleaving the sizes in rounds spreads such bursts over all of them.
    let per_round = (loads / ROUNDS).max(1);
    let mut with_total = vec![Duration::ZERO; streams.len()];
    for round in 0..ROUNDS {
        for offset in 0..streams.len() {
            let index = (offset + round as usize) % streams.len();
            with_total[index] += mean_load(&with_snapshots, &streams[index].1, per_round).await?
                * u32::try_from(per_round)?;
        }
    }

    let mut results = Vec::new();
    for (index, (events, _)) in streams.iter().enumerate() {
        let with_loads = per_round * ROUNDS;
        let measured = Measured {
            events: *events,
            without: without[index].0,
            without_loads: without[index].1,
            with: with_total[index] / u32::try_from(with_loads)?,
            with_loads,
        };
        println!("{}", line(&measured));
        results.push(measured);
    }

    store.pool().close().await;
    setup.close().await;
    Ok(results)
}

/// Appends `events` inventory events to a new stream in big batches and
/// saves a snapshot of the state `SNAPSHOT_LAG` events before the end.
/// Returns the stream id.
async fn seed(store: &EventStore, events: i64) -> BenchResult<String> {
    let sku = Sku::parse(format!("SNAP-{events}"))?;
    let stream = stream_id::<Inventory>(&sku);
    let correlation_id = Uuid::new_v4();
    let metadata = EventMetadata {
        correlation_id: Some(correlation_id.into()),
        causation_id: Some(correlation_id),
        actor: Some("bench".into()),
        traceparent: None,
    };
    let mut state = Inventory::default();
    let mut version = 0;
    while version < events {
        let batch_end = (version + SEED_BATCH).min(events);
        let mut batch = Vec::new();
        for next in version + 1..=batch_end {
            let event = cycle_event(&sku, next)?;
            state = state.apply(&event);
            if next == events - SNAPSHOT_LAG {
                store
                    .save_snapshot(&Snapshot {
                        stream_id: stream.clone(),
                        stream_version: next,
                        schema_version: Inventory::SNAPSHOT_VERSION,
                        state: serde_json::to_value(&state)?,
                    })
                    .await?;
            }
            let encoded = EncodedEvent::of(&event);
            batch.push(
                NewEvent::new(encoded.event_type, encoded.data)
                    .with_schema_version(encoded.schema_version)
                    .with_metadata(metadata.clone()),
            );
        }
        store
            .append_to_stream(&stream, ExpectedVersion::Exact(version), batch)
            .await?;
        version = batch_end;
    }
    Ok(stream)
}

/// The event at `version` (from 1) of a stream of five-event cycles on one
/// warehouse each: receive 10, reserve 3 and ship them, reserve 2 and
/// release them.
fn cycle_event(sku: &Sku, version: i64) -> BenchResult<InventoryEvent> {
    let cycle = (version - 1) / 5;
    let warehouse = Warehouse::parse(format!("wh-{}", cycle % 3))?;
    let shipped = Uuid::from_u64_pair(1, u64::try_from(cycle)?);
    let released = Uuid::from_u64_pair(2, u64::try_from(cycle)?);
    let allocation = |quantity| {
        vec![Allocation {
            warehouse: warehouse.clone(),
            quantity,
        }]
    };
    let sku = sku.clone();
    Ok(match (version - 1) % 5 {
        0 => InventoryEvent::Received {
            sku,
            warehouse: warehouse.clone(),
            quantity: 10,
        },
        1 => InventoryEvent::Reserved {
            sku,
            order_id: shipped,
            allocations: allocation(3),
        },
        2 => InventoryEvent::Committed {
            sku,
            order_id: shipped,
            allocations: allocation(3),
        },
        3 => InventoryEvent::Reserved {
            sku,
            order_id: released,
            allocations: allocation(2),
        },
        _ => InventoryEvent::Released {
            sku,
            order_id: released,
            allocations: allocation(2),
        },
    })
}

/// Mean time of `loads` loads of `stream`, after a short warm-up.
async fn mean_load(executor: &CommandExecutor, stream: &str, loads: i64) -> BenchResult<Duration> {
    for _ in 0..WARMUP_LOADS.min(loads) {
        std::hint::black_box(executor.load::<Inventory>(stream).await?);
    }
    let started = Instant::now();
    for _ in 0..loads {
        std::hint::black_box(executor.load::<Inventory>(stream).await?);
    }
    Ok(started.elapsed() / u32::try_from(loads)?)
}

fn line(measured: &Measured) -> String {
    format!(
        "load of {} events: without snapshots {:.3} ms (mean of {}), with {:.3} ms (mean of {}), \
         ratio without/with {:.1}",
        thousands(measured.events as f64),
        millis(measured.without),
        measured.without_loads,
        millis(measured.with),
        measured.with_loads,
        measured.without.as_secs_f64() / measured.with.as_secs_f64(),
    )
}

fn print_results(results: &[Measured]) {
    println!();
    println!("== results ==");
    println!("| events | without snapshots | with snapshots | ratio without/with |");
    println!("|---|---|---|---|");
    for measured in results {
        println!(
            "| {} | {:.3} ms | {:.3} ms | {:.1} |",
            thousands(measured.events as f64),
            millis(measured.without),
            millis(measured.with),
            measured.without.as_secs_f64() / measured.with.as_secs_f64(),
        );
    }
    if let (Some(shortest), Some(longest)) = (results.first(), results.last()) {
        if shortest.events < longest.events {
            let flatness = longest.with.as_secs_f64() / shortest.with.as_secs_f64();
            println!(
                "flatness: load with snapshots at {} events / at {} events = {flatness:.2} \
                 (target <= {FLATNESS_TARGET}: {})",
                thousands(longest.events as f64),
                thousands(shortest.events as f64),
                if flatness <= FLATNESS_TARGET {
                    "met"
                } else {
                    "MISSED"
                },
            );
        }
    }
}
