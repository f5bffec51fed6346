//! Writing a batch's `stock_history` rows: one binary `COPY` when nothing
//! of the batch is stored yet (every rebuild batch, nearly every live one),
//! else an insert that checks the rows already there.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use sqlx::PgConnection;

use super::WarehouseLevel;
use crate::read_models::binary_copy::BinaryCopy;
use crate::HandlerError;

/// Below this many rows a `COPY` (three round trips with its savepoint)
/// costs more than the one-statement insert.
const COPY_FROM_ROWS: usize = 64;

const COPY_STATEMENT: &str = "COPY stock_history (sku, at, transaction_id, position, on_hand, \
     reserved, available, warehouses, event_type) FROM STDIN (FORMAT binary)";

/// One history row: a SKU's levels after one event.
struct HistoryRow {
    sku: String,
    at: DateTime<Utc>,
    transaction_id: i64,
    position: i64,
    on_hand: i64,
    reserved: i64,
    warehouses: Vec<WarehouseLevel>,
    event_type: String,
}

/// The history rows of a batch.
#[derive(Default)]
pub(super) struct HistoryRows {
    rows: Vec<HistoryRow>,
}

impl HistoryRows {
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A row with the SKU's levels after `event`.
    pub(super) fn push(
        &mut self,
        sku: &str,
        event: &RecordedEvent,
        warehouses: &BTreeMap<String, (i64, i64)>,
    ) {
        let warehouses: Vec<WarehouseLevel> = warehouses
            .iter()
            .map(|(warehouse, (on_hand, reserved))| WarehouseLevel {
                warehouse: warehouse.clone(),
                on_hand: *on_hand,
                reserved: *reserved,
                available: on_hand - reserved,
            })
            .collect();
        self.rows.push(HistoryRow {
            sku: sku.to_owned(),
            at: event.recorded_at,
            transaction_id: event.transaction_id,
            position: event.position,
            on_hand: warehouses.iter().map(|level| level.on_hand).sum(),
            reserved: warehouses.iter().map(|level| level.reserved).sum(),
            warehouses,
            event_type: event.event_type.clone(),
        });
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
            data.text(&row.sku);
            data.timestamptz(row.at);
            data.bigint(row.transaction_id);
            data.bigint(row.position);
            data.bigint(row.on_hand);
            data.bigint(row.reserved);
            data.bigint(row.on_hand - row.reserved);
            data.jsonb(|buffer| serde_json::to_writer(buffer, &row.warehouses))
                .map_err(|error| sqlx::Error::Encode(error.into()))?;
            data.text(&row.event_type);
        }
        let mut copy = connection.copy_in_raw(COPY_STATEMENT).await?;
        copy.send(data.finish()).await?;
        copy.finish().await?;
        Ok(())
    }

    fn column(&self, value: fn(&HistoryRow) -> i64) -> Vec<i64> {
        self.rows.iter().map(value).collect()
    }

    async fn insert_checked(&self, connection: &mut PgConnection) -> Result<(), HandlerError> {
        let skus: Vec<&str> = self.rows.iter().map(|row| row.sku.as_str()).collect();
        let at: Vec<DateTime<Utc>> = self.rows.iter().map(|row| row.at).collect();
        let warehouses = self
            .rows
            .iter()
            .map(|row| serde_json::to_value(&row.warehouses))
            .collect::<Result<Vec<_>, _>>()
            .map_err(HandlerError::new)?;
        let event_types: Vec<&str> = self
            .rows
            .iter()
            .map(|row| row.event_type.as_str())
            .collect();
        let transaction_ids = self.column(|row| row.transaction_id);
        let positions = self.column(|row| row.position);
        let on_hand = self.column(|row| row.on_hand);
        let reserved = self.column(|row| row.reserved);
        let available = self.column(|row| row.on_hand - row.reserved);
        let differing: i64 = sqlx::query_scalar(
            "WITH new AS ( \
                 SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[], \
                                      $5::bigint[], $6::bigint[], $7::bigint[], $8::jsonb[], \
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
