//! The load: orders placed over HTTP, back to back by a fixed number of
//! clients (closed loop) or on a schedule whatever the answers (open loop).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_store::EventStore;
use hdrhistogram::Histogram;
use uuid::Uuid;

use crate::service::Service;
use crate::support::{largest_lag, latency_histogram, micros, BenchResult};
use crate::Config;

/// The SKUs orders are spread over, each stocked for the whole run.
pub const SKUS: usize = 20;
/// How often the open loop samples the lag and the service's memory.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

pub fn sku_name(index: usize) -> String {
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
    if let Ok(mut histogram) = http.lock() {
        let _ = histogram.record(micros(started.elapsed()));
    }
    if status != 201 {
        return None;
    }
    body["order_id"].as_str()?.parse().ok()
}

pub struct LoadOutcome {
    pub accepted: u64,
    pub refused: u64,
    pub elapsed: Duration,
    pub http: Histogram<u64>,
    pub order_ids: Vec<Uuid>,
}

pub async fn closed_loop(
    client: &reqwest::Client,
    service: &Service,
    config: &Config,
) -> BenchResult<LoadOutcome> {
    let url = service.url("/orders");
    let http = Arc::new(Mutex::new(latency_histogram()));
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

pub struct StepOutcome {
    pub accepted: u64,
    pub http: Histogram<u64>,
    pub order_ids: Vec<Uuid>,
    pub max_lag: i64,
    pub max_rss_mib: f64,
}

/// Orders at `rate` per second for `run_for`, each sent on schedule
/// whether or not earlier ones were answered (open loop).
pub async fn open_loop_step(
    client: &reqwest::Client,
    service: &Service,
    store: &EventStore,
    rate: u64,
    run_for: Duration,
) -> BenchResult<StepOutcome> {
    let url = service.url("/orders");
    let http = Arc::new(Mutex::new(latency_histogram()));
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
        max_lag = max_lag.max(largest_lag(store).await?);
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
