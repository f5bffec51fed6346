//! Stock levels now (per SKU and warehouse) and stock history (one row per
//! change), for "what is the stock" and "what was it at instant T".

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use aggregates::inventory::{Allocation, Inventory, InventoryEvent};
use aggregates::Aggregate;

use super::decode;
use crate::{HandlerError, Projection};

mod history;

use history::HistoryRows;

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
/// one to upsert the final levels, whatever the batch's size.
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
}

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
        let mut decoded = Vec::with_capacity(events.len());
        for event in events
            .iter()
            .filter(|event| event.category() == Self::CATEGORY)
        {
            decoded.push((event, decode::<InventoryEvent>(event)?));
        }
        if decoded.is_empty() {
            return Ok(());
        }
        let skus: Vec<String> = decoded
            .iter()
            .map(|(_, inventory_event)| inventory_event.sku().as_str().to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (mut levels, applied_up_to) = current_levels(connection, &skus).await?;
        let mut history = HistoryRows::default();
        let mut touched: BTreeMap<(String, String), (i64, DateTime<Utc>)> = BTreeMap::new();
        for (event, inventory_event) in &decoded {
            let sku = inventory_event.sku().as_str();
            if applied_up_to
                .get(sku)
                .is_some_and(|applied| event.position <= *applied)
            {
                continue;
            }
            let warehouses = levels.entry(sku.to_owned()).or_default();
            for change in changes(inventory_event) {
                let level = warehouses.entry(change.warehouse.clone()).or_default();
                level.0 += change.on_hand;
                level.1 += change.reserved;
                touched.insert(
                    (sku.to_owned(), change.warehouse),
                    (event.position, event.recorded_at),
                );
            }
            history.push(sku, event, warehouses);
        }
        if history.is_empty() {
            return Ok(());
        }
        upsert_levels(connection, &levels, &touched).await?;
        history.insert(connection).await?;
        Ok(())
    }
}

/// (on hand, reserved) per warehouse, per SKU.
type Levels = BTreeMap<String, BTreeMap<String, (i64, i64)>>;

/// The SKUs' levels, and for each SKU the position of the last event
/// applied to it.
async fn current_levels(
    connection: &mut PgConnection,
    skus: &[String],
) -> Result<(Levels, BTreeMap<String, i64>), HandlerError> {
    // No row locks needed: every transaction of the projection first
    // takes its subscription's checkpoint row (the lease), so two owners'
    // transactions never run at once.
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT sku, warehouse, on_hand, reserved, position FROM stock_levels \
         WHERE sku = ANY($1)",
    )
    .bind(skus)
    .fetch_all(&mut *connection)
    .await?;
    let mut levels = Levels::new();
    let mut applied_up_to: BTreeMap<String, i64> = BTreeMap::new();
    for (sku, warehouse, on_hand, reserved, position) in rows {
        let applied = applied_up_to.entry(sku.clone()).or_insert(position);
        *applied = (*applied).max(position);
        levels
            .entry(sku)
            .or_default()
            .insert(warehouse, (on_hand, reserved));
    }
    Ok((levels, applied_up_to))
}

async fn upsert_levels(
    connection: &mut PgConnection,
    levels: &Levels,
    touched: &BTreeMap<(String, String), (i64, DateTime<Utc>)>,
) -> Result<(), HandlerError> {
    let mut skus = Vec::with_capacity(touched.len());
    let mut warehouses = Vec::with_capacity(touched.len());
    let mut on_hands = Vec::with_capacity(touched.len());
    let mut reserveds = Vec::with_capacity(touched.len());
    let mut positions = Vec::with_capacity(touched.len());
    let mut updated = Vec::with_capacity(touched.len());
    for ((sku, warehouse), (position, at)) in touched {
        let (on_hand, reserved) = levels
            .get(sku)
            .and_then(|levels| levels.get(warehouse))
            .copied()
            .unwrap_or_default();
        skus.push(sku.as_str());
        warehouses.push(warehouse.as_str());
        on_hands.push(on_hand);
        reserveds.push(reserved);
        positions.push(*position);
        updated.push(*at);
    }
    sqlx::query(
        "INSERT INTO stock_levels (sku, warehouse, on_hand, reserved, position, updated_at) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], \
                              $5::bigint[], $6::timestamptz[]) \
         ON CONFLICT (sku, warehouse) DO UPDATE \
            SET on_hand = excluded.on_hand, reserved = excluded.reserved, \
                position = excluded.position, updated_at = excluded.updated_at",
    )
    .bind(&skus)
    .bind(&warehouses)
    .bind(&on_hands)
    .bind(&reserveds)
    .bind(&positions)
    .bind(&updated)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// How one event changes each warehouse: (warehouse, on hand delta,
/// reserved delta).
struct WarehouseChange {
    warehouse: String,
    on_hand: i64,
    reserved: i64,
}

fn changes(event: &InventoryEvent) -> Vec<WarehouseChange> {
    let per_allocation = |allocations: &[Allocation], on_hand: i64, reserved: i64| {
        allocations
            .iter()
            .map(|allocation| {
                let quantity = i64::try_from(allocation.quantity).unwrap_or(i64::MAX);
                WarehouseChange {
                    warehouse: allocation.warehouse.as_str().to_owned(),
                    on_hand: on_hand * quantity,
                    reserved: reserved * quantity,
                }
            })
            .collect()
    };
    match event {
        InventoryEvent::Received {
            warehouse,
            quantity,
            ..
        } => vec![WarehouseChange {
            warehouse: warehouse.as_str().to_owned(),
            on_hand: i64::try_from(*quantity).unwrap_or(i64::MAX),
            reserved: 0,
        }],
        InventoryEvent::Adjusted {
            warehouse, delta, ..
        } => vec![WarehouseChange {
            warehouse: warehouse.as_str().to_owned(),
            on_hand: *delta,
            reserved: 0,
        }],
        InventoryEvent::Reserved { allocations, .. } => per_allocation(allocations, 0, 1),
        InventoryEvent::Released { allocations, .. } => per_allocation(allocations, 0, -1),
        InventoryEvent::Committed { allocations, .. } => per_allocation(allocations, -1, -1),
    }
}
