//! JSON encoding of event enums for the store: `(type, schema_version, data)`.
//!
//! Event enums are serde enums tagged adjacently (`{"type": .., "data": ..}`);
//! the store keeps the tag and the data in separate columns, so these helpers
//! split and join them, and check schema versions before decoding.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::DomainEvent;

/// Why a stored event could not be turned into a domain event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventDecodeError {
    #[error("unknown event type {event_type:?}")]
    UnknownType { event_type: String },
    #[error("unsupported schema version {schema_version} of {event_type} (current is {current})")]
    UnsupportedVersion {
        event_type: String,
        schema_version: i32,
        current: i32,
    },
    #[error("invalid data for {event_type} v{schema_version}: {message}")]
    InvalidData {
        event_type: String,
        schema_version: i32,
        message: String,
    },
}

/// How an event enum is stored: its type names with their current schema
/// versions, and how older versions are upcast. Every type with this gets
/// [`DomainEvent`] (type tag and data split apart, versions checked).
pub trait EventSchema:
    Serialize + DeserializeOwned + Clone + PartialEq + Debug + Send + Sync + 'static
{
    /// Every type name with its current schema version.
    const EVENT_TYPES: &'static [(&'static str, i32)];

    /// This event's stable type name.
    fn type_name(&self) -> &'static str;

    /// Turns the data of an older schema version into the current shape.
    fn upcast(_event_type: &str, _schema_version: i32, data: Value) -> Value {
        data
    }
}

impl<E: EventSchema> DomainEvent for E {
    fn event_type(&self) -> &'static str {
        self.type_name()
    }

    fn schema_version(&self) -> i32 {
        current_version(E::EVENT_TYPES, self.type_name()).unwrap_or(1)
    }

    fn to_json(&self) -> Value {
        encode_data(self)
    }

    fn from_stored(
        event_type: &str,
        schema_version: i32,
        data: Value,
    ) -> Result<Self, EventDecodeError> {
        check_version(E::EVENT_TYPES, event_type, schema_version)?;
        decode_data(
            event_type,
            schema_version,
            E::upcast(event_type, schema_version, data),
        )
    }
}

/// Current schema version of `event_type` in a `(name, version)` table.
pub(crate) fn current_version(table: &[(&'static str, i32)], event_type: &str) -> Option<i32> {
    table
        .iter()
        .find(|(name, _)| *name == event_type)
        .map(|(_, version)| *version)
}

/// Checks that `event_type` is known and `schema_version` is between 1 and current.
pub(crate) fn check_version(
    table: &[(&'static str, i32)],
    event_type: &str,
    schema_version: i32,
) -> Result<(), EventDecodeError> {
    let current =
        current_version(table, event_type).ok_or_else(|| EventDecodeError::UnknownType {
            event_type: event_type.to_owned(),
        })?;
    if schema_version < 1 || schema_version > current {
        return Err(EventDecodeError::UnsupportedVersion {
            event_type: event_type.to_owned(),
            schema_version,
            current,
        });
    }
    Ok(())
}

/// The `data` part of an adjacently tagged event enum.
pub(crate) fn encode_data<E: Serialize>(event: &E) -> Value {
    match serde_json::to_value(event) {
        Ok(Value::Object(mut tagged)) => tagged
            .remove("data")
            .unwrap_or_else(|| Value::Object(Map::new())),
        // Unreachable for this crate's events: their fields all serialize
        // infallibly and every map has string keys.
        _ => Value::Null,
    }
}

/// Decodes current-version `data` of `event_type` into an adjacently tagged enum.
pub(crate) fn decode_data<E: DeserializeOwned>(
    event_type: &str,
    schema_version: i32,
    data: Value,
) -> Result<E, EventDecodeError> {
    let mut tagged = Map::new();
    tagged.insert("type".to_owned(), Value::String(event_type.to_owned()));
    tagged.insert("data".to_owned(), data);
    serde_json::from_value(Value::Object(tagged)).map_err(|error| EventDecodeError::InvalidData {
        event_type: event_type.to_owned(),
        schema_version,
        message: error.to_string(),
    })
}
