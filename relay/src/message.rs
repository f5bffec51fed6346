//! The AMQP properties and headers of a contract message (the agreed
//! format: docs/notes/i11-relay.md, "Message format").

use contracts::IntegrationEvent;
use event_store::{RecordedEvent, Traceparent};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;

pub const HEADER_CAUSATION_ID: &str = "causation_id";
pub const HEADER_STREAM_ID: &str = "stream_id";
pub const HEADER_LOG_POSITION: &str = "log_position";
pub const HEADER_SCHEMA_VERSION: &str = "schema_version";
pub const HEADER_TRACEPARENT: &str = event_store::TRACEPARENT;

/// The span of one publish: a child of the span it is created in (the
/// relay's reaction to `event`, itself a child of the event's trace
/// context), so the consumer's span, whose parent is the message's
/// `traceparent`, joins the trace of the request that caused the event.
pub fn publish_span(exchange: &str, message: &IntegrationEvent) -> tracing::Span {
    tracing::info_span!(
        "publish",
        otel.kind = "producer",
        messaging.system = "rabbitmq",
        messaging.destination.name = %exchange,
        contract = message.name,
        message_id = %message.message_id,
    )
}

/// The `traceparent` of a publish: the publish span's context, or, where
/// spans are not bridged to OpenTelemetry, the source event's own.
pub fn message_traceparent(span: &tracing::Span, event: &RecordedEvent) -> Option<Traceparent> {
    Traceparent::of_span(span).or_else(|| event.traceparent())
}

/// Persistent, JSON, ids and the source event's place in the log, and the
/// trace context of the publish.
pub fn properties(
    event: &RecordedEvent,
    message: &IntegrationEvent,
    traceparent: Option<&Traceparent>,
) -> BasicProperties {
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
    if let Some(traceparent) = traceparent {
        headers.insert(
            HEADER_TRACEPARENT.into(),
            AMQPValue::LongString(LongString::from(traceparent.as_str())),
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

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use lapin::types::AMQPValue;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn event(metadata: serde_json::Value) -> RecordedEvent {
        RecordedEvent {
            position: 7,
            transaction_id: 3,
            stream_id: "order-1".into(),
            stream_version: 1,
            event_id: Uuid::new_v4(),
            event_type: "OrderPlaced".into(),
            schema_version: 2,
            data: json!({}),
            metadata,
            correlation_id: None,
            causation_id: None,
            recorded_at: Utc::now(),
        }
    }

    fn message() -> IntegrationEvent {
        IntegrationEvent {
            name: "order.placed.v1",
            schema_version: 1,
            message_id: Uuid::new_v4(),
            payload: json!({}),
        }
    }

    fn header(properties: &BasicProperties) -> Option<String> {
        match properties
            .headers()
            .as_ref()?
            .inner()
            .get(HEADER_TRACEPARENT)?
        {
            AMQPValue::LongString(value) => Some(value.to_string()),
            _ => None,
        }
    }

    #[test]
    fn the_traceparent_header_is_the_one_given() {
        let traced = event(json!({ "traceparent": TRACEPARENT }));
        let traceparent = Traceparent::parse(TRACEPARENT).ok();
        let with = properties(&traced, &message(), traceparent.as_ref());
        assert_eq!(header(&with).as_deref(), Some(TRACEPARENT));
        assert_eq!(header(&properties(&traced, &message(), None)), None);
    }

    #[test]
    fn without_a_bridged_span_the_events_own_context_is_published() {
        let span = tracing::Span::none();
        let traced = event(json!({ "traceparent": TRACEPARENT }));
        assert_eq!(
            message_traceparent(&span, &traced),
            Traceparent::parse(TRACEPARENT).ok()
        );
        let untraced = event(json!({ "traceparent": "00-not-valid" }));
        assert_eq!(message_traceparent(&span, &untraced), None);
    }
}
