//! Prometheus metrics: one recorder per process, installed on first use.
//!
//! Recorded here: HTTP request latency by method, route and status
//! (`observe.rs`), command latency and events appended by command
//! (`commands_metrics`). Refreshed at each scrape: the log head position
//! (its rate is the append rate), and each subscription's lag and parked
//! events.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
pub const COMMAND_DURATION: &str = "orderstream_command_duration_seconds";
pub const EVENTS_APPENDED: &str = "orderstream_events_appended_total";
pub const LOG_HEAD: &str = "orderstream_log_head_position";
pub const SUBSCRIPTION_LAG: &str = "orderstream_subscription_lag_events";
pub const SUBSCRIPTION_PARKED: &str = "orderstream_subscription_parked_events";

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder handle. When another recorder is already
/// installed (an embedding program's), this one still renders, empty.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// Records one executed command.
pub fn command_executed(
    command: &'static str,
    outcome: &'static str,
    elapsed: Duration,
    events: usize,
) {
    metrics::histogram!(COMMAND_DURATION, "command" => command, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
    if events > 0 {
        metrics::counter!(EVENTS_APPENDED, "command" => command).increment(events as u64);
    }
}
