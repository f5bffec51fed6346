//! Who asked for a command, and how its events are identified.

use aggregates::EncodedEvent;
use event_store::{CorrelationId, EventMetadata, NewEvent, Traceparent};
use uuid::Uuid;

/// Namespace of the causation ids derived from correlation ids that are
/// not UUIDs.
const REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x7265_7175_6573_742d_6361_7573_6174_696f);

/// The metadata every event of a command carries, and how its event ids
/// are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// The request that started the flow, as its caller named it; copied
    /// into every event.
    pub correlation_id: CorrelationId,
    /// The event (or request) that caused this command.
    pub causation_id: Uuid,
    /// Who asked: `api`, a subscription name, an operator.
    pub actor: String,
    /// The trace context of the span the command was issued in (the
    /// request's, a reactor's), copied into every event. Never part of an
    /// event id: a redelivered source event handled in another span must
    /// still derive the same ids.
    pub traceparent: Option<Traceparent>,
    /// When set, event ids are derived from it (UUID v5) instead of drawn
    /// at random: a reactor handling the same source event twice then
    /// produces the same ids, and the store's idempotent append turns the
    /// second effect into a no-op.
    id_seed: Option<Uuid>,
}

impl CommandContext {
    /// A command from a request: random event ids; the request is both the
    /// correlation and the cause. A cause is a UUID (an event's or a
    /// request's id): a correlation id that is one is used as it is, any
    /// other gets a UUID v5 of its text, so every request of one caller's
    /// flow names the same cause.
    pub fn from_request(
        correlation_id: impl Into<CorrelationId>,
        actor: impl Into<String>,
    ) -> Self {
        let correlation_id = correlation_id.into();
        let causation_id = correlation_id.as_uuid().unwrap_or_else(|| {
            Uuid::new_v5(&REQUEST_NAMESPACE, correlation_id.as_str().as_bytes())
        });
        CommandContext {
            correlation_id,
            causation_id,
            actor: actor.into(),
            traceparent: None,
            id_seed: None,
        }
    }

    /// A command a subscription issues because of `source_event_id`: ids
    /// are UUID v5 of the subscription name and the source event id.
    pub fn caused_by_event(
        subscription: &str,
        source_event_id: Uuid,
        correlation_id: Option<CorrelationId>,
    ) -> Self {
        let namespace = Uuid::new_v5(&Uuid::NAMESPACE_OID, subscription.as_bytes());
        CommandContext {
            correlation_id: correlation_id.unwrap_or_else(|| source_event_id.into()),
            causation_id: source_event_id,
            actor: subscription.to_owned(),
            traceparent: None,
            id_seed: Some(Uuid::new_v5(&namespace, source_event_id.as_bytes())),
        }
    }

    /// The same context in the trace of `traceparent` (usually
    /// `Traceparent::current()`, the span issuing the command).
    pub fn with_traceparent(mut self, traceparent: Option<Traceparent>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// The id of `event`, the `index`-th this command writes to
    /// `stream_id`. Derived ids also depend on the event's content: a
    /// redelivered event that decides the same events again gets the same
    /// ids (a no-op append), while a later, different decision caused by the
    /// same source (a retry's next attempt) gets ids of its own.
    pub fn event_id(&self, stream_id: &str, index: usize, event: &EncodedEvent) -> Uuid {
        match self.id_seed {
            Some(seed) => Uuid::new_v5(
                &seed,
                format!("{stream_id}/{index}/{}/{}", event.event_type, event.data).as_bytes(),
            ),
            None => Uuid::new_v4(),
        }
    }

    pub(crate) fn metadata(&self) -> EventMetadata {
        EventMetadata {
            correlation_id: Some(self.correlation_id.clone()),
            causation_id: Some(self.causation_id),
            actor: Some(self.actor.clone()),
            traceparent: self.traceparent.clone(),
        }
    }

    /// Turns encoded domain events for `stream_id` into events to append.
    pub(crate) fn new_events(&self, stream_id: &str, events: &[EncodedEvent]) -> Vec<NewEvent> {
        events
            .iter()
            .enumerate()
            .map(|(index, event)| NewEvent {
                event_id: self.event_id(stream_id, index, event),
                event_type: event.event_type.to_owned(),
                schema_version: event.schema_version,
                data: event.data.clone(),
                metadata: self.metadata(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traceparent(span_id: &str) -> Option<Traceparent> {
        Traceparent::parse(&format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{span_id}-01")).ok()
    }

    #[test]
    fn the_trace_context_goes_into_the_metadata_but_not_into_derived_ids() {
        let source = Uuid::new_v4();
        let event = EncodedEvent {
            event_type: "OrderReserved",
            schema_version: 1,
            data: serde_json::json!({ "order_id": source }),
        };
        let first = CommandContext::caused_by_event("order-reactor", source, None)
            .with_traceparent(traceparent("00f067aa0ba902b7"));
        let again = CommandContext::caused_by_event("order-reactor", source, None)
            .with_traceparent(traceparent("b7ad6b7169203331"));
        let first_events = first.new_events("order-1", std::slice::from_ref(&event));
        let again_events = again.new_events("order-1", std::slice::from_ref(&event));
        assert_eq!(first_events[0].event_id, again_events[0].event_id);
        assert_eq!(
            first_events[0].metadata.traceparent,
            traceparent("00f067aa0ba902b7")
        );
        assert_eq!(
            again_events[0].metadata.traceparent,
            traceparent("b7ad6b7169203331")
        );
        let untraced = CommandContext::from_request(source, "api").metadata();
        assert_eq!(untraced.traceparent, None);
    }
}
