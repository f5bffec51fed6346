//! Command execution: the one path by which domain events reach the store.
//!
//! [`CommandExecutor::execute`] loads an aggregate (latest snapshot plus
//! later events), asks its pure `decide`, and appends the result expecting
//! exactly the version it loaded; when another writer got there first it
//! reloads and decides again, a bounded number of times. A state it has
//! just written or read may stand in for the load (`cache.rs` says why that
//! is safe). Decisions that span several aggregates (reserving an order's
//! lines across SKUs) go through [`CommandExecutor::change_reservation`],
//! which appends to every stream involved in one atomic multi-stream append,
//! and [`CommandExecutor::ship_order`], which does the same for the order,
//! its reservation and its stock; [`CommandExecutor::request_payment`]
//! decides a payment round's gateway attempt on the order and its payment.
//!
//! It is not the domain (that is `aggregates`, pure) nor the store (that is
//! `event-store`, which knows no domain type): it is the glue between them,
//! used alike by the HTTP API and by the choreography reactors.
//!
//! Start reading at [`CommandExecutor`], then `context.rs` for how
//! correlation, causation and deterministic event ids flow into metadata.

mod batch;
mod cache;
mod context;
mod decision;
mod error;
mod executor;
mod loading;
mod payments;
mod reservations;
mod shipping;

pub use batch::{BatchRefused, DecisionBatch};
pub use context::CommandContext;
pub use error::ExecuteError;
pub use executor::{CommandExecutor, Executed, ExecutorOptions};
pub use loading::Loaded;
pub use payments::PaymentAttempt;
pub use reservations::ReservationChange;
