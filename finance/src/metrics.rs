//! Finance's Prometheus metrics, served at `GET /finance/metrics`.
//!
//! Counted by the consumer: `finance_messages_total{outcome}` with
//! `booked`, `ignored` (a contract Finance does not book), `duplicate` (a
//! redelivery the inbox recognised), `retried` (a failed attempt sent to a
//! retry queue), `dead_lettered` (the last attempt failed) and `requeued`
//! (Finance's database did not answer: back to the inbox, consumer paused). Read from
//! the broker at each scrape with passive declares (which never create a
//! queue): the dead-letter queue's depth and the inbox's ready messages
//! (the consumer's lag in messages), and whether the broker answered.
//!
//! `finance_consumer_lag_seconds` is the lag in time: the age of the
//! oldest message not yet booked, i.e. of the message the consumer holds
//! or took last while messages wait behind it (see
//! `ConsumerStatus::lag_seconds`); 0 once the inbox is empty. A message's
//! age counts from its AMQP timestamp, which the relay sets to when the
//! source event was recorded in orderstream's log: the figure is end to
//! end, relay lag included (whole seconds). A retried or replayed message
//! keeps its first timestamp, so the figure jumps while one is handled.

use std::sync::OnceLock;
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Connection, ErrorKind};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::status::ConsumerStatus;
use crate::topology::{self, Topology};

pub const MESSAGES: &str = "finance_messages_total";
pub const DEAD_LETTERS: &str = "finance_dead_letters";
pub const INBOX_READY: &str = "finance_inbox_ready_messages";
pub const BROKER_UP: &str = "finance_broker_up";
pub const LAG_SECONDS: &str = "finance_consumer_lag_seconds";
pub const CONSUMING: &str = "finance_consumer_up";

/// How long a scrape waits for the broker before reporting it down: a
/// scrape must answer within Prometheus's own timeout (10 s by default).
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder on first use (before the consumer
/// counts anything, so that no count is lost) and returns its handle. When
/// another recorder is already installed (an embedding program's), this
/// one still renders, without the counters.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; finance counters are not exported"
                );
            }
            handle
        })
        .clone()
}

/// Counts one handled message.
pub(crate) fn message_handled(outcome: &'static str) {
    metrics::counter!(MESSAGES, "outcome" => outcome).increment(1);
}

/// Reads the queue depths from the broker and works out the lag. A broker
/// that does not answer sets `finance_broker_up` to 0 and leaves the depths
/// (and the lag, unless a message in hand tells it) as they were: an alert
/// on dead letters or lag keeps firing through an outage.
pub async fn refresh_broker_gauges(amqp_url: &str, topology: &Topology, status: &ConsumerStatus) {
    let depths = tokio::time::timeout(BROKER_TIMEOUT, queue_depths(amqp_url, topology)).await;
    let ready = match depths {
        Ok(Ok((dead, ready))) => {
            metrics::gauge!(BROKER_UP).set(1.0);
            metrics::gauge!(DEAD_LETTERS).set(dead as f64);
            metrics::gauge!(INBOX_READY).set(ready as f64);
            Some(ready)
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "finance metrics: could not read the queue depths");
            metrics::gauge!(BROKER_UP).set(0.0);
            None
        }
        Err(_) => {
            tracing::warn!(timeout = ?BROKER_TIMEOUT, "finance metrics: the broker did not answer");
            metrics::gauge!(BROKER_UP).set(0.0);
            None
        }
    };
    metrics::gauge!(CONSUMING).set(if status.is_consuming() { 1.0 } else { 0.0 });
    if let Some(lag) = status.lag_seconds(ready, chrono::Utc::now().timestamp()) {
        metrics::gauge!(LAG_SECONDS).set(lag);
    }
}

/// (dead letters, inbox messages ready).
async fn queue_depths(amqp_url: &str, topology: &Topology) -> Result<(u32, u32), lapin::Error> {
    let connection = topology::connect(amqp_url).await?;
    // One channel per declare: a passive declare of a missing queue closes
    // its channel.
    let dead = passive_depth(&connection, &topology.dead_letter_queue).await;
    let ready = passive_depth(&connection, &topology.queue).await;
    let _ = connection.close(200, "finance metrics read").await;
    Ok((dead?, ready?))
}

/// A queue's ready messages; a queue not declared yet (the consumer has
/// not connected yet) holds none.
async fn passive_depth(connection: &Connection, queue: &str) -> Result<u32, lapin::Error> {
    let channel = connection.create_channel().await?;
    let declared = channel
        .queue_declare(
            queue,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await;
    match declared {
        Ok(declared) => {
            let _ = channel.close(200, "finance metrics read").await;
            Ok(declared.message_count())
        }
        Err(error) if is_not_found(&error) => Ok(0),
        Err(error) => Err(error),
    }
}

fn is_not_found(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ProtocolError(amqp)
            if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
    )
}
