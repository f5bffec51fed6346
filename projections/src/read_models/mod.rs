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
    E::from_stored(&event.event_type, event.schema_version, event.data.clone()).map_err(|error| {
        HandlerError::new(format!(
            "cannot decode event {} of {}: {error}",
            event.position, event.stream_id
        ))
    })
}
