//! `Currency`: the fixed list of ISO 4217 codes the service accepts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A code that is not in the accepted ISO 4217 list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?}")]
pub struct UnknownCurrency(pub String);

macro_rules! currencies {
    ($($variant:ident => $code:literal),+ $(,)?) => {
        /// An accepted ISO 4217 currency, serialized as its upper-case code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Currency {
            $(#[serde(rename = $code)] $variant,)+
        }

        impl Currency {
            /// Every accepted currency.
            pub const ALL: &'static [Currency] = &[$(Currency::$variant),+];

            /// The ISO 4217 code, e.g. `"USD"`.
            pub fn code(self) -> &'static str {
                match self {
                    $(Currency::$variant => $code,)+
                }
            }
        }

        impl FromStr for Currency {
            type Err = UnknownCurrency;
            fn from_str(code: &str) -> Result<Self, Self::Err> {
                match code {
                    $($code => Ok(Currency::$variant),)+
                    other => Err(UnknownCurrency(other.to_owned())),
                }
            }
        }
    };
}

currencies! {
    Usd => "USD", Eur => "EUR", Gbp => "GBP", Jpy => "JPY", Chf => "CHF",
    Cad => "CAD", Aud => "AUD", Nzd => "NZD", Sek => "SEK", Nok => "NOK",
    Dkk => "DKK", Pln => "PLN", Czk => "CZK", Huf => "HUF", Cny => "CNY",
    Hkd => "HKD", Sgd => "SGD", Inr => "INR", Brl => "BRL", Mxn => "MXN",
    Zar => "ZAR", Krw => "KRW",
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
