//! The Payment aggregate (`payment-{order_id}`): attempts to capture an
//! order's payment, and the deterministic gateway simulator.
//!
//! States: requested -> captured | failed (retryable or not);
//! failed -> requested (next attempt); captured -> refunded.
//!
//! Every attempt is numbered (1, 2, ...), so redelivered commands are
//! recognised. Idempotent no-ops (`Ok(vec![])`): `Request` for an attempt
//! already made; `RecordCapture` once captured or refunded (there is never a
//! second `PaymentCaptured`); `RecordFailure` once failed; `Refund` once
//! refunded.

mod command;
mod decide;
mod error;
mod event;
mod simulator;
mod state;

pub use command::PaymentCommand;
pub use error::PaymentError;
pub use event::PaymentEvent;
pub use simulator::{simulated_gateway_outcome, GatewayOutcome};
pub use state::{Payment, PaymentFailure, PaymentRequest, PaymentStatus};
