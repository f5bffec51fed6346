//! Request and response bodies: the API's own types, converted from the
//! domain and the read models, never those types themselves.

use std::collections::BTreeMap;
use std::str::FromStr;

use aggregates::inventory::InventoryCommand;
use aggregates::limits::{MAX_LINE_QUANTITY, MAX_PRICE_INTEGER_DIGITS, MAX_PRICE_SCALE};
use aggregates::order::{Order, OrderCommand, OrderLine, PlaceOrder};
use aggregates::values::{Currency, PaymentMethod, Sku, Warehouse};
use aggregates::Aggregate;
use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;

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

// ------------------------------------------------------- requests to commands
//
// The conversions parse each field into its domain type and name the field
// when it does not parse. Every rule beyond a field's syntax (positive
// quantities, the limits of `aggregates::limits`, at most 100 lines) is the
// aggregate's, checked once, in `decide`; its refusal maps to 422 through
// `ApiError::from_domain`.

/// A request body with the id of what it is for, which the body does not
/// carry: the order id (random, or derived from the `Idempotency-Key`), the
/// SKU (from the path). A local type, so that `TryFrom` may be implemented
/// for the domain's commands (a plain tuple would break the orphan rule).
pub struct RequestFor<'a, Id, Body>(pub Id, pub &'a Body);

/// The request as an order the aggregate accepts: parsed, then decided
/// without I/O, so that nothing (not even an idempotency claim) is stored
/// for an invalid request.
impl TryFrom<RequestFor<'_, Uuid, PlaceOrderRequest>> for PlaceOrder {
    type Error = ApiError;

    fn try_from(
        RequestFor(order_id, request): RequestFor<'_, Uuid, PlaceOrderRequest>,
    ) -> Result<Self, ApiError> {
        let invalid = ApiError::Unprocessable;
        let currency = Currency::from_str(&request.currency)
            .map_err(|error| invalid(format!("currency: {error}")))?;
        let payment_method = match &request.payment_method {
            None => PaymentMethod::default(),
            Some(method) => PaymentMethod::from_str(method)
                .map_err(|error| invalid(format!("payment_method: {error}")))?,
        };
        let lines = request
            .lines
            .iter()
            .enumerate()
            .map(|(index, line)| order_line(index, line))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let place = PlaceOrder {
            order_id,
            customer_id: request.customer_id.clone(),
            currency,
            lines,
            payment_method,
        };
        Order::default()
            .decide(&OrderCommand::Place(place.clone()))
            .map_err(|error| ApiError::from_domain(error.kind(), error.to_string()))?;
        Ok(place)
    }
}

fn order_line(index: usize, line: &OrderLineRequest) -> Result<OrderLine, ApiError> {
    let invalid = ApiError::Unprocessable;
    let sku = Sku::parse(line.sku.as_str())
        .map_err(|error| invalid(format!("lines[{index}].sku: {error}")))?;
    // Zero and the upper limit are the aggregate's to refuse; what does
    // not even fit its type is refused here, in the same words.
    let quantity = u32::try_from(line.quantity).map_err(|_| {
        invalid(format!(
            "lines[{index}].quantity must be a whole number from 1 to {MAX_LINE_QUANTITY}, got {}",
            line.quantity
        ))
    })?;
    let unit_price = parse_decimal(&line.unit_price).ok_or_else(|| {
        invalid(format!(
            "lines[{index}].unit_price must be a non-negative decimal string such as \"9.99\", \
             with at most {MAX_PRICE_INTEGER_DIGITS} digits before the point and \
             {MAX_PRICE_SCALE} after it; got {:?}",
            line.unit_price
        ))
    })?;
    Ok(OrderLine {
        sku,
        quantity,
        unit_price,
    })
}

/// A price as API.md writes money: `0` or digits without a leading zero,
/// optionally a point and more digits; no sign (a price is never
/// negative), no exponent, no `_` or `+` (which `rust_decimal` alone would
/// take). What it cannot hold exactly (more than 28 digits) is `None`.
///
/// The scale and size of a price are the aggregate's rules, so what this
/// and `decide` accept together is exactly the strings matching
/// `^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$` (the pattern for the OpenAPI
/// document; a test below holds the two to it).
fn parse_decimal(text: &str) -> Option<Decimal> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let canonical_whole = digits(whole) && (whole == "0" || !whole.starts_with('0'));
    if !canonical_whole || fraction.is_some_and(|fraction| !digits(fraction)) {
        return None;
    }
    Decimal::from_str_exact(text).ok()
}

fn warehouse(name: Option<&str>) -> Result<Warehouse, ApiError> {
    name.map_or(Ok(Warehouse::main()), |name| {
        Warehouse::parse(name).map_err(|error| ApiError::Unprocessable(error.to_string()))
    })
}

/// A receipt of stock of `sku` (from the path).
impl TryFrom<RequestFor<'_, &Sku, ReceiptRequest>> for InventoryCommand {
    type Error = ApiError;

    fn try_from(
        RequestFor(sku, request): RequestFor<'_, &Sku, ReceiptRequest>,
    ) -> Result<Self, ApiError> {
        // Zero and the limits are the aggregate's; a negative number does
        // not fit its type.
        let quantity = u64::try_from(request.quantity).map_err(|_| {
            ApiError::Unprocessable(format!(
                "quantity must be positive, got {}",
                request.quantity
            ))
        })?;
        Ok(InventoryCommand::Receive {
            sku: sku.clone(),
            warehouse: warehouse(request.warehouse.as_deref())?,
            quantity,
        })
    }
}

/// An adjustment of the stock of `sku` (from the path).
impl TryFrom<RequestFor<'_, &Sku, AdjustmentRequest>> for InventoryCommand {
    type Error = ApiError;

    fn try_from(
        RequestFor(sku, request): RequestFor<'_, &Sku, AdjustmentRequest>,
    ) -> Result<Self, ApiError> {
        Ok(InventoryCommand::Adjust {
            sku: sku.clone(),
            warehouse: warehouse(request.warehouse.as_deref())?,
            delta: request.quantity,
            reason: request.reason.clone().unwrap_or_default(),
        })
    }
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
    /// The correlation id of the request that placed the order.
    pub correlation_id: Option<Uuid>,
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
    pub correlation_id: Option<Uuid>,
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
    /// Pass as `after` to read on.
    pub next: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogQuery {
    pub after: Option<i64>,
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

#[cfg(test)]
mod tests {
    use aggregates::order::{Order, OrderCommand, OrderLine, PlaceOrder};
    use aggregates::values::{Currency, PaymentMethod, Sku};
    use aggregates::Aggregate;
    use proptest::prelude::*;

    use super::parse_decimal;

    #[test]
    fn a_price_is_canonical_digits_with_an_optional_point() {
        for (text, parsed) in [
            ("9.99", "9.99"),
            ("0", "0"),
            ("0.5", "0.5"),
            ("10", "10"),
            ("1.0000", "1.0000"),
            (
                "0.0000000000000000000000000001",
                "0.0000000000000000000000000001",
            ),
        ] {
            assert_eq!(
                parse_decimal(text)
                    .map(|value| value.to_string())
                    .as_deref(),
                Some(parsed),
                "{text}"
            );
        }
        for text in [
            "",
            "abc",
            "1_000",
            "+1",
            "-1",
            "-0",
            ".5",
            "5.",
            "1e3",
            " 9.99",
            "9.99 ",
            "1.2.3",
            "01",
            "00.5",
            "0.00000000000000000000000000001",
            "100000000000000000000000000000",
        ] {
            assert_eq!(parse_decimal(text), None, "{text:?}");
        }
    }

    /// `^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$`, written out by hand.
    fn matches_documented_pattern(text: &str) -> bool {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let whole_ok = whole == "0"
            || (whole.len() <= 12
                && whole.starts_with(|c: char| ('1'..='9').contains(&c))
                && whole.bytes().all(|b| b.is_ascii_digit()));
        let fraction_ok = fraction.is_none_or(|fraction| {
            (1..=4).contains(&fraction.len()) && fraction.bytes().all(|b| b.is_ascii_digit())
        });
        whole_ok && fraction_ok
    }

    /// The API accepts a price when it parses and the aggregate takes it.
    fn accepted(text: &str) -> bool {
        let Some(unit_price) = parse_decimal(text) else {
            return false;
        };
        let place = PlaceOrder {
            order_id: uuid::Uuid::nil(),
            customer_id: "c".into(),
            currency: Currency::Usd,
            lines: vec![OrderLine {
                sku: Sku::parse("A").expect("valid sku"),
                quantity: 1,
                unit_price,
            }],
            payment_method: PaymentMethod::CardOk,
        };
        Order::default().decide(&OrderCommand::Place(place)).is_ok()
    }

    proptest! {
        #[test]
        fn the_prices_accepted_are_exactly_those_of_the_documented_pattern(
            text in "(-?0{0,2}[0-9]{0,14}(\\.[0-9]{0,6})?|[0-9.+_e -]{0,8})"
        ) {
            prop_assert_eq!(accepted(&text), matches_documented_pattern(&text), "{:?}", text);
        }
    }

    #[test]
    fn the_boundaries_of_the_documented_pattern() {
        for text in ["999999999999.9999", "0.0001", "0", "100000000000"] {
            assert!(accepted(text) && matches_documented_pattern(text), "{text}");
        }
        for text in ["1000000000000", "0.00001", "999999999999.99990", "-0"] {
            assert!(
                !accepted(text) && !matches_documented_pattern(text),
                "{text}"
            );
        }
    }
}
