//! Validated value types shared by every aggregate.

mod currency;
mod identifier;
mod payment_method;
mod shortage;

pub use currency::{Currency, UnknownCurrency};
pub use identifier::{InvalidIdentifier, Sku, Warehouse};
pub use payment_method::{PaymentMethod, UnknownPaymentMethod};
pub use shortage::Shortage;
