//! Load test of the whole service (issue 5): the release `orderstream`
//! binary as a child process, driven over HTTP, against a raw-INSERT
//! baseline measured in the same run on the same PostgreSQL.
//!
//! In one run, against one PostgreSQL server and one fresh database:
//!
//! 1. raw baseline: `BENCH_CLIENTS` tasks doing plain single-row autocommit
//!    `INSERT`s into `raw_events` (a copy of `events` without triggers) for
//!    `BENCH_SECONDS`: rows/s;
//! 2. closed loop: `BENCH_CLIENTS` HTTP clients placing orders
//!    (`POST /orders`, one line, `card_ok`, stock for all) back to back for
//!    `BENCH_SECONDS`: accepted orders/s, HTTP latency p50/p99, the ratio
//!    to the raw rate (target >= 0.3), then the time until every one of
//!    them is paid, and placed-to-paid latency p50/p99;
//! 3. open loop: orders at fixed rates (`BENCH_RATES`, each for
//!    `BENCH_STEP_SECONDS`), sampling the subscriptions' lag during each
//!    step and measuring after it how long the service takes to pay every
//!    order of the step. Each step starts on an idle service (every
//!    subscription caught up), so no step inherits an earlier backlog. The highest rate whose orders were all accepted on
//!    time and all paid within `DRAIN_LIMIT` of the step's end is the
//!    sustained paid rate; the steps stop at the first rate that fails;
//! 4. the service's peak RSS (`VmHWM` of `/proc/<pid>/status`, the process
//!    alone: the database runs elsewhere), and the largest `VmRSS` sampled
//!    during the sustained step (target < 150 MiB).
//!
//! Placed-to-paid latency is `recorded_at` of `OrderPaid` minus that of
//! `OrderPlaced`, read from the log after the fact with SQL: one clock (the
//! database's), and no subscriber in this process competing for the CPU
//! while the load runs.
//!
//! The service binary is `CARGO_BIN_EXE_orderstream`, which cargo builds
//! (with the bench profile) before it runs a benchmark of the package.
//!
//! Environment:
//! - `DATABASE_URL`: use that server (a fresh `bench_<uuid>` database is
//!   created and dropped) instead of starting a private cluster;
//! - `BENCH_SECONDS`: raw baseline and closed loop duration (default 10);
//! - `BENCH_CLIENTS`: concurrent clients and raw tasks (default 16);
//! - `BENCH_RATES`: open-loop rates in orders/s (default `25,50,100,150,200,250,300`);
//! - `BENCH_STEP_SECONDS`: duration of each open-loop step (default 8).

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_store::{EventStore, StoreOptions};
use hdrhistogram::Histogram;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use uuid::Uuid;

use support::{bench_server, env_number, sample_event_data, thousands, with_database, BenchResult};

const ADMIN_TOKEN: &str = "loadtest-admin-token";
const SKUS: usize = 20;
const STOCK_PER_SKU: i64 = 10_000_000;
/// A step is sustained if every order of it is paid this soon after the
/// step ends.
const DRAIN_LIMIT: Duration = Duration::from_secs(3);
/// How long to wait for the backlog after a step before giving up.
const DRAIN_PATIENCE: Duration = Duration::from_secs(30);
/// How long the closed loop's backlog may take to be paid, and the service
/// to become idle before an open-loop step (which must start on an idle
/// service, or it measures the backlog).
const IDLE_PATIENCE: Duration = Duration::from_secs(300);
/// A step must get this share of its scheduled orders accepted.
const ACCEPTED_SHARE: f64 = 0.95;
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

const RATIO_TARGET: f64 = 0.3;
const RSS_TARGET_MIB: f64 = 150.0;

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

/// Targets of issue 12 for the choreography.
const EVENTS_RATIO_TARGET: f64 = 0.15;
const TRANSACTIONS_PER_ORDER_TARGET: f64 = 8.0;
const IDLE_TRANSACTIONS_TARGET: f64 = 2.0;
/// How long the idle service is watched: several of its 5 s cycles
/// (check-in, horizon refresh), so that where the window falls in them
/// hardly changes the figure.
const IDLE_WINDOW: Duration = Duration::from_secs(60);
/// PostgreSQL (15 and later) adds a backend's transactions to
/// `pg_stat_database` when the backend goes idle, but at most once a
/// second; what it counted in its last busy second is added up to 10 s
/// later (`PGSTAT_IDLE_INTERVAL` in `pgstat.c`). Nothing shows when that
/// has happened, so counts are read this long after a load ended. Read
/// 2 s after it, the idle window counted the load's last seconds as idle
/// (`pg_stat_statements` saw 21 statements where `pg_stat_database`
/// counted 380 transactions in the first 10 s after a load), and each
/// open-loop step some of the step before it.
const STATS_FLUSH_BOUND: Duration = Duration::from_secs(11);

struct Config {
    run_for: Duration,
    clients: usize,
    rates: Vec<u64>,
    step_for: Duration,
}

fn main() -> BenchResult<()> {
    let config = Config {
        run_for: Duration::from_secs(env_number("BENCH_SECONDS", 10)?.max(1)),
        clients: usize::try_from(env_number("BENCH_CLIENTS", 16)?.max(1))?,
        rates: env_rates()?,
        step_for: Duration::from_secs(env_number("BENCH_STEP_SECONDS", 8)?.max(1)),
    };
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_orderstream"));
    if !binary.exists() {
        return Err(format!(
            "{} is missing: run through `cargo bench --bench loadtest`, which builds it",
            binary.display()
        )
        .into());
    }

    // Started before the runtime: starting a cluster blocks.
    let (admin_url, cluster) = bench_server()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(run(&admin_url, &binary, &config));
    drop(runtime);
    if let Some(cluster) = cluster {
        cluster.stop();
    }
    let rows = outcome?;
    println!();
    println!("| figure | value | target | met? |");
    println!("|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} |",
            row.figure, row.value, row.target, row.met
        );
    }
    Ok(())
}

fn env_rates() -> BenchResult<Vec<u64>> {
    let value = std::env::var("BENCH_RATES").unwrap_or_else(|_| "25,50,100,150,200,250,300".into());
    value
        .split(',')
        .filter(|rate| !rate.trim().is_empty())
        .map(|rate| {
            rate.trim()
                .parse::<u64>()
                .map_err(|error| format!("BENCH_RATES={value}: {error}").into())
        })
        .collect()
}

/// One line of the results table.
struct Row {
    figure: String,
    value: String,
    target: String,
    met: String,
}

fn row(figure: impl Into<String>, value: impl Into<String>) -> Row {
    Row {
        figure: figure.into(),
        value: value.into(),
        target: String::new(),
        met: String::new(),
    }
}

fn row_with_target(figure: impl Into<String>, value: String, target: &str, met: bool) -> Row {
    Row {
        figure: figure.into(),
        value,
        target: target.into(),
        met: if met { "yes" } else { "**no**" }.into(),
    }
}

/// Runs every measurement on a fresh database.
async fn run(admin_url: &str, binary: &std::path::Path, config: &Config) -> BenchResult<Vec<Row>> {
    with_database(admin_url, |url, options| async move {
        run_in(&url, &options, binary, config).await
    })
    .await
}

async fn run_in(
    url: &str,
    options: &PgConnectOptions,
    binary: &std::path::Path,
    config: &Config,
) -> BenchResult<Vec<Row>> {
    let setup = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options.clone())
        .await?;
    sqlx::query("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
        .execute(&setup)
        .await?;
    let mut rows = Vec::new();

    // 1. The raw baseline, before the service exists.
    let raw = PgPoolOptions::new()
        .max_connections(u32::try_from(config.clients)?)
        .connect_with(options.clone())
        .await?;
    sqlx::query("CHECKPOINT").execute(&setup).await?;
    let raw_rate = raw_inserts(&raw, config.clients, config.run_for, 1).await?;
    sqlx::query("CHECKPOINT").execute(&setup).await?;
    let raw_ten_rate = raw_inserts(&raw, config.clients, config.run_for, 10).await?;
    raw.close().await;
    eprintln!(
        "raw ten-row INSERT, {} tasks: {} rows/s",
        config.clients,
        thousands(raw_ten_rate)
    );
    rows.push(row(
        format!(
            "raw ten-row INSERT (one statement), {} tasks, {} s",
            config.clients,
            config.run_for.as_secs()
        ),
        format!("{} rows/s", thousands(raw_ten_rate)),
    ));
    eprintln!(
        "raw single-row INSERT, {} tasks: {} rows/s",
        config.clients,
        thousands(raw_rate)
    );
    rows.push(row(
        format!(
            "raw single-row INSERT, {} tasks, {} s",
            config.clients,
            config.run_for.as_secs()
        ),
        format!("{} rows/s", thousands(raw_rate)),
    ));

    // The service, alone in its process.
    let service = Service::start(binary, url).await?;
    eprintln!(
        "service pid {} on {} (log: {})",
        service.pid(),
        service.base,
        service.log.display()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.clients.max(64))
        .build()?;
    for sku in 0..SKUS {
        let response = client
            .post(service.url(&format!("/inventory/{}/receipts", sku_name(sku))))
            .json(&serde_json::json!({ "quantity": STOCK_PER_SKU }))
            .send()
            .await?;
        if response.status() != 201 {
            return Err(format!("stock receipt answered {}", response.status()).into());
        }
    }
    // Our own view of the subscriptions, with a small pool.
    let store = EventStore::connect(
        url,
        &StoreOptions {
            max_connections: 2,
            ..StoreOptions::default()
        },
    )
    .await?;
    sqlx::query("CHECKPOINT").execute(&setup).await?;

    // 2. Closed loop.
    let (cpu_before, xacts_before) = (service.cpu_seconds()?, transactions(&setup).await?);
    let closed = closed_loop(&client, &service, config).await?;
    let accepted_rate = closed.accepted as f64 / closed.elapsed.as_secs_f64();
    eprintln!(
        "closed loop: {} accepted ({} orders/s), {} refused, HTTP p50 {:.1} ms p99 {:.1} ms",
        closed.accepted,
        thousands(accepted_rate),
        closed.refused,
        quantile_ms(&closed.http, 0.5),
        quantile_ms(&closed.http, 0.99)
    );
    let drain = wait_until_paid(&setup, &closed.order_ids, IDLE_PATIENCE).await?;
    let paid = placed_to_paid(&setup, &closed.order_ids).await?;
    // Let idle backends flush their statistics before reading them.
    tokio::time::sleep(STATS_FLUSH_BOUND).await;
    let cpu_per_order = (service.cpu_seconds()? - cpu_before) / closed.accepted.max(1) as f64;
    let xacts_per_order =
        (transactions(&setup).await? - xacts_before) as f64 / closed.accepted.max(1) as f64;
    let paid_rate = closed.order_ids.len() as f64 / (closed.elapsed + drain.elapsed).as_secs_f64();
    let ratio = accepted_rate / raw_rate;
    rows.push(row(
        format!(
            "accepted orders/s, {} clients, {} s",
            config.clients,
            config.run_for.as_secs()
        ),
        format!(
            "{} ({} orders, {} refused)",
            thousands(accepted_rate),
            closed.accepted,
            closed.refused
        ),
    ));
    rows.push(row_with_target(
        "accepted orders/s ÷ raw rows/s",
        format!("{ratio:.3}"),
        ">= 0.3",
        ratio >= RATIO_TARGET,
    ));
    rows.push(row(
        "HTTP latency of POST /orders, p50 / p99",
        format!(
            "{:.1} ms / {:.1} ms",
            quantile_ms(&closed.http, 0.5),
            quantile_ms(&closed.http, 0.99)
        ),
    ));
    rows.push(row(
        "events in the log per order",
        format!("{:.1}", events_per_order(&setup, closed.accepted).await?),
    ));
    rows.push(row(
        "closed loop: time after the last order until all are paid",
        describe_drain(&drain, closed.order_ids.len()),
    ));
    rows.push(row(
        "closed loop: placed-to-paid latency p50 / p99 (max)",
        describe_latency(&paid),
    ));
    rows.push(row(
        "closed loop: paid orders/s (orders ÷ (load + drain time))",
        format!("{paid_rate:.0}"),
    ));
    rows.push(row(
        "service CPU time per order, whole choreography",
        format!("{:.2} ms", cpu_per_order * 1000.0),
    ));
    rows.push(row(
        "PostgreSQL transactions per order, whole choreography (approx.)",
        format!("{xacts_per_order:.1}"),
    ));

    // 3. Open loop at increasing rates.
    let mut sustained: Option<(u64, f64)> = None;
    for &rate in &config.rates {
        wait_until_idle(&store).await?;
        let xacts_before = transactions(&setup).await?;
        let step = open_loop_step(&client, &service, &store, rate, config.step_for).await?;
        let drain = wait_until_paid(&setup, &step.order_ids, DRAIN_PATIENCE).await?;
        wait_until_idle(&store).await?;
        // Let backends flush their statistics before reading them (the
        // next step's count starts here too).
        tokio::time::sleep(STATS_FLUSH_BOUND).await;
        let step_xacts_per_order =
            (transactions(&setup).await? - xacts_before) as f64 / step.accepted.max(1) as f64;
        let paid = placed_to_paid(&setup, &step.order_ids).await?;
        let scheduled = rate * config.step_for.as_secs();
        let achieved = step.accepted as f64 / config.step_for.as_secs_f64();
        let on_time = step.accepted as f64 >= ACCEPTED_SHARE * scheduled as f64;
        let drained = drain.paid == step.order_ids.len() && drain.elapsed <= DRAIN_LIMIT;
        let ok = on_time && drained;
        eprintln!(
            "open loop {rate}/s: {} of {scheduled} accepted, max lag {} events, \
             drained in {}, placed-to-paid {}, {step_xacts_per_order:.1} transactions/order, \
             peak VmRSS {:.1} MiB: {}",
            step.accepted,
            step.max_lag,
            describe_drain(&drain, step.order_ids.len()),
            describe_latency(&paid),
            step.max_rss_mib,
            if ok { "sustained" } else { "NOT sustained" }
        );
        rows.push(row(
            format!(
                "open loop {rate} orders/s for {} s",
                config.step_for.as_secs()
            ),
            format!(
                "{} accepted ({achieved:.0}/s), HTTP p99 {:.1} ms, max lag {} events, \
                 drained {}, placed-to-paid {}, {step_xacts_per_order:.1} PostgreSQL \
                 transactions per order{}",
                step.accepted,
                quantile_ms(&step.http, 0.99),
                step.max_lag,
                describe_drain(&drain, step.order_ids.len()),
                describe_latency(&paid),
                if ok { "" } else { ": NOT sustained" }
            ),
        ));
        if rate == 200 {
            rows.push(row_with_target(
                "PostgreSQL transactions per order at 200 orders/s (step and drain)",
                format!("{step_xacts_per_order:.1}"),
                "<= 8",
                step_xacts_per_order <= TRANSACTIONS_PER_ORDER_TARGET,
            ));
        }
        if !ok {
            break;
        }
        sustained = Some((rate, step.max_rss_mib));
    }
    let (hwm, rss) = service.memory_mib()?;
    rows.extend(idle_rows(&setup, &store, &service).await?);
    match sustained {
        Some((rate, rss_at_rate)) => {
            rows.push(row(
                "highest sustained paid orders/s (lag bounded, all paid within 3 s)",
                format!("{rate}"),
            ));
            let events_ratio = rate as f64 * 10.0 / raw_ten_rate;
            rows.push(row_with_target(
                "choreography events/s at the sustained rate (10 an order) ÷ raw ten-row INSERT rows/s",
                format!("{events_ratio:.3}"),
                ">= 0.15",
                events_ratio >= EVENTS_RATIO_TARGET,
            ));
            rows.push(row_with_target(
                format!("service peak VmRSS sampled at {rate} orders/s"),
                format!("{rss_at_rate:.1} MiB"),
                "< 150 MiB",
                rss_at_rate < RSS_TARGET_MIB,
            ));
        }
        None => rows.push(row(
            "highest sustained paid orders/s",
            "none of the rates tried",
        )),
    }
    rows.push(row_with_target(
        "service peak RSS over the whole run (VmHWM); VmRSS at the end",
        format!("{hwm:.1} MiB; {rss:.1} MiB"),
        "< 150 MiB",
        hwm < RSS_TARGET_MIB,
    ));

    service.stop();
    store.pool().close().await;
    setup.close().await;
    Ok(rows)
}

/// What an idle service costs: PostgreSQL transactions a second (the
/// bench's own two statements included) and the service's CPU.
async fn idle_rows(setup: &PgPool, store: &EventStore, service: &Service) -> BenchResult<Vec<Row>> {
    wait_until_idle(store).await?;
    tokio::time::sleep(STATS_FLUSH_BOUND).await;
    let (xacts, cpu) = (transactions(setup).await?, service.cpu_seconds()?);
    tokio::time::sleep(IDLE_WINDOW).await;
    let seconds = IDLE_WINDOW.as_secs_f64();
    let per_second = (transactions(setup).await? - xacts) as f64 / seconds;
    let cpu_share = (service.cpu_seconds()? - cpu) / seconds;
    Ok(vec![
        row_with_target(
            format!(
                "idle service: PostgreSQL transactions/s over {} s",
                IDLE_WINDOW.as_secs()
            ),
            format!("{per_second:.2}"),
            "<= 2",
            per_second <= IDLE_TRANSACTIONS_TARGET,
        ),
        row(
            "idle service: CPU share of one core",
            format!("{:.2} %", cpu_share * 100.0),
        ),
    ])
}

/// `orderstream serve` as a child process, killed on drop.
struct Service {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Service {
    async fn start(binary: &std::path::Path, database_url: &str) -> BenchResult<Service> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::env::temp_dir().join(format!("orderstream-loadtest-{port}.log"));
        let child = Command::new(binary)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("ORDERSTREAM_BIND", format!("127.0.0.1:{port}"))
            .env("ORDERSTREAM_FULFILMENT", "auto")
            .env("ORDERSTREAM_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let mut service = Service {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = service.child.try_wait()? {
                return Err(format!(
                    "the service exited with {status}; log: {}",
                    service.log.display()
                )
                .into());
            }
            let ready = client.get(service.url("/ready")).send().await;
            if ready.is_ok_and(|response| response.status() == 200) {
                return Ok(service);
            }
            if Instant::now() > deadline {
                // Dropping `service` kills it; its log stays for a look.
                return Err(format!(
                    "the service was not ready within 60 s; log: {}",
                    service.log.display()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// (VmHWM, VmRSS) in MiB.
    fn memory_mib(&self) -> BenchResult<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| -> BenchResult<f64> {
            let line = status
                .lines()
                .find(|line| line.starts_with(name))
                .ok_or_else(|| format!("no {name} in /proc/<pid>/status"))?;
            let kib: f64 = line
                .trim_start_matches(name)
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()?;
            Ok(kib / 1024.0)
        };
        Ok((field("VmHWM:")?, field("VmRSS:")?))
    }

    /// CPU time the service's live threads have used so far (the sum of
    /// `/proc/<pid>/task/*/schedstat`: ns on a CPU, no clock-tick guessing;
    /// the tokio workers live as long as the process).
    fn cpu_seconds(&self) -> BenchResult<f64> {
        let mut nanos = 0u64;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid()))? {
            let path = task?.path().join("schedstat");
            // A thread may end between the listing and the read.
            let Ok(schedstat) = std::fs::read_to_string(path) else {
                continue;
            };
            nanos += schedstat
                .split_whitespace()
                .next()
                .ok_or("empty schedstat")?
                .parse::<u64>()?;
        }
        Ok(nanos as f64 / 1e9)
    }

    /// Kills the service after a successful run and removes its log.
    fn stop(mut self) {
        self.terminate();
        let _ = std::fs::remove_file(&self.log);
    }

    fn terminate(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn sku_name(index: usize) -> String {
    format!("LOAD-{index:02}")
}

fn order_body(index: u64) -> serde_json::Value {
    serde_json::json!({
        "customer_id": format!("customer-{}", index % 1000),
        "currency": "USD",
        "lines": [{"sku": sku_name(index as usize % SKUS), "quantity": 1, "unit_price": "19.90"}],
        "payment_method": "card_ok",
    })
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes, 3 significant digits: cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

/// Places one order; `Some(order_id)` when accepted (201).
async fn place(
    client: &reqwest::Client,
    url: &str,
    index: u64,
    http: &Mutex<Histogram<u64>>,
) -> Option<Uuid> {
    let started = Instant::now();
    let response = client
        .post(url)
        .json(&order_body(index))
        .send()
        .await
        .ok()?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.ok()?;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    if let Ok(mut histogram) = http.lock() {
        let _ = histogram.record(micros.max(1));
    }
    if status != 201 {
        return None;
    }
    body["order_id"].as_str()?.parse().ok()
}

struct LoadOutcome {
    accepted: u64,
    refused: u64,
    elapsed: Duration,
    http: Histogram<u64>,
    order_ids: Vec<Uuid>,
}

async fn closed_loop(
    client: &reqwest::Client,
    service: &Service,
    config: &Config,
) -> BenchResult<LoadOutcome> {
    let url = service.url("/orders");
    let http = Arc::new(Mutex::new(new_histogram()));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + config.run_for;
    let workers: Vec<_> = (0..config.clients)
        .map(|_| {
            let (client, url, http, next) =
                (client.clone(), url.clone(), http.clone(), next.clone());
            tokio::spawn(async move {
                let (mut ids, mut refused) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    match place(&client, &url, index, &http).await {
                        Some(id) => ids.push(id),
                        None => refused += 1,
                    }
                }
                (ids, refused)
            })
        })
        .collect();
    let (mut order_ids, mut refused) = (Vec::new(), 0);
    for worker in workers {
        let (ids, worker_refused) = worker.await?;
        order_ids.extend(ids);
        refused += worker_refused;
    }
    let elapsed = started.elapsed();
    let http = http.lock().map_err(|_| "poisoned")?.clone();
    Ok(LoadOutcome {
        accepted: order_ids.len() as u64,
        refused,
        elapsed,
        http,
        order_ids,
    })
}

struct StepOutcome {
    accepted: u64,
    http: Histogram<u64>,
    order_ids: Vec<Uuid>,
    max_lag: i64,
    max_rss_mib: f64,
}

/// Orders at `rate` per second for `run_for`, each sent on schedule
/// whether or not earlier ones were answered (open loop).
async fn open_loop_step(
    client: &reqwest::Client,
    service: &Service,
    store: &EventStore,
    rate: u64,
    run_for: Duration,
) -> BenchResult<StepOutcome> {
    let url = service.url("/orders");
    let http = Arc::new(Mutex::new(new_histogram()));
    let total = rate * run_for.as_secs();
    let started = tokio::time::Instant::now();
    let sender = {
        let (client, http) = (client.clone(), http.clone());
        tokio::spawn(async move {
            let mut requests = Vec::new();
            for index in 0..total {
                let at = started + Duration::from_secs_f64(index as f64 / rate as f64);
                tokio::time::sleep_until(at).await;
                let (client, url, http) = (client.clone(), url.clone(), http.clone());
                requests.push(tokio::spawn(async move {
                    place(&client, &url, 1_000_000 + index, &http).await
                }));
            }
            let mut ids = Vec::new();
            for request in requests {
                if let Ok(Some(id)) = request.await {
                    ids.push(id);
                }
            }
            ids
        })
    };
    // Sample lag and memory while the step runs.
    let (mut max_lag, mut max_rss_mib) = (0, 0.0f64);
    while !sender.is_finished() {
        tokio::time::sleep(SAMPLE_EVERY).await;
        max_lag = max_lag.max(reactor_lag(store).await?);
        max_rss_mib = max_rss_mib.max(service.memory_mib()?.1);
    }
    let order_ids = sender.await?;
    let http = http.lock().map_err(|_| "poisoned")?.clone();
    Ok(StepOutcome {
        accepted: order_ids.len() as u64,
        http,
        order_ids,
        max_lag,
        max_rss_mib,
    })
}

/// The largest lag of any subscription, in events.
async fn reactor_lag(store: &EventStore) -> BenchResult<i64> {
    let statuses = projections::operations::subscription_statuses(store).await?;
    Ok(statuses.iter().map(|status| status.lag).max().unwrap_or(0))
}

async fn wait_until_idle(store: &EventStore) -> BenchResult<()> {
    let deadline = Instant::now() + IDLE_PATIENCE;
    while reactor_lag(store).await? > 0 {
        if Instant::now() > deadline {
            return Err(format!("the service was not idle after {IDLE_PATIENCE:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

struct Drain {
    /// Orders paid when the wait ended.
    paid: usize,
    elapsed: Duration,
}

/// Waits (up to `patience`) until every order of `order_ids` is paid.
async fn wait_until_paid(
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

fn describe_drain(drain: &Drain, orders: usize) -> String {
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
async fn placed_to_paid(pool: &PgPool, order_ids: &[Uuid]) -> BenchResult<Histogram<u64>> {
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
    let mut histogram = new_histogram();
    for value in micros {
        histogram.record(u64::try_from(value.max(1))?)?;
    }
    Ok(histogram)
}

fn describe_latency(histogram: &Histogram<u64>) -> String {
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
async fn transactions(pool: &PgPool) -> BenchResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database \
          WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await?)
}

async fn events_per_order(pool: &PgPool, orders: u64) -> BenchResult<f64> {
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type <> 'StockReceived'")
            .fetch_one(pool)
            .await?;
    Ok(events as f64 / orders.max(1) as f64)
}

/// `tasks` tasks inserting `per_statement` rows (1 or 10) per autocommit
/// statement, for `run_for`: rows/s.
async fn raw_inserts(
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
