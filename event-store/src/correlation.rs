//! [`CorrelationId`]: the id of a whole flow, kept exactly as the caller
//! gave it, so that a flow started by another system is found by that
//! system's own id.
//!
//! Any 1 to 128 visible ASCII characters (0x21-0x7E) are an id: a UUID, an
//! `order-import-42/abc`, a W3C trace id. Ids the service makes itself are
//! UUIDs, as text. The database checks the same shape on `events`.

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};
use uuid::Uuid;

/// A validated correlation id (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct CorrelationId(String);

/// Why a value is not a correlation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCorrelationId {
    #[error("a correlation id must not be empty")]
    Empty,
    #[error("a correlation id is at most {max} characters, got {0}", max = CorrelationId::MAX_LEN)]
    TooLong(usize),
    #[error("a correlation id may only hold visible ASCII characters (0x21-0x7E)")]
    NotVisibleAscii,
}

impl InvalidCorrelationId {
    /// A short, stable token for the reason, for headers and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            InvalidCorrelationId::Empty => "empty",
            InvalidCorrelationId::TooLong(_) => "too-long",
            InvalidCorrelationId::NotVisibleAscii => "not-visible-ascii",
        }
    }
}

impl CorrelationId {
    /// The longest id kept, in characters (= bytes: they are ASCII).
    pub const MAX_LEN: usize = 128;

    /// `value` as an id, if it has the shape of one.
    pub fn new(value: impl Into<String>) -> Result<CorrelationId, InvalidCorrelationId> {
        let value = value.into();
        Self::check(value.as_bytes())?;
        Ok(CorrelationId(value))
    }

    /// Raw bytes (an HTTP header value may hold any) as an id, if they
    /// have the shape of one.
    pub fn from_bytes(bytes: &[u8]) -> Result<CorrelationId, InvalidCorrelationId> {
        Self::check(bytes)?;
        // Visible ASCII is UTF-8.
        let text = std::str::from_utf8(bytes).map_err(|_| InvalidCorrelationId::NotVisibleAscii)?;
        Ok(CorrelationId(text.to_owned()))
    }

    /// A fresh id: a random UUID, as text.
    pub fn generate() -> CorrelationId {
        CorrelationId::from(Uuid::new_v4())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a UUID, when it is one.
    pub fn as_uuid(&self) -> Option<Uuid> {
        Uuid::try_parse(&self.0).ok()
    }

    fn check(bytes: &[u8]) -> Result<(), InvalidCorrelationId> {
        if bytes.is_empty() {
            return Err(InvalidCorrelationId::Empty);
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(InvalidCorrelationId::TooLong(bytes.len()));
        }
        if !bytes.iter().all(u8::is_ascii_graphic) {
            return Err(InvalidCorrelationId::NotVisibleAscii);
        }
        Ok(())
    }
}

impl From<Uuid> for CorrelationId {
    fn from(uuid: Uuid) -> Self {
        // The hyphenated lower-case form: 36 visible ASCII characters.
        CorrelationId(uuid.to_string())
    }
}

impl TryFrom<String> for CorrelationId {
    type Error = InvalidCorrelationId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        CorrelationId::new(value)
    }
}

impl From<CorrelationId> for String {
    fn from(id: CorrelationId) -> Self {
        id.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for CorrelationId {
    type Err = InvalidCorrelationId;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        CorrelationId::new(value)
    }
}

// Stored as `text`; read back through the same check, which the column's
// CHECK constraint makes a formality.
impl Type<Postgres> for CorrelationId {
    fn type_info() -> PgTypeInfo {
        <String as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <String as Type<Postgres>>::compatible(ty)
    }
}

impl PgHasArrayType for CorrelationId {
    fn array_type_info() -> PgTypeInfo {
        <String as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for CorrelationId {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&str as Encode<Postgres>>::encode_by_ref(&self.0.as_str(), buf)
    }
}

impl<'r> Decode<'r, Postgres> for CorrelationId {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Postgres>>::decode(value)?;
        Ok(CorrelationId::new(text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_visible_ascii_of_1_to_128_characters_is_kept_as_given() {
        for given in [
            "a",
            "order-import-42/abc",
            "~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}",
        ] {
            let id = CorrelationId::new(given).expect("valid");
            assert_eq!(id.as_str(), given);
            assert_eq!(id.to_string(), given);
        }
        let longest = "x".repeat(CorrelationId::MAX_LEN);
        assert_eq!(
            CorrelationId::new(longest.clone()).map(String::from),
            Ok(longest)
        );
    }

    #[test]
    fn empty_long_or_invisible_values_are_refused_with_their_reason() {
        let reason = |value: &[u8]| CorrelationId::from_bytes(value).map_err(|e| e.reason());
        assert_eq!(reason(b""), Err("empty"));
        assert_eq!(reason(&[b'x'; 129]), Err("too-long"));
        for invisible in [
            &b"a b"[..],
            b"tab\there",
            b"caf\xc3\xa9",
            b"del\x7f",
            b"nul\x00",
        ] {
            assert_eq!(reason(invisible), Err("not-visible-ascii"), "{invisible:?}");
        }
    }

    #[test]
    fn generated_ids_are_uuids_and_json_round_trips_through_the_check() {
        let id = CorrelationId::generate();
        assert!(id.as_uuid().is_some());
        let json = serde_json::to_value(&id).expect("serialize");
        assert_eq!(json, serde_json::Value::String(id.to_string()));
        let back: CorrelationId = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, id);
        assert!(serde_json::from_str::<CorrelationId>("\"a b\"").is_err());
        assert_eq!(
            CorrelationId::new("order-import-42/abc").map(|id| id.as_uuid()),
            Ok(None)
        );
    }
}
