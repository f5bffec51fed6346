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

// This bench's own parts, beside it rather than in the shared `support`.
#[path = "loadtest/database.rs"]
mod database;
#[path = "loadtest/load.rs"]
mod load;
#[path = "loadtest/service.rs"]
mod service;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use event_store::{EventStore, StoreOptions};
use hdrhistogram::Histogram;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use database::{
    describe_drain, describe_latency, events_per_order, placed_to_paid, raw_inserts, transactions,
    wait_until_paid, Drain,
};
use load::{closed_loop, open_loop_step, sku_name, LoadOutcome, StepOutcome, SKUS};
use service::Service;
use support::{
    bench_server, env_number, quantile_ms, thousands, wait_until_idle, with_database, yes_no,
    BenchResult,
};

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

const RATIO_TARGET: f64 = 0.3;
const RSS_TARGET_MIB: f64 = 150.0;

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
        met: yes_no(met).into(),
    }
}

/// Runs every measurement on a fresh database.
async fn run(admin_url: &str, binary: &Path, config: &Config) -> BenchResult<Vec<Row>> {
    with_database(admin_url, |url, options| async move {
        run_in(&url, &options, binary, config).await
    })
    .await
}

/// The four parts of the module's description, in order, each adding its
/// rows to the table.
async fn run_in(
    url: &str,
    options: &PgConnectOptions,
    binary: &Path,
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

    let raw = raw_baseline(&setup, options, config, &mut rows).await?;
    let target = Target::start(setup, binary, url, config).await?;
    closed_loop_figures(&target, config, raw.single, &mut rows).await?;
    let sustained = open_loop_figures(&target, config, &mut rows).await?;
    let (hwm, rss) = target.service.memory_mib()?;
    rows.extend(idle_rows(&target).await?);
    rows.extend(sustained_rows(sustained, raw.ten));
    rows.push(row_with_target(
        "service peak RSS over the whole run (VmHWM); VmRSS at the end",
        format!("{hwm:.1} MiB; {rss:.1} MiB"),
        "< 150 MiB",
        hwm < RSS_TARGET_MIB,
    ));

    target.stop().await;
    Ok(rows)
}

/// Raw `INSERT` rates, rows/s.
struct RawRates {
    /// One row a statement.
    single: f64,
    /// Ten rows a statement.
    ten: f64,
}

/// Part 1, the raw baseline, before the service exists.
async fn raw_baseline(
    setup: &PgPool,
    options: &PgConnectOptions,
    config: &Config,
    rows: &mut Vec<Row>,
) -> BenchResult<RawRates> {
    let raw = PgPoolOptions::new()
        .max_connections(u32::try_from(config.clients)?)
        .connect_with(options.clone())
        .await?;
    sqlx::query("CHECKPOINT").execute(setup).await?;
    let raw_rate = raw_inserts(&raw, config.clients, config.run_for, 1).await?;
    sqlx::query("CHECKPOINT").execute(setup).await?;
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
    Ok(RawRates {
        single: raw_rate,
        ten: raw_ten_rate,
    })
}

/// The service, alone in its process, and what the bench watches it with.
struct Target {
    /// The bench's own small pool, for its SQL.
    setup: PgPool,
    service: Service,
    client: reqwest::Client,
    /// Our own view of the subscriptions, with a small pool.
    store: EventStore,
}

impl Target {
    /// Starts the service and stocks every SKU; a `CHECKPOINT` then, so
    /// that the closed loop does not pay for the set-up's writes.
    async fn start(
        setup: PgPool,
        binary: &Path,
        url: &str,
        config: &Config,
    ) -> BenchResult<Target> {
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
        let store = EventStore::connect(
            url,
            &StoreOptions {
                max_connections: 2,
                ..StoreOptions::default()
            },
        )
        .await?;
        sqlx::query("CHECKPOINT").execute(&setup).await?;
        Ok(Target {
            setup,
            service,
            client,
            store,
        })
    }

    /// Kills the service (its log removed) and closes the bench's pools.
    async fn stop(self) {
        self.service.stop();
        self.store.pool().close().await;
        self.setup.close().await;
    }
}

/// The closed loop and what followed it, up to every order paid.
struct ClosedLoopFigures {
    load: LoadOutcome,
    drain: Drain,
    paid: Histogram<u64>,
    cpu_per_order: f64,
    xacts_per_order: f64,
    events_per_order: f64,
}

/// Part 2, the closed loop: `BENCH_CLIENTS` clients back to back, then
/// the wait until each of their orders is paid.
async fn closed_loop_figures(
    target: &Target,
    config: &Config,
    raw_rate: f64,
    rows: &mut Vec<Row>,
) -> BenchResult<()> {
    let (setup, service) = (&target.setup, &target.service);
    let (cpu_before, xacts_before) = (service.cpu_seconds()?, transactions(setup).await?);
    let closed = closed_loop(&target.client, service, config).await?;
    eprintln!(
        "closed loop: {} accepted ({} orders/s), {} refused, HTTP p50 {:.1} ms p99 {:.1} ms",
        closed.accepted,
        thousands(accepted_rate(&closed)),
        closed.refused,
        quantile_ms(&closed.http, 0.5),
        quantile_ms(&closed.http, 0.99)
    );
    let drain = wait_until_paid(setup, &closed.order_ids, IDLE_PATIENCE).await?;
    let paid = placed_to_paid(setup, &closed.order_ids).await?;
    // Let idle backends flush their statistics before reading them.
    tokio::time::sleep(STATS_FLUSH_BOUND).await;
    let orders = closed.accepted.max(1) as f64;
    let figures = ClosedLoopFigures {
        cpu_per_order: (service.cpu_seconds()? - cpu_before) / orders,
        xacts_per_order: (transactions(setup).await? - xacts_before) as f64 / orders,
        events_per_order: events_per_order(setup, closed.accepted).await?,
        load: closed,
        drain,
        paid,
    };
    rows.extend(closed_loop_rows(&figures, config, raw_rate));
    Ok(())
}

fn accepted_rate(load: &LoadOutcome) -> f64 {
    load.accepted as f64 / load.elapsed.as_secs_f64()
}

fn closed_loop_rows(figures: &ClosedLoopFigures, config: &Config, raw_rate: f64) -> Vec<Row> {
    let ClosedLoopFigures { load, drain, .. } = figures;
    let accepted_rate = accepted_rate(load);
    let paid_rate = load.order_ids.len() as f64 / (load.elapsed + drain.elapsed).as_secs_f64();
    let ratio = accepted_rate / raw_rate;
    vec![
        row(
            format!(
                "accepted orders/s, {} clients, {} s",
                config.clients,
                config.run_for.as_secs()
            ),
            format!(
                "{} ({} orders, {} refused)",
                thousands(accepted_rate),
                load.accepted,
                load.refused
            ),
        ),
        row_with_target(
            "accepted orders/s ÷ raw rows/s",
            format!("{ratio:.3}"),
            ">= 0.3",
            ratio >= RATIO_TARGET,
        ),
        row(
            "HTTP latency of POST /orders, p50 / p99",
            format!(
                "{:.1} ms / {:.1} ms",
                quantile_ms(&load.http, 0.5),
                quantile_ms(&load.http, 0.99)
            ),
        ),
        row(
            "events in the log per order",
            format!("{:.1}", figures.events_per_order),
        ),
        row(
            "closed loop: time after the last order until all are paid",
            describe_drain(drain, load.order_ids.len()),
        ),
        row(
            "closed loop: placed-to-paid latency p50 / p99 (max)",
            describe_latency(&figures.paid),
        ),
        row(
            "closed loop: paid orders/s (orders ÷ (load + drain time))",
            format!("{paid_rate:.0}"),
        ),
        row(
            "service CPU time per order, whole choreography",
            format!("{:.2} ms", figures.cpu_per_order * 1000.0),
        ),
        row(
            "PostgreSQL transactions per order, whole choreography (approx.)",
            format!("{:.1}", figures.xacts_per_order),
        ),
    ]
}

/// Part 3, the open loop at increasing rates until one is not sustained:
/// the highest sustained rate, with the largest VmRSS sampled at it.
async fn open_loop_figures(
    target: &Target,
    config: &Config,
    rows: &mut Vec<Row>,
) -> BenchResult<Option<(u64, f64)>> {
    let mut sustained = None;
    for &rate in &config.rates {
        let step = open_loop_at(target, config, rate).await?;
        let ok = step.sustained(config);
        rows.extend(step.rows(config, ok));
        if !ok {
            break;
        }
        sustained = Some((rate, step.load.max_rss_mib));
    }
    Ok(sustained)
}

/// One open-loop step and what followed it, up to every order paid.
struct StepFigures {
    rate: u64,
    load: StepOutcome,
    drain: Drain,
    paid: Histogram<u64>,
    /// PostgreSQL transactions per accepted order, step and drain.
    xacts_per_order: f64,
}

/// One rate for `BENCH_STEP_SECONDS`, started on an idle service so that
/// it inherits no backlog, and waited for until idle again.
async fn open_loop_at(target: &Target, config: &Config, rate: u64) -> BenchResult<StepFigures> {
    let setup = &target.setup;
    wait_until_idle(&target.store, IDLE_PATIENCE).await?;
    let xacts_before = transactions(setup).await?;
    let load = open_loop_step(
        &target.client,
        &target.service,
        &target.store,
        rate,
        config.step_for,
    )
    .await?;
    let drain = wait_until_paid(setup, &load.order_ids, DRAIN_PATIENCE).await?;
    wait_until_idle(&target.store, IDLE_PATIENCE).await?;
    // Let backends flush their statistics before reading them.
    tokio::time::sleep(STATS_FLUSH_BOUND).await;
    let xacts_per_order =
        (transactions(setup).await? - xacts_before) as f64 / load.accepted.max(1) as f64;
    let paid = placed_to_paid(setup, &load.order_ids).await?;
    Ok(StepFigures {
        rate,
        load,
        drain,
        paid,
        xacts_per_order,
    })
}

impl StepFigures {
    fn scheduled(&self, config: &Config) -> u64 {
        self.rate * config.step_for.as_secs()
    }

    /// Every order accepted on time and paid within `DRAIN_LIMIT` of the
    /// step's end.
    fn sustained(&self, config: &Config) -> bool {
        let on_time = self.load.accepted as f64 >= ACCEPTED_SHARE * self.scheduled(config) as f64;
        let drained =
            self.drain.paid == self.load.order_ids.len() && self.drain.elapsed <= DRAIN_LIMIT;
        on_time && drained
    }

    /// The step's line on stderr, and its rows.
    fn rows(&self, config: &Config, ok: bool) -> Vec<Row> {
        let (rate, step, orders) = (self.rate, &self.load, self.load.order_ids.len());
        let step_xacts_per_order = self.xacts_per_order;
        let achieved = step.accepted as f64 / config.step_for.as_secs_f64();
        eprintln!(
            "open loop {rate}/s: {} of {} accepted, max lag {} events, \
             drained in {}, placed-to-paid {}, {step_xacts_per_order:.1} transactions/order, \
             peak VmRSS {:.1} MiB: {}",
            step.accepted,
            self.scheduled(config),
            step.max_lag,
            describe_drain(&self.drain, orders),
            describe_latency(&self.paid),
            step.max_rss_mib,
            if ok { "sustained" } else { "NOT sustained" }
        );
        let mut rows = vec![row(
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
                describe_drain(&self.drain, orders),
                describe_latency(&self.paid),
                if ok { "" } else { ": NOT sustained" }
            ),
        )];
        if rate == 200 {
            rows.push(row_with_target(
                "PostgreSQL transactions per order at 200 orders/s (step and drain)",
                format!("{step_xacts_per_order:.1}"),
                "<= 8",
                step_xacts_per_order <= TRANSACTIONS_PER_ORDER_TARGET,
            ));
        }
        rows
    }
}

/// Part 4: what the sustained rate (`Some((rate, VmRSS at it))`) comes
/// to against the raw ten-row rate, and the memory at it.
fn sustained_rows(sustained: Option<(u64, f64)>, raw_ten_rate: f64) -> Vec<Row> {
    let Some((rate, rss_at_rate)) = sustained else {
        return vec![row(
            "highest sustained paid orders/s",
            "none of the rates tried",
        )];
    };
    let events_ratio = rate as f64 * 10.0 / raw_ten_rate;
    vec![
        row(
            "highest sustained paid orders/s (lag bounded, all paid within 3 s)",
            format!("{rate}"),
        ),
        row_with_target(
            "choreography events/s at the sustained rate (10 an order) ÷ raw ten-row INSERT rows/s",
            format!("{events_ratio:.3}"),
            ">= 0.15",
            events_ratio >= EVENTS_RATIO_TARGET,
        ),
        row_with_target(
            format!("service peak VmRSS sampled at {rate} orders/s"),
            format!("{rss_at_rate:.1} MiB"),
            "< 150 MiB",
            rss_at_rate < RSS_TARGET_MIB,
        ),
    ]
}

/// What an idle service costs: PostgreSQL transactions a second (the
/// bench's own two statements included) and the service's CPU.
async fn idle_rows(target: &Target) -> BenchResult<Vec<Row>> {
    let (setup, service) = (&target.setup, &target.service);
    wait_until_idle(&target.store, IDLE_PATIENCE).await?;
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
