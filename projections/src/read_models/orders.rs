//! Order summaries: one row per order, what `GET /orders/{id}` serves.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_store::{CorrelationId, RecordedEvent};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use aggregates::order::{Order, OrderEvent, OrderStatus};
use aggregates::Aggregate;

use super::decode;
use crate::{HandlerError, Projection};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OrderSummary {
    pub order_id: Uuid,
    pub customer_id: String,
    #[sqlx(try_from = "String")]
    pub status: OrderStatus,
    pub currency: String,
    pub total: Decimal,
    /// `[{"sku", "quantity", "unit_price"}]`
    pub lines: serde_json::Value,
    pub payment_method: String,
    pub correlation_id: Option<CorrelationId>,
    pub version: i64,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub shortages: Option<serde_json::Value>,
    pub cancel_reason: Option<String>,
    pub payment_error: Option<String>,
}

pub async fn find_order(
    pool: &PgPool,
    order_id: Uuid,
) -> Result<Option<OrderSummary>, sqlx::Error> {
    sqlx::query_as::<_, OrderSummary>("SELECT * FROM order_summaries WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(pool)
        .await
}

/// The most recent `limit` orders of a customer, newest first (the
/// operator console's look-up by customer id).
pub async fn orders_of_customer(
    pool: &PgPool,
    customer_id: &str,
    limit: i64,
) -> Result<Vec<OrderSummary>, sqlx::Error> {
    sqlx::query_as::<_, OrderSummary>(
        "SELECT * FROM order_summaries WHERE customer_id = $1 \
         ORDER BY placed_at DESC, order_id LIMIT $2",
    )
    .bind(customer_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Projects `order-*` streams into `order_summaries`.
pub struct OrderSummaries;

impl OrderSummaries {
    pub const NAME: &'static str = "orders";
    pub const CATEGORY: &'static str = Order::CATEGORY;
}

#[async_trait]
impl Projection for OrderSummaries {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn category(&self) -> &'static str {
        Self::CATEGORY
    }

    fn tables(&self) -> &'static [&'static str] {
        &["order_summaries"]
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let order_event: OrderEvent = decode(event)?;
        if let OrderEvent::Placed {
            order_id,
            customer_id,
            currency,
            lines,
            total,
            payment_method,
        } = &order_event
        {
            sqlx::query(
                "INSERT INTO order_summaries (order_id, customer_id, status, currency, total, \
                     lines, payment_method, correlation_id, version, placed_at, updated_at) \
                 VALUES ($1, $2, $10, $3, $4, $5, $6, $7, $8, $9, $9) \
                 ON CONFLICT (order_id) DO NOTHING",
            )
            .bind(order_id)
            .bind(customer_id)
            .bind(currency.code())
            .bind(total)
            .bind(serde_json::to_value(lines).map_err(HandlerError::new)?)
            .bind(payment_method.as_str())
            .bind(&event.correlation_id)
            .bind(event.stream_version)
            .bind(event.recorded_at)
            .bind(OrderStatus::Pending.as_str())
            .execute(&mut *connection)
            .await?;
            return Ok(());
        }
        let (status, shortages, cancel_reason, payment_error) = match &order_event {
            OrderEvent::Placed { .. } => return Ok(()),
            OrderEvent::Reserved {} => (OrderStatus::Reserved, None, None, None),
            OrderEvent::Rejected { shortages } => (
                OrderStatus::Rejected,
                Some(serde_json::to_value(shortages).map_err(HandlerError::new)?),
                None,
                None,
            ),
            OrderEvent::Cancelled { reason } => {
                (OrderStatus::Cancelled, None, Some(reason.clone()), None)
            }
            OrderEvent::Shipped {} => (OrderStatus::Shipped, None, None, None),
            OrderEvent::Paid { .. } => (OrderStatus::Paid, None, None, None),
            OrderEvent::PaymentFailed { reason } => {
                (OrderStatus::PaymentFailed, None, None, Some(reason.clone()))
            }
            // A retry goes back to waiting for payment, as after shipping.
            OrderEvent::PaymentRetryRequested { .. } => (OrderStatus::Shipped, None, None, None),
        };
        sqlx::query(
            "UPDATE order_summaries SET status = $2, version = $3, updated_at = $4, \
                 shortages = coalesce($5, shortages), cancel_reason = coalesce($6, cancel_reason), \
                 payment_error = CASE WHEN $2 = $8 THEN $7 ELSE NULL END \
             WHERE order_id = $1 AND version < $3",
        )
        .bind(order_id_of(event)?)
        .bind(status.as_str())
        .bind(event.stream_version)
        .bind(event.recorded_at)
        .bind(shortages)
        .bind(cancel_reason)
        .bind(payment_error)
        .bind(OrderStatus::PaymentFailed.as_str())
        .execute(&mut *connection)
        .await?;
        Ok(())
    }
}

/// `order-{uuid}` -> the uuid.
fn order_id_of(event: &RecordedEvent) -> Result<Uuid, HandlerError> {
    event
        .stream_id
        .strip_prefix("order-")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| HandlerError::new(format!("{} is not an order stream", event.stream_id)))
}
