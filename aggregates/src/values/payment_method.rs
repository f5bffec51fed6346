//! `PaymentMethod`: the simulated payment methods of `API.md`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A payment method name that is not one of the known methods.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment method {0:?} (expected card_ok, card_declined or card_flaky)")]
pub struct UnknownPaymentMethod(pub String);

/// How an order is paid; the simulator's behaviour follows the method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Captures on the first attempt (the default).
    #[default]
    CardOk,
    /// Fails permanently.
    CardDeclined,
    /// Fails transiently on attempts 1 and 2, captures on attempt 3.
    CardFlaky,
}

impl PaymentMethod {
    pub const ALL: &'static [PaymentMethod] = &[Self::CardOk, Self::CardDeclined, Self::CardFlaky];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CardOk => "card_ok",
            Self::CardDeclined => "card_declined",
            Self::CardFlaky => "card_flaky",
        }
    }
}

impl FromStr for PaymentMethod {
    type Err = UnknownPaymentMethod;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|method| method.as_str() == name)
            .ok_or_else(|| UnknownPaymentMethod(name.to_owned()))
    }
}

impl fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
