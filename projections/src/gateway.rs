//! The payment gateway seam, and the simulator that follows API.md's
//! payment methods.

use async_trait::async_trait;
use rust_decimal::Decimal;
use uuid::Uuid;

use aggregates::payment::{simulated_gateway_outcome, GatewayOutcome};
use aggregates::values::{Currency, PaymentMethod};

/// One capture attempt. Real gateways take `(order_id, attempt)` as an
/// idempotency key, so asking again after a crash captures at most once.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureRequest {
    pub order_id: Uuid,
    pub attempt: u32,
    pub amount: Decimal,
    pub currency: Currency,
    pub method: PaymentMethod,
}

#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    async fn capture(&self, request: &CaptureRequest) -> GatewayOutcome;
}

/// `card_ok` captures, `card_declined` fails for good, `card_flaky` fails
/// transiently on attempts 1 and 2 and captures on the third.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimulatedGateway;

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn capture(&self, request: &CaptureRequest) -> GatewayOutcome {
        simulated_gateway_outcome(request.method, request.attempt)
    }
}
