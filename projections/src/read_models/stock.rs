//! Stock levels now (per SKU and warehouse) and stock history (one row per
//! change), for "what is the stock" and "what was it at instant T".

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use aggregates::inventory::{Inventory, InventoryEvent};
use aggregates::Aggregate;

use super::{decode, decode_taking_data};
use crate::{HandlerError, Projection, RebuildSession};

mod history;
mod levels;

use history::HistoryRows;
use levels::Levels;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseLevel {
    pub warehouse: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

/// A SKU's stock: totals, per warehouse, and the log position it reflects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StockView {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub warehouses: Vec<WarehouseLevel>,
    pub position: i64,
}

/// One change in a SKU's history, with the totals after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StockChange {
    pub at: DateTime<Utc>,
    /// With `at` and `position`, the change's place in the history's order
    /// (the key a page of it continues after).
    pub transaction_id: i64,
    pub position: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub event_type: String,
}

impl StockChange {
    /// The key of this change in history order, for the next page.
    pub fn key(&self) -> HistoryKey {
        HistoryKey {
            at: self.at,
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }
}

/// A place in a SKU's history: its rows are ordered by
/// `(at, transaction_id, position)`, the table's key after the SKU, so a
/// page is one range scan of it. A rebuild writes the same keys again (they
/// come from the events), so a key stays valid across one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryKey {
    pub at: DateTime<Utc>,
    pub transaction_id: i64,
    pub position: i64,
}

/// Which rows of a SKU's history one read wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRange {
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Inclusive.
    pub to: Option<DateTime<Utc>>,
    /// Only rows after this one (the last row of the previous page).
    pub after: Option<HistoryKey>,
    pub limit: i64,
}

impl HistoryRange {
    /// The first `limit` rows of the whole history.
    pub fn first(limit: i64) -> Self {
        HistoryRange {
            from: None,
            to: None,
            after: None,
            limit,
        }
    }
}

/// The stock of `sku` now; `None` if it never had an event.
pub async fn stock_level(pool: &PgPool, sku: &str) -> Result<Option<StockView>, sqlx::Error> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT warehouse, on_hand, reserved, position FROM stock_levels \
         WHERE sku = $1 ORDER BY warehouse",
    )
    .bind(sku)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let position = rows.iter().map(|row| row.3).max().unwrap_or(0);
    let warehouses = rows
        .into_iter()
        .map(|(warehouse, on_hand, reserved, _)| WarehouseLevel {
            warehouse,
            on_hand,
            reserved,
            available: on_hand - reserved,
        })
        .collect();
    Ok(Some(view(sku, warehouses, position)))
}

/// The stock of `sku` as it was at `at`: the last change at or before it
/// (one index descent). Zeros before the SKU's first event; `None` if the
/// SKU never had an event at all.
pub async fn stock_level_at(
    pool: &PgPool,
    sku: &str,
    at: DateTime<Utc>,
) -> Result<Option<StockView>, sqlx::Error> {
    let row: Option<(sqlx::types::Json<Vec<WarehouseLevel>>, i64)> = sqlx::query_as(
        "SELECT warehouses, position FROM stock_history \
         WHERE sku = $1 AND at <= $2 \
         ORDER BY at DESC, transaction_id DESC, position DESC LIMIT 1",
    )
    .bind(sku)
    .bind(at)
    .fetch_optional(pool)
    .await?;
    if let Some((warehouses, position)) = row {
        return Ok(Some(view(sku, warehouses.0, position)));
    }
    let known: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM stock_history WHERE sku = $1)")
            .bind(sku)
            .fetch_one(pool)
            .await?;
    Ok(known.then(|| view(sku, Vec::new(), 0)))
}

/// Up to `range.limit` changes of `sku` in `range`, oldest first.
pub async fn stock_history(
    pool: &PgPool,
    sku: &str,
    range: HistoryRange,
) -> Result<Vec<StockChange>, sqlx::Error> {
    let after = range.after;
    sqlx::query_as::<_, StockChange>(
        "SELECT at, transaction_id, position, on_hand, reserved, available, event_type \
           FROM stock_history \
         WHERE sku = $1 AND ($2::timestamptz IS NULL OR at >= $2) \
           AND ($3::timestamptz IS NULL OR at <= $3) \
           AND ($4::timestamptz IS NULL OR (at, transaction_id, position) > ($4, $5, $6)) \
         ORDER BY at, transaction_id, position LIMIT $7",
    )
    .bind(sku)
    .bind(range.from)
    .bind(range.to)
    .bind(after.map(|key| key.at))
    .bind(after.map_or(0, |key| key.transaction_id))
    .bind(after.map_or(0, |key| key.position))
    .bind(range.limit)
    .fetch_all(pool)
    .await
}

fn view(sku: &str, warehouses: Vec<WarehouseLevel>, position: i64) -> StockView {
    let on_hand = warehouses.iter().map(|w| w.on_hand).sum();
    let reserved = warehouses.iter().map(|w| w.reserved).sum();
    StockView {
        sku: sku.to_owned(),
        on_hand,
        reserved,
        available: on_hand - reserved,
        warehouses,
        position,
    }
}

/// Projects `inventory-*` streams into `stock_levels` and `stock_history`.
///
/// A batch is folded in memory from the SKUs' current levels: one query to
/// read them, one `COPY` of a history row per event (see `history.rs`),
/// one to upsert the final levels, whatever the batch's size. A rebuild
/// keeps the levels in memory from batch to batch and writes them once, at
/// its end (its [`Projection::rebuild_session`]).
///
/// Idempotent: each level row keeps the position of the last event applied
/// to it, and since a SKU's events have rising positions (one stream, whose
/// appends are serialised), an event at or below the highest position of
/// its SKU's rows was applied already and is skipped. A reset, a replay, a
/// crash before the checkpoint or a stale owner's redelivery changes
/// nothing.
pub struct StockLevels;

impl StockLevels {
    pub const NAME: &'static str = "stock";
    pub const CATEGORY: &'static str = Inventory::CATEGORY;

    /// A rebuild session that writes its levels and forgets them whenever
    /// it holds more than `max_skus` SKUs after a batch (the default
    /// session holds [`MAX_HELD_SKUS`]).
    pub fn rebuild_session_holding(&self, max_skus: usize) -> Box<dyn RebuildSession> {
        Box::new(StockRebuild {
            levels: Levels::default(),
            max_skus,
        })
    }
}

/// How many SKUs a rebuild session holds in memory (a few hundred bytes
/// each) before it writes them out: a rebuild's memory stays bounded
/// whatever the number of SKUs, and below it (the seeded benchmark has
/// 1,000) the levels are written once.
pub const MAX_HELD_SKUS: usize = 10_000;

#[async_trait]
impl Projection for StockLevels {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn category(&self) -> &'static str {
        Self::CATEGORY
    }

    fn tables(&self) -> &'static [&'static str] {
        &["stock_levels", "stock_history"]
    }

    // A SKU's rows come from its own stream.
    fn rows_per_stream(&self) -> bool {
        true
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        self.apply_batch(connection, std::slice::from_ref(event))
            .await
    }

    async fn apply_batch(
        &self,
        connection: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), HandlerError> {
        let decoded = events
            .iter()
            .filter(|event| event.category() == Self::CATEGORY)
            .map(|event| Ok(Decoded::new(event, decode(event)?)))
            .collect::<Result<Vec<_>, HandlerError>>()?;
        let mut levels = Levels::default();
        fold(connection, &mut levels, &decoded).await?;
        levels.write_changed(connection).await
    }

    fn rebuild_session(&self) -> Box<dyn RebuildSession + '_> {
        self.rebuild_session_holding(MAX_HELD_SKUS)
    }
}

/// The `stock` rebuild: the levels of the SKUs seen stay in memory across
/// batches (each batch writes only its history rows) and are written by
/// `finish`, or when more than `max_skus` are held.
///
/// Without it each batch of an interleaved log reads and rewrites the
/// levels of most SKUs, about one level row version per history row.
struct StockRebuild {
    levels: Levels,
    max_skus: usize,
}

#[async_trait]
impl RebuildSession for StockRebuild {
    async fn apply_batch(
        &mut self,
        connection: &mut PgConnection,
        mut events: Vec<RecordedEvent>,
    ) -> Result<(), HandlerError> {
        let decoded = events
            .iter_mut()
            .filter(|event| event.category() == StockLevels::CATEGORY)
            .map(|event| {
                let inventory_event = decode_taking_data(event)?;
                Ok(Decoded::new(event, inventory_event))
            })
            .collect::<Result<Vec<_>, HandlerError>>()?;
        fold(connection, &mut self.levels, &decoded).await?;
        if self.levels.len() > self.max_skus {
            self.levels.write_changed(connection).await?;
            self.levels.clear();
        }
        Ok(())
    }

    async fn finish(self: Box<Self>, connection: &mut PgConnection) -> Result<(), HandlerError> {
        let mut levels = self.levels;
        levels.write_changed(connection).await
    }
}

/// An inventory event with its place in the log.
struct Decoded {
    position: i64,
    transaction_id: i64,
    recorded_at: DateTime<Utc>,
    event: InventoryEvent,
}

impl Decoded {
    fn new(event: &RecordedEvent, inventory_event: InventoryEvent) -> Self {
        Decoded {
            position: event.position,
            transaction_id: event.transaction_id,
            recorded_at: event.recorded_at,
            event: inventory_event,
        }
    }
}

/// Folds `events` into `levels` (reading the rows of SKUs not held yet)
/// and writes their history rows; the levels are left for the caller to
/// write.
async fn fold(
    connection: &mut PgConnection,
    levels: &mut Levels,
    events: &[Decoded],
) -> Result<(), HandlerError> {
    if events.is_empty() {
        return Ok(());
    }
    levels.read_missing(connection, events).await?;
    let mut history = HistoryRows::with_capacity(events.len());
    for decoded in events {
        if let Some(warehouses) = levels.apply(decoded) {
            history.push(decoded, warehouses)?;
        }
    }
    if history.is_empty() {
        return Ok(());
    }
    history.insert(connection).await
}
