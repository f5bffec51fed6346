//! The consumer: inbox queue -> rules -> journal, with manual acks after
//! commit, broker-side retries with backoff, and dead letters. While
//! Finance's own database is down it takes no deliveries at all (see
//! [`run`]).

use std::collections::HashMap;

use chrono::Utc;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldArray, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use sqlx::PgPool;
use thiserror::Error;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::ledger::{self, Recorded};
use crate::reconnect::{self, Backoff};
use crate::rules::{self, RuleError};
use crate::status::ConsumerStatus;
use crate::topology::{self, Topology};

/// Header: how many times the message has failed so far.
pub const ATTEMPTS_HEADER: &str = "x-finance-attempts";
/// Header: when each failure happened (unix milliseconds), oldest first.
pub const FAILED_AT_HEADER: &str = "x-finance-failed-at";
/// Header: the last failure's message.
pub const ERROR_HEADER: &str = "x-finance-error";
/// Header: the W3C trace context of the publish (set by the relay).
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Header: the routing key the message first arrived with (retries come
/// back through the default exchange, keyed by the queue's name).
pub const ROUTING_KEY_HEADER: &str = "x-finance-routing-key";

#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub amqp_url: String,
    pub topology: Topology,
    /// Deliveries the broker sends ahead of acks (bounds memory and the
    /// redeliveries after a crash).
    pub prefetch: u16,
    /// Where the consumer says whether it consumes (readiness) and what it
    /// holds (lag).
    pub status: ConsumerStatus,
}

/// Why a message could not be booked. Every kind is retried then
/// dead-lettered (a malformed payload waits in the dead-letter queue for a
/// fix and a replay), except a database error while the database does not
/// answer at all: that message goes back to the inbox and the consumer
/// stops until the database is back.
#[derive(Debug, Error)]
pub enum BookingError {
    #[error("the message has no message_id, so it cannot be booked idempotently")]
    NoMessageId,
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Books one message: its entry (if the rules make one) and its inbox row
/// in one transaction.
pub async fn book(
    pool: &PgPool,
    message_id: Option<&str>,
    contract: &str,
    payload: &[u8],
) -> Result<Recorded, BookingError> {
    let message_id = message_id.ok_or(BookingError::NoMessageId)?;
    let draft = rules::entry_for(contract, payload)?;
    Ok(ledger::record(pool, message_id, contract, draft.as_ref()).await?)
}

/// Consumes until the future is dropped, reconnecting with backoff when the
/// broker goes away (the backoff starts again from its first delay once a
/// connection has consumed). Dropping it is a crash as far as the broker is
/// concerned: the connection closes and unacked deliveries are redelivered,
/// which the inbox makes harmless.
///
/// When a booking fails and Finance's database does not answer, the
/// message is requeued and the consumer closes its connection (its other
/// unacked deliveries go back to the inbox too), waits until the database
/// answers, and consumes again: an outage of Finance's database delays
/// bookings but dead-letters nothing.
pub async fn run(pool: PgPool, settings: ConsumerSettings) {
    let mut backoff = Backoff::default();
    loop {
        match consume(&pool, &settings, &mut backoff).await {
            Ok(Stopped::Cancelled) => {
                tracing::warn!("finance consumer: the broker cancelled the consumer; reconnecting");
            }
            Ok(Stopped::DatabaseDown) => {
                tracing::warn!(
                    "finance consumer: the finance database does not answer; not consuming \
                     until it does"
                );
                reconnect::wait_for_database(&pool).await;
                tracing::info!("finance consumer: the finance database answers again");
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "finance consumer: broker connection lost; reconnecting");
            }
        }
        let delay = backoff.next_delay();
        tracing::debug!(?delay, "finance consumer: waiting before reconnecting");
        tokio::time::sleep(delay).await;
    }
}

/// Why [`consume`] stopped without a broker error.
enum Stopped {
    /// The broker ended the delivery stream (consumer cancelled).
    Cancelled,
    /// A booking failed and Finance's database does not answer.
    DatabaseDown,
}

/// What became of one delivery.
enum Handled {
    /// Acked: booked, ignored, a duplicate, or parked for a retry.
    Acked,
    /// Requeued because the database does not answer.
    Requeued,
}

async fn consume(
    pool: &PgPool,
    settings: &ConsumerSettings,
    backoff: &mut Backoff,
) -> Result<Stopped, lapin::Error> {
    let connection = topology::connect(&settings.amqp_url).await?;
    let channel = connection.create_channel().await?;
    settings.topology.declare(&channel).await?;
    channel
        .basic_qos(settings.prefetch.max(1), BasicQosOptions::default())
        .await?;
    // Retries and dead letters are published on a confirmed channel: the
    // original is acked only once the broker holds the copy.
    let publisher = connection.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            &settings.topology.queue,
            "orderstream-finance",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let _consuming = settings.status.consuming();
    backoff.reset();
    tracing::info!(queue = %settings.topology.queue, "finance consumer: consuming");
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        let _handling = settings.status.handling(&delivery);
        let span = consume_span(&delivery);
        let handled = handle(pool, &publisher, &settings.topology, delivery)
            .instrument(span)
            .await?;
        if let Handled::Requeued = handled {
            // Closing gives the prefetched deliveries back to the inbox at
            // once, rather than holding them while the database is down.
            connection
                .close(200, "finance database unavailable")
                .await?;
            return Ok(Stopped::DatabaseDown);
        }
    }
    Ok(Stopped::Cancelled)
}

async fn handle(
    pool: &PgPool,
    publisher: &Channel,
    topology: &Topology,
    delivery: Delivery,
) -> Result<Handled, lapin::Error> {
    let contract = contract_of(&delivery);
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(ShortString::as_str);
    match book(pool, message_id, &contract, &delivery.data).await {
        Ok(recorded) => {
            let outcome = match recorded {
                Recorded::Booked { .. } => "booked",
                Recorded::Ignored => "ignored",
                Recorded::Duplicate => "duplicate",
            };
            tracing::Span::current().record("outcome", outcome);
            tracing::debug!(?message_id, %contract, outcome, "finance: message handled");
            crate::metrics::message_handled(outcome);
        }
        Err(error @ BookingError::Database(_)) if !reconnect::database_answers(pool).await => {
            tracing::Span::current().record("outcome", "requeued");
            tracing::warn!(?message_id, %contract, %error, "finance: database unavailable; message requeued");
            crate::metrics::message_handled("requeued");
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await?;
            return Ok(Handled::Requeued);
        }
        Err(error) => {
            let failed = fail(publisher, topology, &delivery, &contract, &error).await?;
            tracing::Span::current().record("outcome", "failed");
            tracing::warn!(?message_id, %contract, %error, dead_lettered = failed.dead_lettered, attempts = failed.attempts, "finance: message failed");
            crate::metrics::message_handled(if failed.dead_lettered {
                "dead_lettered"
            } else {
                "retried"
            });
        }
    }
    delivery.acker.ack(BasicAckOptions::default()).await?;
    Ok(Handled::Acked)
}

/// The span of handling one delivery: a child of the message's
/// `traceparent` (the relay's publish span), so that the booking joins the
/// trace of the request that caused it. Without a valid one it starts a
/// trace of its own.
fn consume_span(delivery: &Delivery) -> tracing::Span {
    let span = tracing::info_span!(
        "consume",
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        contract = %contract_of(delivery),
        message_id = delivery.properties.message_id().as_ref().map(ShortString::as_str),
        outcome = tracing::field::Empty,
    );
    if let Some(parent) = trace_context(delivery) {
        // Fails only without the OpenTelemetry layer: nothing to join then.
        let _ = span.set_parent(parent);
    }
    span
}

/// The message's W3C trace context, read by OpenTelemetry's propagator.
fn trace_context(delivery: &Delivery) -> Option<opentelemetry::Context> {
    let value = match delivery
        .properties
        .headers()
        .as_ref()?
        .inner()
        .get(TRACEPARENT_HEADER)?
    {
        AMQPValue::LongString(value) => value.to_string(),
        AMQPValue::ShortString(value) => value.to_string(),
        _ => return None,
    };
    let carrier = HashMap::from([(TRACEPARENT_HEADER.to_owned(), value)]);
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

struct Failed {
    attempts: i64,
    dead_lettered: bool,
}

/// Parks a copy of a failed message in the next retry queue, or in the
/// dead-letter queue after the last delay, and waits for the broker's
/// confirm. The caller acks the original only after this returns.
async fn fail(
    publisher: &Channel,
    topology: &Topology,
    delivery: &Delivery,
    contract: &str,
    error: &BookingError,
) -> Result<Failed, lapin::Error> {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let attempts = attempts_of(&headers) + 1;
    let mut failed_at: Vec<AMQPValue> = match headers.inner().get(FAILED_AT_HEADER) {
        Some(AMQPValue::FieldArray(array)) => array.as_slice().to_vec(),
        _ => Vec::new(),
    };
    failed_at.push(AMQPValue::LongLongInt(Utc::now().timestamp_millis()));
    let mut headers = headers;
    headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongLongInt(attempts));
    headers.insert(
        FAILED_AT_HEADER.into(),
        AMQPValue::FieldArray(FieldArray::from(failed_at)),
    );
    headers.insert(
        ERROR_HEADER.into(),
        AMQPValue::LongString(error.to_string().into()),
    );
    headers.insert(
        ROUTING_KEY_HEADER.into(),
        AMQPValue::LongString(contract.into()),
    );
    let next_delay = usize::try_from(attempts - 1)
        .ok()
        .and_then(|i| topology.retry_delays.get(i));
    let (queue, dead_lettered) = match next_delay {
        Some(delay) => (topology.retry_queue(*delay), false),
        None => (topology.dead_letter_queue.clone(), true),
    };
    let properties = delivery.properties.clone().with_headers(headers);
    publish_to_queue(publisher, &queue, &delivery.data, properties).await?;
    Ok(Failed {
        attempts,
        dead_lettered,
    })
}

/// Publishes through the default exchange straight to a queue, and waits
/// for the confirm (the channel must be in confirm mode).
pub(crate) async fn publish_to_queue(
    publisher: &Channel,
    queue: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), lapin::Error> {
    let confirmation = publisher
        .basic_publish(
            "",
            queue,
            BasicPublishOptions::default(),
            payload,
            properties,
        )
        .await?
        .await?;
    if confirmation.is_nack() {
        return Err(lapin::ErrorKind::InvalidChannelState(
            lapin::ChannelState::Error,
            "the broker nacked a retry or dead-letter publish",
        )
        .into());
    }
    Ok(())
}

/// The contract: the `type` property (the relay sets it), else the
/// routing key the message first came with.
pub(crate) fn contract_of(delivery: &Delivery) -> String {
    if let Some(kind) = delivery.properties.kind() {
        return kind.to_string();
    }
    match delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ROUTING_KEY_HEADER))
    {
        Some(AMQPValue::LongString(key)) => key.to_string(),
        _ => delivery.routing_key.to_string(),
    }
}

pub(crate) fn attempts_of(headers: &FieldTable) -> i64 {
    match headers.inner().get(ATTEMPTS_HEADER) {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        _ => 0,
    }
}
