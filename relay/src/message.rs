//! The AMQP properties and headers of a contract message (the agreed
//! format: docs/notes/i11-relay.md, "Message format").

use contracts::IntegrationEvent;
use event_store::RecordedEvent;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;

pub const HEADER_CAUSATION_ID: &str = "causation_id";
pub const HEADER_STREAM_ID: &str = "stream_id";
pub const HEADER_LOG_POSITION: &str = "log_position";
pub const HEADER_SCHEMA_VERSION: &str = "schema_version";
pub const HEADER_TRACEPARENT: &str = "traceparent";

/// Persistent, JSON, ids and the source event's place in the log.
pub fn properties(event: &RecordedEvent, message: &IntegrationEvent) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Some(causation_id) = event.causation_id {
        headers.insert(
            HEADER_CAUSATION_ID.into(),
            AMQPValue::LongString(LongString::from(causation_id.to_string())),
        );
    }
    headers.insert(
        HEADER_STREAM_ID.into(),
        AMQPValue::LongString(LongString::from(event.stream_id.clone())),
    );
    headers.insert(
        HEADER_LOG_POSITION.into(),
        AMQPValue::LongLongInt(event.position),
    );
    headers.insert(
        HEADER_SCHEMA_VERSION.into(),
        AMQPValue::LongInt(i32::try_from(message.schema_version).unwrap_or(i32::MAX)),
    );
    // Set by whoever traced the request that caused the event, when known.
    if let Some(traceparent) = event
        .metadata
        .get(HEADER_TRACEPARENT)
        .and_then(|v| v.as_str())
    {
        headers.insert(
            HEADER_TRACEPARENT.into(),
            AMQPValue::LongString(LongString::from(traceparent.to_owned())),
        );
    }
    let mut properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(message.message_id.to_string()))
        .with_type(ShortString::from(message.name))
        .with_app_id(ShortString::from("orderstream"))
        .with_timestamp(u64::try_from(event.recorded_at.timestamp()).unwrap_or_default())
        .with_headers(headers);
    if let Some(correlation_id) = &event.correlation_id {
        properties = properties.with_correlation_id(ShortString::from(correlation_id.as_str()));
    }
    properties
}
