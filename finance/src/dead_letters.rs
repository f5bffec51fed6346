//! Listing and replaying the dead-letter queue, for the CLI and the admin
//! HTTP endpoints.
//!
//! The queue stays the store: listing fetches messages without acking them
//! and closes the channel, which returns them to the queue; replaying
//! republishes a message to the inbox queue, waits for the broker's confirm
//! and only then acks (removes) the dead letter. A crash between the two
//! leaves a copy in both queues, which the inbox makes harmless.

use chrono::{DateTime, Utc};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, Connection};
use serde::Serialize;
use thiserror::Error;

use crate::consumer::{self, ATTEMPTS_HEADER, ERROR_HEADER, FAILED_AT_HEADER};
use crate::topology::Topology;

#[derive(Debug, Error)]
pub enum DeadLetterError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeadLetter {
    pub message_id: Option<String>,
    pub contract: String,
    /// Failed attempts before it was dead-lettered.
    pub attempts: i64,
    pub last_error: Option<String>,
    /// When each attempt failed, oldest first: the gaps are the backoff.
    pub failed_at: Vec<DateTime<Utc>>,
    /// The payload as text (it may not be JSON: that can be why it died).
    pub payload: String,
}

/// Which dead letters to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    All,
    MessageId(String),
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Replayed {
    pub replayed: usize,
}

/// Up to `limit` dead letters, oldest first, left in the queue.
pub async fn list(
    connection: &Connection,
    topology: &Topology,
    limit: usize,
) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let channel = connection.create_channel().await?;
    let waiting = depth(&channel, topology).await?;
    let mut letters = Vec::new();
    for _ in 0..waiting.min(limit) {
        match get(&channel, topology).await? {
            Some(delivery) => letters.push(describe(&delivery)),
            None => break,
        }
    }
    // Closing the channel returns every unacked message to the queue.
    channel.close(200, "dead letters listed").await?;
    Ok(letters)
}

/// How many dead letters are waiting.
pub async fn count(connection: &Connection, topology: &Topology) -> Result<usize, DeadLetterError> {
    let channel = connection.create_channel().await?;
    let waiting = depth(&channel, topology).await?;
    channel.close(200, "dead letters counted").await?;
    Ok(waiting)
}

/// Republishes the selected dead letters to the inbox queue (attempt count
/// reset) and removes them from the dead-letter queue.
pub async fn replay(
    connection: &Connection,
    topology: &Topology,
    which: &Replay,
) -> Result<Replayed, DeadLetterError> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    // Bounded by the depth seen now: messages dead-lettered meanwhile wait
    // for the next replay instead of making this one loop.
    let waiting = depth(&channel, topology).await?;
    let mut replayed = 0;
    for _ in 0..waiting {
        let Some(delivery) = get(&channel, topology).await? else {
            break;
        };
        let selected = match which {
            Replay::All => true,
            Replay::MessageId(id) => message_id(&delivery).as_deref() == Some(id.as_str()),
        };
        if !selected {
            continue;
        }
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        let fresh: FieldTable = headers
            .inner()
            .iter()
            .filter(|(key, _)| {
                ![ATTEMPTS_HEADER, FAILED_AT_HEADER, ERROR_HEADER].contains(&key.as_str())
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into();
        let properties = delivery.properties.clone().with_headers(fresh);
        consumer::publish_to_queue(&channel, &topology.queue, &delivery.data, properties).await?;
        delivery.acker.ack(BasicAckOptions::default()).await?;
        replayed += 1;
    }
    channel.close(200, "dead letters replayed").await?;
    Ok(Replayed { replayed })
}

async fn depth(channel: &Channel, topology: &Topology) -> Result<usize, lapin::Error> {
    let queue = channel
        .queue_declare(
            &topology.dead_letter_queue,
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(usize::try_from(queue.message_count()).unwrap_or(usize::MAX))
}

async fn get(channel: &Channel, topology: &Topology) -> Result<Option<Delivery>, lapin::Error> {
    Ok(channel
        .basic_get(
            &topology.dead_letter_queue,
            BasicGetOptions { no_ack: false },
        )
        .await?
        .map(|message| message.delivery))
}

fn message_id(delivery: &Delivery) -> Option<String> {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(ShortString::to_string)
}

fn describe(delivery: &Delivery) -> DeadLetter {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let last_error = match headers.inner().get(ERROR_HEADER) {
        Some(AMQPValue::LongString(text)) => Some(text.to_string()),
        _ => None,
    };
    let failed_at = match headers.inner().get(FAILED_AT_HEADER) {
        Some(AMQPValue::FieldArray(array)) => array
            .as_slice()
            .iter()
            .filter_map(|v| match v {
                AMQPValue::LongLongInt(ms) => DateTime::from_timestamp_millis(*ms),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    DeadLetter {
        message_id: message_id(delivery),
        contract: consumer::contract_of(delivery),
        attempts: consumer::attempts_of(&headers),
        last_error,
        failed_at,
        payload: String::from_utf8_lossy(&delivery.data).into_owned(),
    }
}
