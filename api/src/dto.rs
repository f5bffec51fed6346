//! Request and response bodies: the API's own types, converted from the
//! domain and the read models, never those types themselves.

mod convert;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use event_store::{CorrelationId, RecordedEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use convert::RequestFor;

// ---------------------------------------------------------------- inventory

/// `POST /inventory/{sku}/receipts`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceiptRequest {
    /// Units received; must be positive.
    #[schema(example = 10)]
    pub quantity: i64,
    /// Defaults to `main`.
    #[serde(default)]
    #[schema(example = "main")]
    pub warehouse: Option<String>,
}

/// `POST /inventory/{sku}/adjustments`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdjustmentRequest {
    /// Change of on-hand stock, positive or negative, never zero.
    #[schema(example = -2)]
    pub quantity: i64,
    #[serde(default)]
    #[schema(example = "damaged")]
    pub reason: Option<String>,
    /// Defaults to `main`.
    #[serde(default)]
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

/// One line of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderLineRequest {
    #[schema(example = "SKU-1")]
    pub sku: String,
    /// Positive.
    #[schema(example = 2)]
    pub quantity: i64,
    /// A decimal string, e.g. `"9.99"`.
    #[schema(example = "9.99")]
    pub unit_price: String,
}

/// `POST /orders`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlaceOrderRequest {
    #[schema(example = "c-42")]
    pub customer_id: String,
    /// ISO 4217 code.
    #[schema(example = "USD")]
    pub currency: String,
    /// 1 to 100 lines.
    pub lines: Vec<OrderLineRequest>,
    /// `card_ok` (default), `card_declined` or `card_flaky`.
    #[serde(default)]
    #[schema(example = "card_ok")]
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
    #[serde(default)]
    #[schema(example = "customer changed their mind")]
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

/// `POST /subscriptions/{name}/reset`
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ResetRequest {
    /// Re-deliver every event after this global position (0: all).
    pub position: i64,
}

// ------------------------------------------------------------------ service

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthBody {
    pub status: String,
}
