//! The Order aggregate (`order-{id}`): placement, reservation outcome,
//! cancellation, shipment and payment outcome.
//!
//! State machine (status after each event):
//!
//! ```text
//! (none) --OrderPlaced--> pending --OrderReserved--> reserved --OrderShipped--> shipped --OrderPaid--> paid
//!                         pending --OrderRejected--> rejected                  shipped --OrderPaymentFailed--> payment_failed
//!               pending|reserved --OrderCancelled--> cancelled   payment_failed --OrderPaymentRetryRequested--> shipped
//! ```
//!
//! Idempotent no-ops (`Ok(vec![])`), so redelivered reactor commands have no
//! second effect:
//! - `MarkReserved` on reserved, shipped, paid or payment_failed (already past
//!   it) and on cancelled (a late reservation outcome after a cancel is ignored);
//! - `Reject` on rejected and on cancelled;
//! - `Cancel` on cancelled;
//! - `Ship` on shipped, paid or payment_failed;
//! - `MarkPaid` on paid;
//! - `MarkPaymentFailed` on payment_failed and on paid (a stale failure of an
//!   earlier attempt).
//!
//! Everything else that does not fit the machine is a named `OrderError`.

mod command;
mod decide;
mod error;
mod event;
mod place;
mod state;

pub use crate::limits::{MAX_LINES, MAX_LINE_QUANTITY, MAX_PRICE_SCALE, MAX_UNIT_PRICE};
pub use command::{OrderCommand, PlaceOrder};
pub use error::OrderError;
pub use event::OrderEvent;
pub use state::{Order, OrderLine, OrderStatus, PlacedOrder};
