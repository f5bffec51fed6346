//! Everything that follows the log: the subscription runtime, the read
//! models it projects, and the reactors that drive the order -> reserve ->
//! ship -> pay choreography with no central orchestrator.
//!
//! A *projection* turns events into rows of a read model, writing its rows
//! and its checkpoint in one transaction (exactly-once effect). A *reactor*
//! turns an event into a command on an aggregate through the shared
//! `commands` path, with event ids derived from the source event
//! (at-least-once delivery, exactly-once effect).
//!
//! It is not the HTTP API (that is `api`) and writes to the event store only
//! through `commands`.
//!
//! Start reading at [`runtime`] (`SubscriptionRuntime::start`), then the
//! read models in [`read_models`] and the reactors in [`reactors`];
//! [`operations`] is what operators call (status, parked, reset, rebuild);
//! [`consumer_groups`] how a reactor is split into members that several
//! processes share.

pub mod catalogue;
pub mod consumer_groups;
pub mod gateway;
pub mod operations;
mod reaction_span;
pub mod reactors;
pub mod read_models;
pub mod runtime;
mod subscriber;

pub use subscriber::{BatchDecisions, HandlerError, Projection, Reactor, RebuildSession};
