//! The `Aggregate` and `DomainEvent` traits, `fold`, and stream naming.

use std::fmt::{Debug, Display};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::EventDecodeError;

/// A consistency boundary rebuilt from its own event stream.
///
/// `decide` turns a command into new events (or a domain error) without
/// changing anything; `apply` folds one event into the state. Both are pure
/// and deterministic, so the state after a list of events is always the same
/// and can be snapshotted as JSON (`Serialize`/`DeserializeOwned`).
pub trait Aggregate:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Stream category: the stream of the aggregate with id `x` is `"{CATEGORY}-{x}"`.
    const CATEGORY: &'static str;
    /// Version of the serialized state; bump when its shape changes so old
    /// snapshots are ignored (the aggregate is then rebuilt from events).
    const SNAPSHOT_VERSION: i32;

    type Command: Send + Sync;
    type Event: DomainEvent;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Folds one event into the state. Total: never fails, never panics.
    fn apply(self, event: &Self::Event) -> Self;

    /// Decides which events a command causes, given the current state.
    /// `Ok(vec![])` means "already in effect, nothing to do".
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;
}

/// An event as the store sees it: a stable type name, a schema version and
/// JSON data. `from_stored` upcasts older schema versions.
pub trait DomainEvent: Sized + Clone + PartialEq + Debug + Send + Sync + 'static {
    /// Stable type name, e.g. `"OrderPlaced"`. Never renamed once stored.
    fn event_type(&self) -> &'static str;
    /// Current schema version of this event's type.
    fn schema_version(&self) -> i32;
    /// The event's data, without the type tag.
    fn to_json(&self) -> serde_json::Value;
    /// Decodes a stored event, upcasting older schema versions to the current one.
    fn from_stored(
        event_type: &str,
        schema_version: i32,
        data: serde_json::Value,
    ) -> Result<Self, EventDecodeError>;
}

/// Folds events into a fresh aggregate.
pub fn fold<'a, A, I>(events: I) -> A
where
    A: Aggregate,
    I: IntoIterator<Item = &'a A::Event>,
{
    fold_from(A::default(), events)
}

/// Folds events into an existing state (for example one loaded from a snapshot).
pub fn fold_from<'a, A, I>(state: A, events: I) -> A
where
    A: Aggregate,
    I: IntoIterator<Item = &'a A::Event>,
{
    events
        .into_iter()
        .fold(state, |state, event| state.apply(event))
}

/// The stream id of aggregate `A` with the given id: `"{CATEGORY}-{id}"`.
pub fn stream_id<A: Aggregate>(id: impl Display) -> String {
    format!("{}-{}", A::CATEGORY, id)
}

/// An event in the store's terms, ready to append.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedEvent {
    pub event_type: &'static str,
    pub schema_version: i32,
    pub data: serde_json::Value,
}

impl EncodedEvent {
    pub fn of<E: DomainEvent>(event: &E) -> Self {
        Self {
            event_type: event.event_type(),
            schema_version: event.schema_version(),
            data: event.to_json(),
        }
    }
}

/// Events to append to one stream, as part of a multi-stream append.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamEvents {
    pub stream_id: String,
    pub events: Vec<EncodedEvent>,
}
