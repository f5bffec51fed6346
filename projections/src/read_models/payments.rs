//! Payments per order.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use aggregates::payment::{Payment, PaymentEvent};
use aggregates::Aggregate;

use super::decode;
use crate::{HandlerError, Projection};

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PaymentSummary {
    pub order_id: Uuid,
    pub status: String,
    pub amount: Decimal,
    pub currency: String,
    pub method: String,
    pub attempts: i32,
    pub reference: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

pub async fn find_payment(
    pool: &PgPool,
    order_id: Uuid,
) -> Result<Option<PaymentSummary>, sqlx::Error> {
    sqlx::query_as::<_, PaymentSummary>("SELECT * FROM payments WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(pool)
        .await
}

/// Projects `payment-*` streams into `payments`.
pub struct Payments;

impl Payments {
    pub const NAME: &'static str = "payments";
    pub const CATEGORY: &'static str = Payment::CATEGORY;
}

#[async_trait]
impl Projection for Payments {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn category(&self) -> &'static str {
        Self::CATEGORY
    }

    fn tables(&self) -> &'static [&'static str] {
        &["payments"]
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        // Every statement applies only an event newer than the row's
        // version: a redelivered event is a no-op.
        let statement = match decode::<PaymentEvent>(event)? {
            PaymentEvent::Requested {
                order_id,
                amount,
                currency,
                method,
                attempt,
            } => sqlx::query(
                "INSERT INTO payments (order_id, status, amount, currency, method, attempts, \
                     updated_at, version) \
                 VALUES ($1, 'requested', $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (order_id) DO UPDATE SET status = 'requested', \
                     attempts = excluded.attempts, updated_at = excluded.updated_at, \
                     version = excluded.version \
                 WHERE payments.version < excluded.version",
            )
            .bind(order_id)
            .bind(amount)
            .bind(currency.code())
            .bind(method.as_str())
            .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
            .bind(event.recorded_at)
            .bind(event.stream_version),
            PaymentEvent::Captured { reference, .. } => sqlx::query(
                "UPDATE payments SET status = 'captured', reference = $2, last_error = NULL, \
                     updated_at = $3, version = $4 WHERE order_id = $1 AND version < $4",
            )
            .bind(order_id_of(event)?)
            .bind(reference)
            .bind(event.recorded_at)
            .bind(event.stream_version),
            PaymentEvent::Failed { reason, .. } => sqlx::query(
                "UPDATE payments SET status = 'failed', last_error = $2, updated_at = $3, \
                     version = $4 WHERE order_id = $1 AND version < $4",
            )
            .bind(order_id_of(event)?)
            .bind(reason)
            .bind(event.recorded_at)
            .bind(event.stream_version),
            PaymentEvent::Refunded { .. } => sqlx::query(
                "UPDATE payments SET status = 'refunded', updated_at = $2, version = $3 \
                 WHERE order_id = $1 AND version < $3",
            )
            .bind(order_id_of(event)?)
            .bind(event.recorded_at)
            .bind(event.stream_version),
        };
        statement.execute(&mut *connection).await?;
        Ok(())
    }
}

fn order_id_of(event: &RecordedEvent) -> Result<Uuid, HandlerError> {
    event
        .stream_id
        .strip_prefix("payment-")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| HandlerError::new(format!("{} is not a payment stream", event.stream_id)))
}
