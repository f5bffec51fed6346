//! Order summaries: one row per order, what `GET /orders/{id}` serves.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

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

    // An order's row comes from its own stream.
    fn rows_per_stream(&self) -> bool {
        true
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        match change_of(event)? {
            Change::Place(row) => {
                sqlx::query(
                    "INSERT INTO order_summaries (order_id, customer_id, status, currency, total, \
                         lines, payment_method, correlation_id, version, placed_at, updated_at) \
                     VALUES ($1, $2, $10, $3, $4, $5, $6, $7, $8, $9, $9) \
                     ON CONFLICT (order_id) DO NOTHING",
                )
                .bind(row.order_id)
                .bind(&row.customer_id)
                .bind(&row.currency)
                .bind(row.total)
                .bind(&row.lines)
                .bind(&row.payment_method)
                .bind(&row.correlation_id)
                .bind(row.version)
                .bind(row.placed_at)
                .bind(&row.status)
                .execute(&mut *connection)
                .await?;
            }
            Change::Update(update) => {
                sqlx::query(
                    "UPDATE order_summaries SET status = $2, version = $3, updated_at = $4, \
                         shortages = coalesce($5, shortages), \
                         cancel_reason = coalesce($6, cancel_reason), \
                         payment_error = CASE WHEN $2 = $8 THEN $7 ELSE NULL END \
                     WHERE order_id = $1 AND version < $3",
                )
                .bind(update.order_id)
                .bind(update.status.as_str())
                .bind(update.version)
                .bind(update.at)
                .bind(update.shortages)
                .bind(update.cancel_reason)
                .bind(update.payment_error)
                .bind(OrderStatus::PaymentFailed.as_str())
                .execute(&mut *connection)
                .await?;
            }
        }
        Ok(())
    }

    /// Folds the batch into its orders' rows in memory (read with one
    /// query) and writes the rows it changed with one upsert: what
    /// [`Projection::apply`] does event by event, in two statements.
    async fn apply_batch(
        &self,
        connection: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), HandlerError> {
        if let [event] = events {
            return self.apply(connection, event).await;
        }
        let changes = events
            .iter()
            .map(change_of)
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<Uuid> = changes
            .iter()
            .map(Change::order_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // No row locks: every transaction of the projection first takes
        // its checkpoint lease, so no other writer runs meanwhile.
        let mut rows: HashMap<Uuid, SummaryRow> = sqlx::query_as::<_, SummaryRow>(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM order_summaries WHERE order_id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(&mut *connection)
        .await?
        .into_iter()
        .map(|row| (row.order_id, row))
        .collect();
        let mut changed = BTreeSet::new();
        for change in changes {
            match change {
                Change::Place(row) => {
                    if let Entry::Vacant(entry) = rows.entry(row.order_id) {
                        changed.insert(row.order_id);
                        entry.insert(row);
                    }
                }
                Change::Update(update) => {
                    if let Some(row) = rows.get_mut(&update.order_id) {
                        if row.version < update.version {
                            changed.insert(update.order_id);
                            row.update(update);
                        }
                    }
                }
            }
        }
        let changed: Vec<&SummaryRow> = changed.iter().filter_map(|id| rows.get(id)).collect();
        upsert(connection, &changed).await
    }
}

const SUMMARY_COLUMNS: &str = "order_id, customer_id, status, currency, total, lines, \
     payment_method, correlation_id, version, placed_at, updated_at, shortages, cancel_reason, \
     payment_error";

/// An `order_summaries` row, as a batch folds it.
#[derive(sqlx::FromRow)]
struct SummaryRow {
    order_id: Uuid,
    customer_id: String,
    status: String,
    currency: String,
    total: Decimal,
    lines: serde_json::Value,
    payment_method: String,
    correlation_id: Option<String>,
    version: i64,
    placed_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    shortages: Option<serde_json::Value>,
    cancel_reason: Option<String>,
    payment_error: Option<String>,
}

impl SummaryRow {
    /// What the `UPDATE` of [`Projection::apply`] does to the row.
    fn update(&mut self, update: Update) {
        self.status = update.status.as_str().to_owned();
        self.version = update.version;
        self.updated_at = update.at;
        if update.shortages.is_some() {
            self.shortages = update.shortages;
        }
        if update.cancel_reason.is_some() {
            self.cancel_reason = update.cancel_reason;
        }
        self.payment_error = match update.status {
            OrderStatus::PaymentFailed => update.payment_error,
            _ => None,
        };
    }
}

/// What one order event does to its summary.
enum Change {
    /// Inserts the row unless the order has one.
    Place(SummaryRow),
    /// Updates the row if it reflects an older version of the stream.
    Update(Update),
}

impl Change {
    fn order_id(&self) -> Uuid {
        match self {
            Change::Place(row) => row.order_id,
            Change::Update(update) => update.order_id,
        }
    }
}

struct Update {
    order_id: Uuid,
    status: OrderStatus,
    version: i64,
    at: DateTime<Utc>,
    /// Kept when `None`, as are `cancel_reason`'s.
    shortages: Option<serde_json::Value>,
    cancel_reason: Option<String>,
    /// Set with the `PaymentFailed` status, cleared by any other.
    payment_error: Option<String>,
}

fn change_of(event: &RecordedEvent) -> Result<Change, HandlerError> {
    let order_event: OrderEvent = decode(event)?;
    let (status, shortages, cancel_reason, payment_error) = match order_event {
        OrderEvent::Placed {
            order_id,
            customer_id,
            currency,
            lines,
            total,
            payment_method,
        } => {
            return Ok(Change::Place(SummaryRow {
                order_id,
                customer_id,
                status: OrderStatus::Pending.as_str().to_owned(),
                currency: currency.code().to_owned(),
                total,
                lines: serde_json::to_value(lines).map_err(HandlerError::new)?,
                payment_method: payment_method.as_str().to_owned(),
                correlation_id: event.correlation_id.clone().map(String::from),
                version: event.stream_version,
                placed_at: event.recorded_at,
                updated_at: event.recorded_at,
                shortages: None,
                cancel_reason: None,
                payment_error: None,
            }))
        }
        OrderEvent::Reserved {} => (OrderStatus::Reserved, None, None, None),
        OrderEvent::Rejected { shortages } => (
            OrderStatus::Rejected,
            Some(serde_json::to_value(shortages).map_err(HandlerError::new)?),
            None,
            None,
        ),
        OrderEvent::Cancelled { reason } => (OrderStatus::Cancelled, None, Some(reason), None),
        OrderEvent::Shipped {} => (OrderStatus::Shipped, None, None, None),
        OrderEvent::Paid { .. } => (OrderStatus::Paid, None, None, None),
        OrderEvent::PaymentFailed { reason } => {
            (OrderStatus::PaymentFailed, None, None, Some(reason))
        }
        // A retry goes back to waiting for payment, as after shipping.
        OrderEvent::PaymentRetryRequested { .. } => (OrderStatus::Shipped, None, None, None),
    };
    Ok(Change::Update(Update {
        order_id: order_id_of(event)?,
        status,
        version: event.stream_version,
        at: event.recorded_at,
        shortages,
        cancel_reason,
        payment_error,
    }))
}

/// Writes whole rows, inserted or replacing the stored ones.
async fn upsert(connection: &mut PgConnection, rows: &[&SummaryRow]) -> Result<(), HandlerError> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |value: fn(&SummaryRow) -> &str| -> Vec<&str> {
        rows.iter().map(|row| value(row)).collect()
    };
    let ids: Vec<Uuid> = rows.iter().map(|row| row.order_id).collect();
    let customers = column(|row| &row.customer_id);
    let statuses = column(|row| &row.status);
    let currencies = column(|row| &row.currency);
    let totals: Vec<Decimal> = rows.iter().map(|row| row.total).collect();
    let lines: Vec<&serde_json::Value> = rows.iter().map(|row| &row.lines).collect();
    let methods = column(|row| &row.payment_method);
    let correlations: Vec<Option<&str>> = rows
        .iter()
        .map(|row| row.correlation_id.as_deref())
        .collect();
    let versions: Vec<i64> = rows.iter().map(|row| row.version).collect();
    let placed: Vec<DateTime<Utc>> = rows.iter().map(|row| row.placed_at).collect();
    let updated: Vec<DateTime<Utc>> = rows.iter().map(|row| row.updated_at).collect();
    let shortages: Vec<Option<&serde_json::Value>> =
        rows.iter().map(|row| row.shortages.as_ref()).collect();
    let reasons: Vec<Option<&str>> = rows
        .iter()
        .map(|row| row.cancel_reason.as_deref())
        .collect();
    let errors: Vec<Option<&str>> = rows
        .iter()
        .map(|row| row.payment_error.as_deref())
        .collect();
    sqlx::query(&format!(
        "INSERT INTO order_summaries ({SUMMARY_COLUMNS}) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::numeric[], \
                              $6::jsonb[], $7::text[], $8::text[], $9::bigint[], \
                              $10::timestamptz[], $11::timestamptz[], $12::jsonb[], $13::text[], \
                              $14::text[]) \
         ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, \
             version = excluded.version, updated_at = excluded.updated_at, \
             shortages = excluded.shortages, cancel_reason = excluded.cancel_reason, \
             payment_error = excluded.payment_error"
    ))
    .bind(&ids)
    .bind(&customers)
    .bind(&statuses)
    .bind(&currencies)
    .bind(&totals)
    .bind(&lines)
    .bind(&methods)
    .bind(&correlations)
    .bind(&versions)
    .bind(&placed)
    .bind(&updated)
    .bind(&shortages)
    .bind(&reasons)
    .bind(&errors)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// `order-{uuid}` -> the uuid.
fn order_id_of(event: &RecordedEvent) -> Result<Uuid, HandlerError> {
    event
        .stream_id
        .strip_prefix("order-")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| HandlerError::new(format!("{} is not an order stream", event.stream_id)))
}
