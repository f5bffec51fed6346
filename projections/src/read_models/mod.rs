//! Read models: tables projected from the log, and the queries that read
//! them. Each can be rebuilt from position 0 at any time.

mod binary_copy;
pub mod current;
pub mod orders;
pub mod payments;
pub mod stock;

use aggregates::DomainEvent;
use event_store::RecordedEvent;

use crate::HandlerError;

/// Decodes a stored event into a domain event (upcasting old versions).
pub(crate) fn decode<E: DomainEvent>(event: &RecordedEvent) -> Result<E, HandlerError> {
    decode_data(event, event.data.clone())
}

/// As [`decode`], but moves the data out of `event` (leaving `null`)
/// instead of copying it: for a caller that owns the event and needs its
/// data no more.
pub(crate) fn decode_taking_data<E: DomainEvent>(
    event: &mut RecordedEvent,
) -> Result<E, HandlerError> {
    let data = std::mem::take(&mut event.data);
    decode_data(event, data)
}

fn decode_data<E: DomainEvent>(
    event: &RecordedEvent,
    data: serde_json::Value,
) -> Result<E, HandlerError> {
    E::from_stored(&event.event_type, event.schema_version, data).map_err(|error| {
        HandlerError::new(format!(
            "cannot decode event {} of {}: {error}",
            event.position, event.stream_id
        ))
    })
}
