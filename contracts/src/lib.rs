//! orderstream's integration contracts: the versioned messages it publishes
//! to other services (routing key = contract name, e.g. `order.shipped.v1`),
//! and the pure mapping from the domain events of its log to them.
//!
//! What it is: one payload type per contract ([`payloads`]), with JSON
//! Schemas derived from the types (for the AsyncAPI document), and
//! [`integration_events`], which turns one recorded event (plus, for some,
//! the earlier events of its stream) into the messages to publish.
//!
//! What it is not: no I/O. Loading the earlier events a mapping needs
//! ([`needs_history`]) and publishing are the relay's (`relay` crate).
//! Domain events are the log's private language and change with the model;
//! contracts change only additively or by a new version beside the old.

pub mod asyncapi;
mod mapping;
pub mod payloads;

use uuid::Uuid;

pub use asyncapi::asyncapi_document;
pub use mapping::{fold_stock, integration_events, needs_history, stock_changes};
pub use payloads::{Contract, CONTRACTS};

/// One message to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationEvent {
    /// The contract name: routing key and AMQP `type`.
    pub name: &'static str,
    pub schema_version: u32,
    /// The source event's id; a source event that yields several messages
    /// (a reservation over several warehouses) gives the second and later
    /// ones ids derived from it, so every message has its own stable id.
    pub message_id: Uuid,
    pub payload: serde_json::Value,
}

impl IntegrationEvent {
    pub fn of<C: Contract>(message_id: Uuid, payload: &C) -> Result<Self, ContractError> {
        Ok(IntegrationEvent {
            name: C::NAME,
            schema_version: C::SCHEMA_VERSION,
            message_id,
            payload: serde_json::to_value(payload).map_err(|error| ContractError::Encode {
                contract: C::NAME,
                message: error.to_string(),
            })?,
        })
    }

    /// The payload as the bytes of the message body.
    pub fn body(&self) -> Vec<u8> {
        // A `Value` always serializes.
        serde_json::to_vec(&self.payload).unwrap_or_default()
    }
}

/// Why a recorded event could not be mapped to its contracts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("cannot decode event {event_id}: {source}")]
    Decode {
        event_id: Uuid,
        #[source]
        source: aggregates::EventDecodeError,
    },
    #[error("{event_type} {event_id} needs the earlier {needs} of stream {stream_id}, which was not given")]
    MissingHistory {
        event_id: Uuid,
        event_type: String,
        stream_id: String,
        needs: &'static str,
    },
    #[error("stream id {0:?} does not end in a UUID")]
    StreamId(String),
    #[error("cannot encode {contract}: {message}")]
    Encode {
        contract: &'static str,
        message: String,
    },
}
