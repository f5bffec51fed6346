//! What every benchmark shares: which PostgreSQL to measure on, a fresh
//! migrated database per run, numbers from the environment, and numbers
//! printed for people.

// Each benchmark is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::error::Error;
use std::fmt::Display;
use std::future::Future;
use std::str::FromStr;

use event_store::MIGRATOR;
use pg_embedded::{Cluster, ClusterOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use uuid::Uuid;

pub type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The server to measure on: `DATABASE_URL`'s, or else a private cluster
/// (durable settings) that lives as long as the returned `Cluster`, and is
/// stopped and removed when it is dropped. Call it before starting a tokio
/// runtime: starting a cluster blocks.
pub fn bench_server() -> BenchResult<(String, Option<Cluster>)> {
    match std::env::var("DATABASE_URL") {
        Ok(url) => Ok((url, None)),
        Err(_) => {
            eprintln!("starting a private PostgreSQL cluster (set DATABASE_URL to use another)");
            let cluster = Cluster::start_temporary(&ClusterOptions::default())?;
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

/// Creates a fresh `bench_<uuid>` database with the migrations applied,
/// runs `body` on it (its URL and options), and drops it.
pub async fn with_database<T, F, Fut>(admin_url: &str, body: F) -> BenchResult<T>
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
        MIGRATOR.run(&setup).await?;
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
