//! The pure domain of orderstream: the Order, Inventory, Reservation and
//! Payment aggregates, their commands, events and errors.
//!
//! What it is: `decide(&state, command) -> events | error` and
//! `apply(state, &event) -> state`, pure and deterministic, plus the
//! encoding of events as `(type, schema_version, JSON data)` with upcasters
//! for old schema versions.
//!
//! What it is not: no I/O. No database, no async runtime, no HTTP, no
//! clock. Loading streams, appending events and calling payment gateways
//! belong to `event-store`, `projections` and `api`.
//!
//! Where to start reading: [`Aggregate`] and [`DomainEvent`] in
//! `aggregate.rs`, then [`order`] (the state machine is in its module doc),
//! [`inventory`] with its allocation policy, [`reservation`] (the
//! multi-stream reserve / release / commit decisions), [`shipment`] (the
//! order shipped and its reservation committed in one decision) and
//! [`payment`].
//! [`limits`] bounds every quantity and amount so that no sum overflows
//! or rounds.
//! [`testing`] has the given / when / then helper.

mod aggregate;
mod codec;
mod error_kind;
pub mod inventory;
pub mod limits;
pub mod order;
pub mod payment;
pub mod reservation;
pub mod shipment;
pub mod testing;
pub mod values;

pub use aggregate::{
    fold, fold_from, stream_id, Aggregate, DomainEvent, EncodedEvent, StreamEvents,
};
pub use codec::EventDecodeError;
pub use error_kind::ErrorKind;
