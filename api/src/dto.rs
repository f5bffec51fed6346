//! Request and response bodies: the API's own types, converted from the
//! domain and the read models, never those types themselves.

mod convert;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use event_store::{CorrelationId, RecordedEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use convert::{reason, RequestFor};

/// Integers in request bodies as JSON Schema counts them: `241.0` is the
/// integer 241, as the document's `"type": "integer"` promises a client.
/// A number with a fraction, or written with a point beyond 2^53 (where a
/// JSON parser may already have changed it), is refused.
mod whole_number {
    use serde::de::{self, Deserializer, Visitor};

    /// The largest integer every `f64` below it represents exactly.
    const EXACT_LIMIT: f64 = 9_007_199_254_740_992.0;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        deserializer.deserialize_any(WholeNumber)
    }

    struct WholeNumber;

    impl Visitor<'_> for WholeNumber {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
            Ok(value)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
            i64::try_from(value)
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &"a 64-bit integer"))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<i64, E> {
            if value.fract() == 0.0 && value.abs() <= EXACT_LIMIT {
                // Exact: a whole number within 2^53.
                Ok(value as i64)
            } else {
                Err(E::invalid_value(
                    de::Unexpected::Float(value),
                    &"an integer",
                ))
            }
        }
    }
}

// ---------------------------------------------------------------- inventory

/// `POST /inventory/{sku}/receipts`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceiptRequest {
    /// Units received: 1 to 10^12 (`MAX_STOCK_MOVEMENT`). A receipt that
    /// would take the warehouse over 10^13 or the SKU over 10^14 units is 422.
    #[schema(example = 10, minimum = 1, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "whole_number::deserialize")]
    pub quantity: i64,
    /// Defaults to `main`.
    #[serde(default)]
    #[schema(example = "main", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub warehouse: Option<String>,
}

/// `POST /inventory/{sku}/adjustments`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdjustmentRequest {
    /// Change of on-hand stock, -10^12 to 10^12, never zero (422), and never
    /// below what is reserved (422).
    #[schema(example = -2, minimum = -1000000000000_i64, maximum = 1000000000000_i64)]
    #[serde(deserialize_with = "whole_number::deserialize")]
    pub quantity: i64,
    /// At most 500 characters, none of them a control character.
    #[serde(default)]
    #[schema(
        example = "damaged",
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: Option<String>,
    /// Defaults to `main`.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub warehouse: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WarehouseStockBody {
    pub warehouse: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

/// A SKU's stock: totals, per warehouse, and the log position it reflects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StockBody {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub warehouses: Vec<WarehouseStockBody>,
    /// Global log position of the last change included.
    pub position: i64,
}

/// One change of a SKU's stock, with the totals after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StockChangeBody {
    pub at: DateTime<Utc>,
    pub position: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub event_type: String,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct AtQuery {
    /// RFC 3339 instant: the state as it was then.
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// The cursor of a `Link: rel="next"` URL.
    pub after: Option<String>,
    pub limit: Option<i64>,
}

/// `?after=<cursor>&limit=` of a paged list whose cursor is opaque.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageQuery {
    /// The cursor of a `Link: rel="next"` URL.
    pub after: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /orders/{id}/history?from_version=&limit=`
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamPageQuery {
    pub from_version: Option<i64>,
    pub limit: Option<i64>,
}

// ------------------------------------------------------------------- orders

/// `currency`: one of the codes the domain knows (`Currency::ALL`).
fn currency_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(
            aggregates::values::Currency::ALL
                .iter()
                .map(|c| c.to_string()),
        ))
        .build()
}

/// `payment_method`: absent, null (the default, `card_ok`) or one of
/// `PaymentMethod::ALL`.
fn payment_method_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::String,
            utoipa::openapi::schema::Type::Null,
        ]))
        .enum_values(Some(
            aggregates::values::PaymentMethod::ALL
                .iter()
                .map(|method| serde_json::Value::from(method.to_string()))
                .chain([serde_json::Value::Null]),
        ))
        .build()
}

/// One line of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderLineRequest {
    #[schema(example = "SKU-1", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// 1 to 1,000,000 units.
    #[schema(example = 2, minimum = 1, maximum = 1000000)]
    #[serde(deserialize_with = "whole_number::deserialize")]
    pub quantity: i64,
    /// A decimal string of at most 12 digits before the point and 4 after,
    /// e.g. `"9.99"`; never rounded: more decimals are a 422.
    #[schema(example = "9.99", pattern = "^(0|[1-9][0-9]{0,11})(\\.[0-9]{1,4})?$")]
    pub unit_price: String,
}

/// `POST /orders`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlaceOrderRequest {
    /// 1 to 128 characters, no control characters, not only spaces.
    #[schema(
        example = "c-42",
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u0020\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub customer_id: String,
    /// An ISO 4217 code the service knows.
    #[schema(example = "USD", schema_with = currency_schema)]
    pub currency: String,
    /// 1 to 100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<OrderLineRequest>,
    /// `card_ok` (default), `card_declined` or `card_flaky`.
    #[serde(default)]
    #[schema(example = "card_ok", schema_with = payment_method_schema)]
    pub payment_method: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderLineBody {
    pub sku: String,
    pub quantity: u32,
    /// Decimal string.
    pub unit_price: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShortageBody {
    pub sku: String,
    pub requested: u64,
    pub available: u64,
}

/// The payment of an order, once one was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentBody {
    pub status: String,
    /// Decimal string.
    pub amount: String,
    pub currency: String,
    pub method: String,
    pub attempts: i32,
    pub reference: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// An order, as `GET /orders/{id}` and the order commands return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderBody {
    pub order_id: Uuid,
    pub customer_id: String,
    /// pending, reserved, rejected, cancelled, shipped, paid or payment_failed.
    pub status: String,
    pub currency: String,
    pub lines: Vec<OrderLineBody>,
    /// Decimal string: the sum of quantity * unit_price.
    #[schema(example = "19.98")]
    pub total: String,
    pub payment_method: String,
    /// The correlation id of the request that placed the order, as its
    /// caller sent it (or the UUID generated for it).
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[!-~]{1,128}$", example = "order-import-42/abc")]
    pub correlation_id: Option<CorrelationId>,
    /// The order stream's version this body reflects.
    pub version: i64,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when rejected: the lines that could not be reserved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shortages: Vec<ShortageBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentBody>,
}

/// `POST /orders/{id}/cancel`; the body is optional.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct CancelRequest {
    /// At most 500 characters, none of them a control character.
    #[serde(default)]
    #[schema(
        example = "customer changed their mind",
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: Option<String>,
}

/// The answer to a command carried out later (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AcceptedBody {
    pub accepted: bool,
    pub detail: String,
}

// -------------------------------------------------------------------- audit

/// The one event shape used everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventBody {
    pub position: i64,
    pub stream_id: String,
    pub version: i64,
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: i32,
    pub recorded_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub metadata: MetadataBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetadataBody {
    /// The `X-Correlation-Id` of the request that started the flow, as
    /// sent (or the UUID generated for it).
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[!-~]{1,128}$", example = "order-import-42/abc")]
    pub correlation_id: Option<CorrelationId>,
    pub causation_id: Option<Uuid>,
    /// Any other stored metadata (`actor`, ...).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl From<RecordedEvent> for EventBody {
    fn from(event: RecordedEvent) -> Self {
        let mut other: BTreeMap<String, serde_json::Value> = match event.metadata {
            serde_json::Value::Object(fields) => fields.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        other.remove("correlation_id");
        other.remove("causation_id");
        EventBody {
            position: event.position,
            stream_id: event.stream_id,
            version: event.stream_version,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            data: event.data,
            metadata: MetadataBody {
                correlation_id: event.correlation_id,
                causation_id: event.causation_id,
                other,
            },
        }
    }
}

/// `GET /streams/{stream_id}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StreamBody {
    pub stream_id: String,
    /// The stream's version (as of `as_of` when given).
    pub version: i64,
    pub events: Vec<EventBody>,
    /// The `from_version` of the next page in the same direction, when
    /// more events follow (also in the `Link` header).
    pub next_from_version: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamQuery {
    pub from_version: Option<i64>,
    pub limit: Option<i64>,
    pub direction: Option<String>,
    pub as_of: Option<DateTime<Utc>>,
}

/// `GET /events`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogBody {
    pub events: Vec<EventBody>,
    /// Pass as `after` to read on: an opaque cursor (the `after` given,
    /// when the page is empty).
    pub next: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogQuery {
    /// A position, or the `next` of a page.
    pub after: Option<String>,
    pub limit: Option<i64>,
}

// --------------------------------------------------------------- operations

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionBody {
    pub name: String,
    pub position: i64,
    pub head: i64,
    pub lag: i64,
    pub parked: i64,
    /// running, catching_up, rebuilding or stopped.
    pub state: String,
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParkedEventBody {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub attempts: i32,
    pub error: String,
    /// Set when this event did not fail itself but waits behind the
    /// failing event at this position.
    pub blocked_by: Option<i64>,
    pub parked_at: DateTime<Utc>,
}

/// The answer to an operator request its subscription's owner carries out
/// later (202); follow `Location` (or `request`) for its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RequestAcceptedBody {
    pub accepted: bool,
    pub detail: String,
    /// The request's id, for `GET /subscriptions/{name}/requests/{id}`.
    pub request: i64,
}

/// Where an operator request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RequestStatusBody {
    pub id: i64,
    /// pending, done or failed.
    #[schema(example = "done")]
    pub status: String,
    /// What the owner reported once it carried the request out (for a
    /// failure, why); null while pending.
    pub outcome: Option<String>,
}

/// `POST /subscriptions/{name}/reset`
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ResetRequest {
    /// Re-deliver every event after this global position (0: all).
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "whole_number::deserialize")]
    pub position: i64,
}

// ------------------------------------------------------------------ service

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthBody {
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_number_written_with_a_point_is_an_integer_and_a_fraction_is_refused() {
        let body = |json: &str| serde_json::from_str::<ReceiptRequest>(json).map(|r| r.quantity);
        assert_eq!(body(r#"{"quantity": 241.0}"#).ok(), Some(241));
        assert_eq!(body(r#"{"quantity": -0.0}"#).ok(), Some(0));
        assert_eq!(body(r#"{"quantity": 241}"#).ok(), Some(241));
        assert!(body(r#"{"quantity": 1.5}"#).is_err());
        assert!(body(r#"{"quantity": 1e300}"#).is_err());
        assert!(body(r#"{"quantity": 18446744073709551615}"#).is_err());
        assert!(body(r#"{"quantity": "3"}"#).is_err());
    }
}
