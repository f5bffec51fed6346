//! Writing a batch's `stock_history` rows: one binary `COPY` when nothing
//! of the batch is stored yet (every rebuild batch, nearly every live one),
//! else an insert that checks the rows already there.

use std::ops::Range;

use aggregates::DomainEvent;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use sqlx::PgConnection;

use super::levels::Level;
use super::Decoded;
use crate::read_models::binary_copy::BinaryCopy;
use crate::HandlerError;

/// Below this many rows a `COPY` (three round trips with its savepoint)
/// costs more than the one-statement insert.
const COPY_FROM_ROWS: usize = 64;

const COPY_STATEMENT: &str = "COPY stock_history (sku, at, transaction_id, position, on_hand, \
     reserved, available, warehouses, event_type) FROM STDIN (FORMAT binary)";

/// One history row: a SKU's levels after one event.
struct HistoryRow<'a> {
    sku: &'a str,
    at: DateTime<Utc>,
    transaction_id: i64,
    position: i64,
    on_hand: i64,
    reserved: i64,
    /// Where its `warehouses` JSON is in [`HistoryRows::json`].
    warehouses: Range<usize>,
    event_type: &'static str,
}

/// One element of a row's `warehouses`, borrowed: the same fields as
/// `WarehouseLevel`, which `stock_level_at` reads it back as.
#[derive(Serialize)]
struct WarehouseJson<'a> {
    warehouse: &'a str,
    on_hand: i64,
    reserved: i64,
    available: i64,
}

/// The history rows of a batch.
pub(super) struct HistoryRows<'a> {
    rows: Vec<HistoryRow<'a>>,
    /// Every row's `warehouses` JSON, one after the other: one buffer for
    /// the batch rather than a few small allocations per row.
    json: Vec<u8>,
}

impl<'a> HistoryRows<'a> {
    pub(super) fn with_capacity(rows: usize) -> Self {
        HistoryRows {
            rows: Vec::with_capacity(rows),
            json: Vec::with_capacity(rows * 80),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A row with the SKU's levels after `decoded` (the event's type is
    /// the one stored: decoding keeps it).
    pub(super) fn push(
        &mut self,
        decoded: &'a Decoded,
        warehouses: &[(String, Level)],
    ) -> Result<(), HandlerError> {
        let start = self.json.len();
        serde_json::Serializer::new(&mut self.json)
            .collect_seq(warehouses.iter().map(|(warehouse, level)| WarehouseJson {
                warehouse,
                on_hand: level.on_hand,
                reserved: level.reserved,
                available: level.on_hand - level.reserved,
            }))
            .map_err(HandlerError::new)?;
        self.rows.push(HistoryRow {
            sku: decoded.event.sku().as_str(),
            at: decoded.recorded_at,
            transaction_id: decoded.transaction_id,
            position: decoded.position,
            on_hand: warehouses.iter().map(|(_, level)| level.on_hand).sum(),
            reserved: warehouses.iter().map(|(_, level)| level.reserved).sum(),
            warehouses: start..self.json.len(),
            event_type: decoded.event.event_type(),
        });
        Ok(())
    }

    /// A row's `warehouses` JSON (UTF-8: serde_json writes nothing else).
    fn warehouses(&self, row: &HistoryRow) -> &[u8] {
        self.json.get(row.warehouses.clone()).unwrap_or(b"[]")
    }

    /// Stores the rows. A row already there (an event whose level rows
    /// were lost, e.g. a SKU whose every warehouse row was deleted by hand)
    /// must say the same, or the model is inconsistent and the event fails.
    pub(super) async fn insert(&self, connection: &mut PgConnection) -> Result<(), HandlerError> {
        if self.rows.len() < COPY_FROM_ROWS {
            return self.insert_checked(connection).await;
        }
        // The savepoint keeps the batch's transaction usable when the
        // `COPY` meets a stored row: only then is the checking insert run.
        sqlx::query("SAVEPOINT stock_history_copy")
            .execute(&mut *connection)
            .await?;
        match self.copy(connection).await {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                sqlx::query("ROLLBACK TO SAVEPOINT stock_history_copy")
                    .execute(&mut *connection)
                    .await?;
                self.insert_checked(connection).await
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn copy(&self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        let mut data = BinaryCopy::with_capacity(self.rows.len() * 200);
        for row in &self.rows {
            data.row(9);
            data.text(row.sku);
            data.timestamptz(row.at);
            data.bigint(row.transaction_id);
            data.bigint(row.position);
            data.bigint(row.on_hand);
            data.bigint(row.reserved);
            data.bigint(row.on_hand - row.reserved);
            data.jsonb(self.warehouses(row));
            data.text(row.event_type);
        }
        let mut copy = connection.copy_in_raw(COPY_STATEMENT).await?;
        copy.send(data.finish()).await?;
        copy.finish().await?;
        Ok(())
    }

    fn column(&self, value: fn(&HistoryRow<'a>) -> i64) -> Vec<i64> {
        self.rows.iter().map(value).collect()
    }

    async fn insert_checked(&self, connection: &mut PgConnection) -> Result<(), HandlerError> {
        let skus: Vec<&str> = self.rows.iter().map(|row| row.sku).collect();
        let at: Vec<DateTime<Utc>> = self.rows.iter().map(|row| row.at).collect();
        let warehouses = self
            .rows
            .iter()
            .map(|row| std::str::from_utf8(self.warehouses(row)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(HandlerError::new)?;
        let event_types: Vec<&str> = self.rows.iter().map(|row| row.event_type).collect();
        let transaction_ids = self.column(|row| row.transaction_id);
        let positions = self.column(|row| row.position);
        let on_hand = self.column(|row| row.on_hand);
        let reserved = self.column(|row| row.reserved);
        let available = self.column(|row| row.on_hand - row.reserved);
        let differing: i64 = sqlx::query_scalar(
            "WITH new AS ( \
                 SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[], \
                                      $5::bigint[], $6::bigint[], $7::bigint[], $8::text[]::jsonb[], \
                                      $9::text[]) \
                     AS n(sku, at, transaction_id, position, on_hand, reserved, available, \
                          warehouses, event_type)), \
             inserted AS ( \
                 INSERT INTO stock_history (sku, at, transaction_id, position, on_hand, reserved, \
                     available, warehouses, event_type) \
                 SELECT * FROM new \
                 ON CONFLICT (sku, at, transaction_id, position) DO NOTHING \
                 RETURNING sku, at, transaction_id, position) \
             SELECT count(*) FROM new \
               JOIN stock_history h USING (sku, at, transaction_id, position) \
              WHERE NOT EXISTS (SELECT FROM inserted i \
                                 WHERE (i.sku, i.at, i.transaction_id, i.position) \
                                     = (new.sku, new.at, new.transaction_id, new.position)) \
                AND (h.on_hand, h.reserved) IS DISTINCT FROM (new.on_hand, new.reserved)",
        )
        .bind(&skus)
        .bind(&at)
        .bind(&transaction_ids)
        .bind(&positions)
        .bind(&on_hand)
        .bind(&reserved)
        .bind(&available)
        .bind(&warehouses)
        .bind(&event_types)
        .fetch_one(&mut *connection)
        .await?;
        if differing > 0 {
            return Err(HandlerError::new(format!(
                "{differing} stock history rows already stored with other levels"
            )));
        }
        Ok(())
    }
}
