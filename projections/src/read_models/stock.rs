//! Stock levels now (per SKU and warehouse) and stock history (one row per
//! change), for "what is the stock" and "what was it at instant T".

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use aggregates::inventory::{Allocation, InventoryEvent};

use super::decode;
use crate::{HandlerError, Projection};

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
    pub position: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub event_type: String,
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

/// Every change of `sku` between `from` and `to` (inclusive), oldest first.
pub async fn stock_history(
    pool: &PgPool,
    sku: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<StockChange>, sqlx::Error> {
    sqlx::query_as::<_, StockChange>(
        "SELECT at, position, on_hand, reserved, available, event_type FROM stock_history \
         WHERE sku = $1 AND ($2::timestamptz IS NULL OR at >= $2) \
           AND ($3::timestamptz IS NULL OR at <= $3) \
         ORDER BY at, transaction_id, position",
    )
    .bind(sku)
    .bind(from)
    .bind(to)
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
pub struct StockLevels;

#[async_trait]
impl Projection for StockLevels {
    fn name(&self) -> &'static str {
        "stock"
    }

    fn category(&self) -> &'static str {
        "inventory"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["stock_levels", "stock_history"]
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        if event.category() != "inventory" {
            return Ok(());
        }
        let inventory_event: InventoryEvent = decode(event)?;
        let changes = changes(&inventory_event);
        let sku = inventory_event.sku().as_str();
        let (warehouses, (on_hand, reserved)): (Vec<String>, (Vec<i64>, Vec<i64>)) = changes
            .into_iter()
            .map(|change| (change.warehouse, (change.on_hand, change.reserved)))
            .unzip();
        sqlx::query(
            "INSERT INTO stock_levels (sku, warehouse, on_hand, reserved, position, updated_at) \
             SELECT $1, warehouse, on_hand, reserved, $5, $6 \
               FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS c(warehouse, on_hand, reserved) \
             ON CONFLICT (sku, warehouse) DO UPDATE \
                SET on_hand = stock_levels.on_hand + excluded.on_hand, \
                    reserved = stock_levels.reserved + excluded.reserved, \
                    position = excluded.position, updated_at = excluded.updated_at",
        )
        .bind(sku)
        .bind(&warehouses)
        .bind(&on_hand)
        .bind(&reserved)
        .bind(event.position)
        .bind(event.recorded_at)
        .execute(&mut *connection)
        .await?;
        sqlx::query(
            "INSERT INTO stock_history (sku, at, transaction_id, position, on_hand, reserved, \
                 available, warehouses, event_type) \
             SELECT $1, $2, $3, $4, sum(on_hand), sum(reserved), sum(on_hand - reserved), \
                    jsonb_agg(jsonb_build_object('warehouse', warehouse, 'on_hand', on_hand, \
                        'reserved', reserved, 'available', on_hand - reserved) ORDER BY warehouse), \
                    $5 \
               FROM stock_levels WHERE sku = $1",
        )
        .bind(sku)
        .bind(event.recorded_at)
        .bind(event.transaction_id)
        .bind(event.position)
        .bind(&event.event_type)
        .execute(&mut *connection)
        .await?;
        Ok(())
    }
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
