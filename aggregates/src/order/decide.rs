//! `impl Aggregate for Order`: the order's decisions.

use super::place::place_order;
use super::{Order, OrderCommand, OrderError, OrderEvent, OrderStatus};
use crate::Aggregate;

use OrderStatus::{Cancelled, Paid, PaymentFailed, Pending, Rejected, Reserved, Shipped};

impl Aggregate for Order {
    const CATEGORY: &'static str = "order";
    const SNAPSHOT_VERSION: i32 = 1;

    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn apply(self, event: &OrderEvent) -> Self {
        self.evolve(event)
    }

    fn decide(&self, command: &OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        let Some(order) = &self.placed else {
            return match command {
                OrderCommand::Place(place) => place_order(place),
                _ => Err(OrderError::NotPlaced),
            };
        };
        let status = order.status;
        let emit = |event: OrderEvent| Ok(vec![event]);
        let nothing = || Ok(Vec::new());
        match command {
            OrderCommand::Place(_) => Err(OrderError::AlreadyPlaced),
            OrderCommand::MarkReserved => match status {
                Pending => emit(OrderEvent::Reserved {}),
                Reserved | Shipped | Paid | PaymentFailed | Cancelled => nothing(),
                Rejected => Err(OrderError::CannotMarkReserved { status }),
            },
            OrderCommand::Reject { shortages } => match status {
                Pending => emit(OrderEvent::Rejected {
                    shortages: shortages.clone(),
                }),
                Rejected | Cancelled => nothing(),
                Reserved | Shipped | Paid | PaymentFailed => {
                    Err(OrderError::CannotReject { status })
                }
            },
            OrderCommand::Cancel { reason } => match status {
                Pending | Reserved => emit(OrderEvent::Cancelled {
                    reason: reason.clone(),
                }),
                Cancelled => nothing(),
                Rejected | Shipped | Paid | PaymentFailed => {
                    Err(OrderError::CannotCancel { status })
                }
            },
            OrderCommand::Ship => match status {
                Reserved => emit(OrderEvent::Shipped {}),
                Shipped | Paid | PaymentFailed => nothing(),
                Pending | Rejected | Cancelled => Err(OrderError::CannotShip { status }),
            },
            OrderCommand::MarkPaid { amount } => match status {
                Shipped if *amount != order.total => Err(OrderError::AmountMismatch {
                    expected: order.total,
                    actual: *amount,
                }),
                Shipped => emit(OrderEvent::Paid { amount: *amount }),
                Paid => nothing(),
                Pending | Reserved | Rejected | Cancelled | PaymentFailed => {
                    Err(OrderError::CannotMarkPaid { status })
                }
            },
            OrderCommand::MarkPaymentFailed { reason } => match status {
                Shipped => emit(OrderEvent::PaymentFailed {
                    reason: reason.clone(),
                }),
                PaymentFailed | Paid => nothing(),
                Pending | Reserved | Rejected | Cancelled => {
                    Err(OrderError::CannotFailPayment { status })
                }
            },
            OrderCommand::RetryPayment => match status {
                PaymentFailed => emit(OrderEvent::PaymentRetryRequested {
                    round: order.payment_failures.saturating_add(1),
                }),
                _ => Err(OrderError::CannotRetryPayment { status }),
            },
        }
    }
}
