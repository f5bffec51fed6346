//! `OrderError`: every way an order command can be refused.

use rust_decimal::Decimal;

use super::OrderStatus;
use crate::values::{InvalidIdentifier, Sku, UnknownCurrency, UnknownPaymentMethod};
use crate::ErrorKind;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("order not found")]
    NotPlaced,
    #[error("order already placed")]
    AlreadyPlaced,
    #[error("customer_id {0}")]
    InvalidCustomerId(crate::limits::TextProblem),
    #[error("an order needs at least one line")]
    NoLines,
    #[error("an order has at most {max} lines, got {count}")]
    TooManyLines { count: usize, max: usize },
    /// `line` is the index of the line in the order, as in `lines[0]`.
    #[error("lines[{line}].quantity of {sku} must be positive")]
    ZeroQuantity { line: usize, sku: Sku },
    #[error("lines[{line}].quantity of {sku} is {quantity}; a line has at most {max} units")]
    QuantityTooLarge {
        line: usize,
        sku: Sku,
        quantity: u32,
        max: u32,
    },
    #[error("lines[{line}].unit_price of {sku} must not be negative, got {unit_price}")]
    NegativeUnitPrice {
        line: usize,
        sku: Sku,
        unit_price: Decimal,
    },
    #[error(
        "lines[{line}].unit_price of {sku} is {unit_price} with {scale} decimal places; \
         a price has at most {max}, and amounts are never rounded"
    )]
    TooManyDecimals {
        line: usize,
        sku: Sku,
        unit_price: Decimal,
        scale: u32,
        max: u32,
    },
    #[error("lines[{line}].unit_price of {sku} is {unit_price}; a unit price is at most {max}")]
    UnitPriceTooLarge {
        line: usize,
        sku: Sku,
        unit_price: Decimal,
        max: Decimal,
    },
    /// Cannot happen within `crate::limits`; kept typed rather than a panic.
    #[error("the order total cannot be computed exactly")]
    InexactTotal,
    #[error(transparent)]
    InvalidSku(#[from] InvalidIdentifier),
    #[error(transparent)]
    UnknownCurrency(#[from] UnknownCurrency),
    #[error(transparent)]
    UnknownPaymentMethod(#[from] UnknownPaymentMethod),
    #[error("cannot mark a {status} order reserved")]
    CannotMarkReserved { status: OrderStatus },
    #[error("cannot reject a {status} order")]
    CannotReject { status: OrderStatus },
    #[error("cannot cancel a {status} order")]
    CannotCancel { status: OrderStatus },
    #[error("cannot ship a {status} order")]
    CannotShip { status: OrderStatus },
    #[error("cannot mark a {status} order paid")]
    CannotMarkPaid { status: OrderStatus },
    #[error("cannot record a payment failure on a {status} order")]
    CannotFailPayment { status: OrderStatus },
    #[error("cannot retry payment of a {status} order")]
    CannotRetryPayment { status: OrderStatus },
    #[error("paid amount {actual} does not match the order total {expected}")]
    AmountMismatch { expected: Decimal, actual: Decimal },
}

impl OrderError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotPlaced => ErrorKind::NotFound,
            Self::InvalidCustomerId(_)
            | Self::NoLines
            | Self::TooManyLines { .. }
            | Self::ZeroQuantity { .. }
            | Self::QuantityTooLarge { .. }
            | Self::NegativeUnitPrice { .. }
            | Self::TooManyDecimals { .. }
            | Self::UnitPriceTooLarge { .. }
            | Self::InexactTotal
            | Self::InvalidSku(_)
            | Self::UnknownCurrency(_)
            | Self::UnknownPaymentMethod(_)
            | Self::AmountMismatch { .. } => ErrorKind::Invalid,
            Self::AlreadyPlaced
            | Self::CannotMarkReserved { .. }
            | Self::CannotReject { .. }
            | Self::CannotCancel { .. }
            | Self::CannotShip { .. }
            | Self::CannotMarkPaid { .. }
            | Self::CannotFailPayment { .. }
            | Self::CannotRetryPayment { .. } => ErrorKind::Conflict,
        }
    }
}
