//! The Reservation aggregate (`reservation-{order_id}`): one order's stock
//! reservation across SKUs and warehouses, and the multi-stream decisions
//! that reserve, release and commit it together with the Inventory streams.
//!
//! States: none -> reserved | failed; reserved -> released | committed;
//! none -> released (a cancel that arrives before the reservation: the
//! tombstone makes any later reserve a no-op, so a cancelled order is never
//! reserved afterwards).
//!
//! Idempotent no-ops (`Ok(vec![])`): `Reserve` and `MarkUnavailable` once
//! the reservation is no longer `none` (the first outcome wins); `Release`
//! on failed or released; `Commit` on committed. Errors: `Commit` unless
//! reserved (`NotReserved`), `Release` once committed (`AlreadyCommitted`).

mod command;
mod coordinate;
mod decide;
mod error;
mod event;
mod state;

pub use command::ReservationCommand;
pub use coordinate::{commit_order, release_order, reserve_order, ReservationDecision};
pub use error::ReservationError;
pub use event::ReservationEvent;
pub use state::{Reservation, ReservationStatus, SkuAllocation};
