//! The contracts' payloads: primitive, self-sufficient data (a consumer
//! needs no lookup to act on one). Amounts are decimal strings, times
//! RFC 3339, ids UUID strings. Consumers ignore unknown fields, so adding a
//! field is allowed; any other change is a new version beside this one.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One versioned integration contract: its routing key and payload type.
pub trait Contract: Serialize + JsonSchema {
    /// The contract name, also the routing key and the AMQP `type`.
    const NAME: &'static str;
    const SCHEMA_VERSION: u32;
}

macro_rules! contract {
    ($type:ty, $name:literal, $version:literal) => {
        impl Contract for $type {
            const NAME: &'static str = $name;
            const SCHEMA_VERSION: u32 = $version;
        }
    };
}

/// An order line as sold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SoldLineV1 {
    pub sku: String,
    pub quantity: u32,
    #[schemars(with = "String")]
    pub unit_price: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlacedV1 {
    pub order_id: Uuid,
    pub customer_id: String,
    /// ISO 4217 code.
    pub currency: String,
    pub payment_method: String,
    pub lines: Vec<SoldLineV1>,
    #[schemars(with = "String")]
    pub total: Decimal,
    pub placed_at: DateTime<Utc>,
}
contract!(OrderPlacedV1, "order.placed.v1", 1);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelledV1 {
    pub order_id: Uuid,
    pub reason: String,
    pub cancelled_at: DateTime<Utc>,
}
contract!(OrderCancelledV1, "order.cancelled.v1", 1);

/// Units of a SKU held in a warehouse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReservedLineV1 {
    pub sku: String,
    pub warehouse: String,
    pub quantity: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryReservedV1 {
    pub order_id: Uuid,
    pub lines: Vec<ReservedLineV1>,
    pub reserved_at: DateTime<Utc>,
}
contract!(InventoryReservedV1, "inventory.reserved.v1", 1);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ShortageV1 {
    pub sku: String,
    pub requested: u64,
    pub available: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryUnavailableV1 {
    pub order_id: Uuid,
    pub shortages: Vec<ShortageV1>,
    pub rejected_at: DateTime<Utc>,
}
contract!(InventoryUnavailableV1, "inventory.unavailable.v1", 1);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderShippedV1 {
    pub order_id: Uuid,
    pub customer_id: String,
    pub currency: String,
    #[schemars(with = "String")]
    pub total: Decimal,
    pub lines: Vec<SoldLineV1>,
    pub shipped_at: DateTime<Utc>,
}
contract!(OrderShippedV1, "order.shipped.v1", 1);

/// An amount with its currency, so neither travels without the other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MoneyV2 {
    /// Decimal string.
    #[schemars(with = "String")]
    pub amount: Decimal,
    /// ISO 4217 code.
    pub currency: String,
}

/// `order.shipped.v1` with the total as [`MoneyV2`] instead of a decimal
/// string beside a top-level `currency` (a breaking change, hence v2).
/// Published beside v1 for a migration window: both carry the same facts,
/// each with its own message id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderShippedV2 {
    pub order_id: Uuid,
    pub customer_id: String,
    pub total: MoneyV2,
    pub lines: Vec<SoldLineV1>,
    pub shipped_at: DateTime<Utc>,
}
contract!(OrderShippedV2, "order.shipped.v2", 2);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentCapturedV1 {
    pub order_id: Uuid,
    /// The payment attempt: the id of the `PaymentRequested` event that
    /// started it (orderstream's payments are one stream per order).
    pub payment_id: Uuid,
    #[schemars(with = "String")]
    pub amount: Decimal,
    pub currency: String,
    /// The gateway's reference.
    pub reference: String,
    pub captured_at: DateTime<Utc>,
}
contract!(PaymentCapturedV1, "payment.captured.v1", 1);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentFailedV1 {
    pub order_id: Uuid,
    /// As in [`PaymentCapturedV1::payment_id`].
    pub payment_id: Uuid,
    #[schemars(with = "String")]
    pub amount: Decimal,
    pub currency: String,
    pub reason: String,
    /// True when the gateway refused for good; false when another attempt follows.
    #[serde(rename = "final")]
    pub is_final: bool,
    pub failed_at: DateTime<Utc>,
}
contract!(PaymentFailedV1, "payment.failed.v1", 1);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPaidV1 {
    pub order_id: Uuid,
    #[schemars(with = "String")]
    pub amount: Decimal,
    pub currency: String,
    pub paid_at: DateTime<Utc>,
}
contract!(OrderPaidV1, "order.paid.v1", 1);

/// What moved stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StockChange {
    Received,
    Adjusted,
    Reserved,
    Released,
    Committed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StockChangedV1 {
    pub sku: String,
    pub warehouse: String,
    pub change: StockChange,
    /// Units moved: positive, except an adjustment, which is signed.
    pub quantity: i64,
    /// The warehouse's levels after the change.
    pub on_hand: u64,
    pub reserved: u64,
    pub available: u64,
    pub changed_at: DateTime<Utc>,
}
contract!(StockChangedV1, "stock.changed.v1", 1);

/// Every contract name with its schema version, in the README's order.
pub const CONTRACTS: &[(&str, u32)] = &[
    (OrderPlacedV1::NAME, OrderPlacedV1::SCHEMA_VERSION),
    (OrderCancelledV1::NAME, OrderCancelledV1::SCHEMA_VERSION),
    (
        InventoryReservedV1::NAME,
        InventoryReservedV1::SCHEMA_VERSION,
    ),
    (
        InventoryUnavailableV1::NAME,
        InventoryUnavailableV1::SCHEMA_VERSION,
    ),
    (OrderShippedV1::NAME, OrderShippedV1::SCHEMA_VERSION),
    (OrderShippedV2::NAME, OrderShippedV2::SCHEMA_VERSION),
    (PaymentCapturedV1::NAME, PaymentCapturedV1::SCHEMA_VERSION),
    (PaymentFailedV1::NAME, PaymentFailedV1::SCHEMA_VERSION),
    (OrderPaidV1::NAME, OrderPaidV1::SCHEMA_VERSION),
    (StockChangedV1::NAME, StockChangedV1::SCHEMA_VERSION),
];
