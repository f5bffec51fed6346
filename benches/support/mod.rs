//! What every benchmark shares: which PostgreSQL to measure on, a fresh
//! migrated database per run, numbers from the environment, latency
//! histograms, waiting for the subscriptions to catch up, and numbers
//! printed for people.

// Each benchmark is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::error::Error;
use std::fmt::Display;
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

use event_store::{EventStore, MIGRATOR};
use hdrhistogram::Histogram;
use pg_embedded::{Cluster, ClusterOptions};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use uuid::Uuid;

pub type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The columns of `RecordedEvent`, in its order: what a raw read selects to
/// decode the same rows the store's readers do.
pub const EVENT_COLUMNS: &str = "position, transaction_id, stream_id, stream_version, event_id, \
     event_type, schema_version, data, metadata, correlation_id, causation_id, recorded_at";

/// The server to measure on: `DATABASE_URL`'s, or else a private cluster
/// (durable settings) that lives as long as the returned `Cluster`, and is
/// stopped and removed when it is dropped. Call it before starting a tokio
/// runtime: starting a cluster blocks.
pub fn bench_server() -> BenchResult<(String, Option<Cluster>)> {
    bench_server_with(&ClusterOptions::default())
}

/// As [`bench_server`], with a private cluster started with `options`.
pub fn bench_server_with(options: &ClusterOptions) -> BenchResult<(String, Option<Cluster>)> {
    match std::env::var("DATABASE_URL") {
        Ok(url) => Ok((url, None)),
        Err(_) => {
            eprintln!("starting a private PostgreSQL cluster (set DATABASE_URL to use another)");
            let cluster = Cluster::start_temporary(options)?;
            Ok((cluster.url("postgres"), Some(cluster)))
        }
    }
}

/// The number in environment variable `name` (`1_000_000` and `1,000,000`
/// are accepted), or `default` when it is unset.
pub fn env_number<T>(name: &str, default: T) -> BenchResult<T>
where
    T: FromStr,
    T::Err: Display,
{
    match std::env::var(name) {
        Ok(value) => Ok(value
            .replace(['_', ','], "")
            .parse()
            .map_err(|error| format!("{name}={value} is not a number: {error}"))?),
        Err(_) => Ok(default),
    }
}

/// Creates a fresh `bench_<uuid>` database with orderstream's migrations
/// applied, runs `body` on it (its URL and options), and drops it.
pub async fn with_database<T, F, Fut>(admin_url: &str, body: F) -> BenchResult<T>
where
    F: FnOnce(String, PgConnectOptions) -> Fut,
    Fut: Future<Output = BenchResult<T>>,
{
    with_migrated_database(admin_url, &MIGRATOR, body).await
}

/// As [`with_database`], with the migrations of `migrator` (Finance's, say).
pub async fn with_migrated_database<T, F, Fut>(
    admin_url: &str,
    migrator: &Migrator,
    body: F,
) -> BenchResult<T>
where
    F: FnOnce(String, PgConnectOptions) -> Fut,
    Fut: Future<Output = BenchResult<T>>,
{
    let database = format!("bench_{}", Uuid::new_v4().simple());
    let admin_options: PgConnectOptions = admin_url.parse()?;
    let mut admin = admin_options.clone().connect().await?;
    sqlx::query(&format!(r#"CREATE DATABASE "{database}""#))
        .execute(&mut admin)
        .await?;
    let options = admin_options.database(&database);
    let url = options.to_url_lossy().to_string();

    let outcome = async {
        let setup = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        migrator.run(&setup).await?;
        setup.close().await;
        body(url, options).await
    }
    .await;

    // Best effort: a private cluster is thrown away anyway.
    if let Err(error) = sqlx::query(&format!(
        r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#
    ))
    .execute(&mut admin)
    .await
    {
        eprintln!("could not drop database {database}: {error}");
    }
    admin.close().await?;
    outcome
}

/// The data of the benches' sample event (about 150 bytes of JSON), the
/// same on the store side and the raw side.
pub fn sample_event_data(order_id: Uuid) -> serde_json::Value {
    serde_json::json!({
        "order_id": order_id,
        "customer_id": "customer-20931",
        "sku": "SKU-004217",
        "quantity": 3,
        "unit_price": "19.90",
        "currency": "EUR",
        "warehouse": "wh-berlin",
    })
}

/// 4210.4 -> "4,210".
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A histogram of latencies in microseconds: 1 µs to 10 minutes, 3
/// significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    // Constant, valid bounds: cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

/// `duration` as a latency histogram records it: whole microseconds, at
/// least 1 (the histogram's lowest value).
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A quantile of a histogram of microseconds, in milliseconds; NaN when
/// nothing was recorded (rather than a 0 that reads as a measurement).
pub fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    if histogram.is_empty() {
        return f64::NAN;
    }
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A target's verdict in a results table.
pub fn yes_no(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

/// A `kB` line (`VmRSS`, `VmHWM`) of `/proc/<process>/status`, where
/// `process` is a pid or `self`.
pub fn proc_status_kb(process: impl Display, field: &str) -> BenchResult<u64> {
    let path = format!("/proc/{process}/status");
    let status = std::fs::read_to_string(&path)?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .ok_or_else(|| format!("no {field} in {path}"))?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// The largest lag of any subscription, in events.
pub async fn largest_lag(store: &EventStore) -> BenchResult<i64> {
    let statuses = projections::operations::subscription_statuses(store).await?;
    Ok(statuses.iter().map(|status| status.lag).max().unwrap_or(0))
}

/// Waits until every subscription has handled every visible event, for at
/// most `patience`.
pub async fn wait_until_idle(store: &EventStore, patience: Duration) -> BenchResult<()> {
    let deadline = Instant::now() + patience;
    while largest_lag(store).await? > 0 {
        if Instant::now() > deadline {
            return Err(format!("the subscriptions did not catch up within {patience:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
