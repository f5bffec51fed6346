//! `Sku` and `Warehouse`: 1-64 characters of `[A-Za-z0-9._-]`, checked on construction.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A string that is not a valid identifier of the given kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: expected 1-64 characters of [A-Za-z0-9._-]")]
pub struct InvalidIdentifier {
    pub kind: &'static str,
    pub value: String,
}

/// Longest identifier accepted.
const MAX_LEN: usize = 64;

fn is_valid(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

macro_rules! identifier {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value`.
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidIdentifier> {
                let value = value.into();
                if is_valid(&value) {
                    Ok(Self(value))
                } else {
                    Err(InvalidIdentifier { kind: $kind, value })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidIdentifier;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidIdentifier;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// A stock-keeping unit, e.g. `SKU-1`. The inventory stream is `inventory-{sku}`.
    Sku,
    "SKU"
);

identifier!(
    /// A warehouse name, e.g. `main`.
    Warehouse,
    "warehouse"
);

impl Warehouse {
    /// The default warehouse, `main`.
    pub fn main() -> Self {
        Self("main".to_owned())
    }
}
