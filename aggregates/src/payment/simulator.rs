//! The built-in payment gateway simulator's pure decision.

use uuid::Uuid;

use super::PaymentCommand;
use crate::values::PaymentMethod;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayOutcome {
    Captured,
    /// Worth retrying.
    TransientFailure,
    /// Will fail again.
    PermanentFailure,
}

/// What the simulated gateway answers to attempt `attempt` (1-based):
/// `card_ok` captures; `card_declined` fails permanently; `card_flaky` fails
/// transiently on attempts 1 and 2 and captures from attempt 3.
pub fn simulated_gateway_outcome(method: PaymentMethod, attempt: u32) -> GatewayOutcome {
    match method {
        PaymentMethod::CardOk => GatewayOutcome::Captured,
        PaymentMethod::CardDeclined => GatewayOutcome::PermanentFailure,
        PaymentMethod::CardFlaky if attempt <= 2 => GatewayOutcome::TransientFailure,
        PaymentMethod::CardFlaky => GatewayOutcome::Captured,
    }
}

impl GatewayOutcome {
    /// The payment command recording this outcome; the capture reference is
    /// deterministic (`sim-{order_id}-{attempt}`).
    pub fn to_command(self, order_id: Uuid, attempt: u32) -> PaymentCommand {
        match self {
            Self::Captured => PaymentCommand::RecordCapture {
                reference: format!("sim-{order_id}-{attempt}"),
            },
            Self::TransientFailure => PaymentCommand::RecordFailure {
                reason: "gateway temporarily unavailable".to_owned(),
                retryable: true,
            },
            Self::PermanentFailure => PaymentCommand::RecordFailure {
                reason: "card declined".to_owned(),
                retryable: false,
            },
        }
    }
}
