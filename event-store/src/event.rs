//! Events as the store sees them: opaque JSON with a type name, a schema
//! version and metadata.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CorrelationId, LogCursor, Traceparent};

/// Who and what caused an event. Correlation and causation ids are also
/// stored in their own indexed columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The request that started the whole flow this event belongs to, as
    /// its caller named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
    /// The event (or request) that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Who asked: a user, a subscription name, an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The W3C trace context of the span that wrote the event: what the
    /// event causes later continues that trace. An invalid stored value
    /// reads as none rather than failing the whole metadata.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_traceparent"
    )]
    pub traceparent: Option<Traceparent>,
}

fn lenient_traceparent<'de, D>(deserializer: D) -> Result<Option<Traceparent>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .and_then(|text| Traceparent::parse(text).ok()))
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique across the store; appending the same id again with the same
    /// content is a no-op, which makes retries safe.
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub data: serde_json::Value,
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// An event with a fresh random id and empty metadata.
    pub fn new(event_type: impl Into<String>, data: serde_json::Value) -> Self {
        NewEvent {
            event_id: Uuid::new_v4(),
            event_type: event_type.into(),
            schema_version: 1,
            data,
            metadata: EventMetadata::default(),
        }
    }

    pub fn with_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }

    pub fn with_schema_version(mut self, schema_version: i32) -> Self {
        self.schema_version = schema_version;
        self
    }

    pub fn with_metadata(mut self, metadata: EventMetadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct RecordedEvent {
    /// Unique position in the global log (see [`LogCursor`] for its order).
    pub position: i64,
    /// The writing transaction; with `position`, the event's place in the
    /// order readers see.
    pub transaction_id: i64,
    pub stream_id: String,
    /// 1 for a stream's first event.
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub data: serde_json::Value,
    /// The metadata as stored (an object with at least the fields of
    /// [`EventMetadata`] that were set).
    pub metadata: serde_json::Value,
    pub correlation_id: Option<CorrelationId>,
    pub causation_id: Option<Uuid>,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// Where this event is in the log: a checkpoint after handling it.
    pub fn cursor(&self) -> LogCursor {
        LogCursor {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }

    /// The stream's category: the part of the stream id before the first `-`.
    pub fn category(&self) -> &str {
        category_of(&self.stream_id)
    }

    /// The trace context the event was written in, when its metadata has
    /// a valid one.
    pub fn traceparent(&self) -> Option<Traceparent> {
        Traceparent::of_metadata(&self.metadata)
    }
}

/// `order-42` -> `order`.
pub(crate) fn category_of(stream_id: &str) -> &str {
    stream_id.split('-').next().unwrap_or(stream_id)
}

/// The columns every event query selects, in [`RecordedEvent`]'s shape.
pub(crate) const EVENT_COLUMNS: &str = "position, transaction_id, stream_id, stream_version, \
     event_id, event_type, schema_version, data, metadata, correlation_id, causation_id, recorded_at";

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn metadata_keeps_a_traceparent_and_omits_a_missing_one() {
        let traced = EventMetadata {
            traceparent: Traceparent::parse(TRACEPARENT).ok(),
            ..EventMetadata::default()
        };
        let stored = serde_json::to_value(&traced).expect("serialises");
        assert_eq!(stored, json!({ "traceparent": TRACEPARENT }));
        let read: EventMetadata = serde_json::from_value(stored).expect("reads back");
        assert_eq!(read, traced);
        let untraced = serde_json::to_value(EventMetadata::default()).expect("serialises");
        assert_eq!(untraced, json!({}));
    }

    #[test]
    fn an_invalid_stored_traceparent_reads_as_none() {
        for value in [json!("00-nope"), json!(7), json!(null)] {
            let read: EventMetadata =
                serde_json::from_value(json!({ "actor": "a", "traceparent": value }))
                    .expect("the rest of the metadata still reads");
            assert_eq!(read.traceparent, None);
            assert_eq!(read.actor.as_deref(), Some("a"));
        }
    }
}
