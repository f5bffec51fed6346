//! Payments per order.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

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

    // An order's payment row comes from its payment stream.
    fn rows_per_stream(&self) -> bool {
        true
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        // Every statement applies only an event newer than the row's
        // version: a redelivered event is a no-op.
        let statement = match change_of(event)? {
            Change::Request(row) => sqlx::query(
                "INSERT INTO payments (order_id, status, amount, currency, method, attempts, \
                     updated_at, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, \
                     attempts = excluded.attempts, updated_at = excluded.updated_at, \
                     version = excluded.version \
                 WHERE payments.version < excluded.version",
            )
            .bind(row.order_id)
            .bind(row.status)
            .bind(row.amount)
            .bind(row.currency)
            .bind(row.method)
            .bind(row.attempts)
            .bind(row.updated_at)
            .bind(row.version),
            Change::Update(update) => sqlx::query(
                "UPDATE payments SET status = $2, updated_at = $3, version = $4, \
                     reference = CASE WHEN $5 THEN $6 ELSE reference END, \
                     last_error = CASE WHEN $7 THEN $8 ELSE last_error END \
                 WHERE order_id = $1 AND version < $4",
            )
            .bind(update.order_id)
            .bind(update.status)
            .bind(update.at)
            .bind(update.version)
            .bind(update.reference.is_some())
            .bind(update.reference.flatten())
            .bind(update.last_error.is_some())
            .bind(update.last_error.flatten()),
        };
        statement.execute(&mut *connection).await?;
        Ok(())
    }

    /// Folds the batch into its payments' rows in memory (read with one
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
        let mut rows: HashMap<Uuid, PaymentRow> = sqlx::query_as::<_, PaymentRow>(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = ANY($1)"
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
                Change::Request(request) => match rows.entry(request.order_id) {
                    Entry::Vacant(entry) => {
                        changed.insert(request.order_id);
                        entry.insert(request);
                    }
                    Entry::Occupied(mut entry) => {
                        let row = entry.get_mut();
                        if row.version < request.version {
                            changed.insert(request.order_id);
                            row.status = request.status;
                            row.attempts = request.attempts;
                            row.updated_at = request.updated_at;
                            row.version = request.version;
                        }
                    }
                },
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
        let changed: Vec<&PaymentRow> = changed.iter().filter_map(|id| rows.get(id)).collect();
        upsert(connection, &changed).await
    }
}

const PAYMENT_COLUMNS: &str =
    "order_id, status, amount, currency, method, attempts, reference, last_error, updated_at, \
     version";

/// A `payments` row, as a batch folds it.
#[derive(sqlx::FromRow)]
struct PaymentRow {
    order_id: Uuid,
    status: String,
    amount: Decimal,
    currency: String,
    method: String,
    attempts: i32,
    reference: Option<String>,
    last_error: Option<String>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl PaymentRow {
    /// What the `UPDATE` of [`Projection::apply`] does to the row.
    fn update(&mut self, update: Update) {
        self.status = update.status.to_owned();
        self.updated_at = update.at;
        self.version = update.version;
        if let Some(reference) = update.reference {
            self.reference = reference;
        }
        if let Some(last_error) = update.last_error {
            self.last_error = last_error;
        }
    }
}

/// What one payment event does to its row.
enum Change {
    /// Inserts the row, or restarts it (status, attempts, time, version;
    /// amount and method stay) if it reflects an older version.
    Request(PaymentRow),
    /// Updates the row if it reflects an older version of the stream.
    Update(Update),
}

impl Change {
    fn order_id(&self) -> Uuid {
        match self {
            Change::Request(row) => row.order_id,
            Change::Update(update) => update.order_id,
        }
    }
}

struct Update {
    order_id: Uuid,
    status: &'static str,
    at: DateTime<Utc>,
    version: i64,
    /// `Some(value)`: set the column to `value`; `None`: keep it.
    reference: Option<Option<String>>,
    last_error: Option<Option<String>>,
}

fn change_of(event: &RecordedEvent) -> Result<Change, HandlerError> {
    let update = |status, reference, last_error| -> Result<Change, HandlerError> {
        Ok(Change::Update(Update {
            order_id: order_id_of(event)?,
            status,
            at: event.recorded_at,
            version: event.stream_version,
            reference,
            last_error,
        }))
    };
    match decode::<PaymentEvent>(event)? {
        PaymentEvent::Requested {
            order_id,
            amount,
            currency,
            method,
            attempt,
        } => Ok(Change::Request(PaymentRow {
            order_id,
            status: "requested".to_owned(),
            amount,
            currency: currency.code().to_owned(),
            method: method.as_str().to_owned(),
            attempts: i32::try_from(attempt).unwrap_or(i32::MAX),
            reference: None,
            last_error: None,
            updated_at: event.recorded_at,
            version: event.stream_version,
        })),
        PaymentEvent::Captured { reference, .. } => {
            update("captured", Some(Some(reference)), Some(None))
        }
        PaymentEvent::Failed { reason, .. } => update("failed", None, Some(Some(reason))),
        PaymentEvent::Refunded { .. } => update("refunded", None, None),
    }
}

/// Writes whole rows, inserted or replacing the stored ones.
async fn upsert(connection: &mut PgConnection, rows: &[&PaymentRow]) -> Result<(), HandlerError> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = rows.iter().map(|row| row.order_id).collect();
    let statuses: Vec<&str> = rows.iter().map(|row| row.status.as_str()).collect();
    let amounts: Vec<Decimal> = rows.iter().map(|row| row.amount).collect();
    let currencies: Vec<&str> = rows.iter().map(|row| row.currency.as_str()).collect();
    let methods: Vec<&str> = rows.iter().map(|row| row.method.as_str()).collect();
    let attempts: Vec<i32> = rows.iter().map(|row| row.attempts).collect();
    let references: Vec<Option<&str>> = rows.iter().map(|row| row.reference.as_deref()).collect();
    let errors: Vec<Option<&str>> = rows.iter().map(|row| row.last_error.as_deref()).collect();
    let updated: Vec<DateTime<Utc>> = rows.iter().map(|row| row.updated_at).collect();
    let versions: Vec<i64> = rows.iter().map(|row| row.version).collect();
    sqlx::query(&format!(
        "INSERT INTO payments ({PAYMENT_COLUMNS}) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::text[], $5::text[], \
                              $6::int[], $7::text[], $8::text[], $9::timestamptz[], \
                              $10::bigint[]) \
         ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, \
             attempts = excluded.attempts, reference = excluded.reference, \
             last_error = excluded.last_error, updated_at = excluded.updated_at, \
             version = excluded.version"
    ))
    .bind(&ids)
    .bind(&statuses)
    .bind(&amounts)
    .bind(&currencies)
    .bind(&methods)
    .bind(&attempts)
    .bind(&references)
    .bind(&errors)
    .bind(&updated)
    .bind(&versions)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

fn order_id_of(event: &RecordedEvent) -> Result<Uuid, HandlerError> {
    event
        .stream_id
        .strip_prefix("payment-")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| HandlerError::new(format!("{} is not a payment stream", event.stream_id)))
}
