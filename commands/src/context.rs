//! Who asked for a command, and how its events are identified.

use aggregates::EncodedEvent;
use event_store::{CorrelationId, EventMetadata, NewEvent};
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
            id_seed: Some(Uuid::new_v5(&namespace, source_event_id.as_bytes())),
        }
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
