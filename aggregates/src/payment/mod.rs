//! The Payment aggregate (`payment-{order_id}`): attempts to capture an
//! order's payment, and the deterministic gateway simulator.
//!
//! States: requested -> captured | failed (retryable or not);
//! failed -> requested (next attempt); captured -> refunded.
//!
//! The order asks to be paid in rounds: round 1 when it ships, round n + 1
//! when it asks for a retry after its n-th payment failure
//! (`OrderPaymentRetryRequested` carries the number). A round makes gateway
//! attempts until one captures or fails permanently; a transient failure
//! leads to the next attempt of the same round. Attempts are numbered
//! across rounds (1, 2, ...), so redelivered commands are recognised, and
//! the payment counts the rounds that failed for good, so a redelivered
//! request for such a round starts nothing
//! ([`Payment::attempt_for_round`]). Idempotent no-ops (`Ok(vec![])`): `Request` for an attempt
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
