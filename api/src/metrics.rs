//! Prometheus metrics: one recorder per process, installed on first use.
//!
//! Recorded here: HTTP request latency by method, route and status
//! (`observe.rs`), requests refused by the limits (`limits.rs`), command
//! latency and events appended by command (`commands_metrics`). Refreshed
//! at each scrape: the log head position (its rate is the append rate),
//! and each subscription's lag (in events, and in seconds: how long ago its
//! oldest unprocessed event was recorded) and parked events.
//!
//! Every label takes its values from a fixed set, so that no client can
//! grow the scrape: methods outside the standard ones are `other`, routes
//! are the matched templates (`unmatched` otherwise). A scrape reads a
//! bounded number of rows: the counts stop at [`SCRAPE_COUNT_CAP`].

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::Method;
use event_store::{EventStore, LogCursor, StoreError};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use projections::catalogue::CATALOGUE;
use projections::consumer_groups::Member;
use projections::operations::ListedSubscription;

pub const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";
pub const COMMAND_DURATION: &str = "orderstream_command_duration_seconds";
pub const EVENTS_APPENDED: &str = "orderstream_events_appended_total";
pub const LOG_HEAD: &str = "orderstream_log_head_position";
pub const SUBSCRIPTION_LAG: &str = "orderstream_subscription_lag_events";
pub const SUBSCRIPTION_LAG_SECONDS: &str = "orderstream_subscription_lag_seconds";
pub const SUBSCRIPTION_PARKED: &str = "orderstream_subscription_parked_events";
pub const REQUESTS_REJECTED: &str = "orderstream_http_requests_rejected_total";

/// The most events (or parked events) a scrape counts per subscription: a
/// gauge at this value means "at least this many". Exact figures are on
/// `GET /subscriptions`.
pub const SCRAPE_COUNT_CAP: i64 = 10_000;

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

/// The `method` label: the standard methods by name, any other as `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Sets the gauges read from the database. A database that cannot be
/// reached leaves them as they were rather than failing the scrape.
pub async fn refresh_database_gauges(store: &EventStore) {
    let head = match store.head().await {
        Ok(head) => head,
        Err(error) => {
            tracing::warn!(%error, "metrics: could not read the log head");
            return;
        }
    };
    metrics::gauge!(LOG_HEAD).set(head.position as f64);
    let entries = match projections::operations::listed_entries(store).await {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(%error, "metrics: could not list the subscriptions");
            CATALOGUE
                .iter()
                .map(|entry| ListedSubscription {
                    entry,
                    member: Member::whole(entry.name),
                })
                .collect()
        }
    };
    for listed in entries {
        let name = listed.name();
        match subscription_counts(store, &listed, head).await {
            Ok(Counts {
                lag,
                lag_seconds,
                parked,
            }) => {
                metrics::gauge!(SUBSCRIPTION_LAG, "subscription" => name.clone()).set(lag as f64);
                metrics::gauge!(SUBSCRIPTION_LAG_SECONDS, "subscription" => name.clone())
                    .set(lag_seconds);
                metrics::gauge!(SUBSCRIPTION_PARKED, "subscription" => name).set(parked as f64);
            }
            Err(error) => {
                tracing::warn!(%error, subscription = name, "metrics: could not read lag");
            }
        }
    }
}

struct Counts {
    lag: i64,
    /// Age of the oldest event the subscription has still to handle; 0
    /// when it is caught up.
    lag_seconds: f64,
    parked: i64,
}

/// A subscription's lag and parked events, each counted up to
/// [`SCRAPE_COUNT_CAP`] through an index: the same filter as
/// `EventStore::count_between`, with a `LIMIT`. The lag in seconds reads
/// one row: the first event after the checkpoint, in log order.
async fn subscription_counts(
    store: &EventStore,
    listed: &ListedSubscription,
    head: LogCursor,
) -> Result<Counts, StoreError> {
    let name = listed.name();
    let category = listed.entry.category;
    // A member of a split reactor counts the streams of its partition.
    let (partitions, partition) = listed.member.partition.map_or((None, None), |partition| {
        (
            Some(i64::from(partition.count())),
            Some(i64::from(partition.index())),
        )
    });
    let checkpoint = store.load_checkpoint(&name).await?.unwrap_or_default();
    let lag: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ( \
             SELECT 1 FROM events WHERE (transaction_id, position) > ($1, $2) \
                AND (transaction_id, position) <= ($3, $4) \
                AND ($5::text IS NULL OR split_part(stream_id, '-', 1) = $5) \
                AND ($7::int IS NULL OR stream_partition(stream_id, $7::int) = $8::int) \
              LIMIT $6) AS lagging",
    )
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.position)
    .bind(head.transaction_id)
    .bind(head.position)
    .bind(category)
    .bind(SCRAPE_COUNT_CAP)
    .bind(partitions)
    .bind(partition)
    .fetch_one(store.pool())
    .await?;
    let parked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ( \
             SELECT 1 FROM parked_events WHERE subscription = $1 LIMIT $2) AS parked",
    )
    .bind(&name)
    .bind(SCRAPE_COUNT_CAP)
    .fetch_one(store.pool())
    .await?;
    // Seconds as a double computed by PostgreSQL, so that clock skew
    // between this process and the database does not enter the figure.
    let lag_seconds: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (clock_timestamp() - recorded_at))::float8 \
           FROM events WHERE (transaction_id, position) > ($1, $2) \
            AND (transaction_id, position) <= ($3, $4) \
            AND ($5::text IS NULL OR split_part(stream_id, '-', 1) = $5) \
            AND ($6::int IS NULL OR stream_partition(stream_id, $6::int) = $7::int) \
          ORDER BY transaction_id, position LIMIT 1",
    )
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.position)
    .bind(head.transaction_id)
    .bind(head.position)
    .bind(category)
    .bind(partitions)
    .bind(partition)
    .fetch_optional(store.pool())
    .await?;
    Ok(Counts {
        lag,
        lag_seconds: lag_seconds.unwrap_or(0.0).max(0.0),
        parked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        for name in ["FOO", "BREW", "PROPFIND", "X-1"] {
            let method = Method::from_bytes(name.as_bytes()).expect("a token");
            assert_eq!(method_label(&method), "other");
        }
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::CONNECT), "other");
    }
}
