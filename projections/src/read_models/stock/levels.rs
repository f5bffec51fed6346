//! The levels a `stock` fold works on: per SKU and warehouse, read from
//! `stock_levels` once, changed in memory by each event, and written back
//! when the caller says (after a live batch, at the end of a rebuild).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use aggregates::inventory::{Allocation, InventoryEvent};

use super::Decoded;
use crate::HandlerError;

/// The levels of the SKUs read so far.
#[derive(Default)]
pub(super) struct Levels {
    skus: HashMap<String, SkuLevels>,
}

/// One SKU's levels.
#[derive(Default)]
struct SkuLevels {
    /// The position of the last event applied to the SKU, as its rows say
    /// it (the highest of their positions): an event at or below it was
    /// applied already. `None`: no row yet.
    applied_up_to: Option<i64>,
    /// Sorted by warehouse; a SKU has a few.
    warehouses: Vec<(String, Level)>,
}

/// One warehouse's level of one SKU.
#[derive(Debug, Clone, Copy)]
pub(super) struct Level {
    pub(super) on_hand: i64,
    pub(super) reserved: i64,
    /// Position and time of the last event that changed it, while that
    /// change is not written yet.
    unwritten: Option<(i64, DateTime<Utc>)>,
}

impl Levels {
    /// How many SKUs are held.
    pub(super) fn len(&self) -> usize {
        self.skus.len()
    }

    /// Forgets every level held (written or not).
    pub(super) fn clear(&mut self) {
        self.skus.clear();
    }

    /// Reads the rows of the SKUs of `events` that are not held yet, in
    /// one query (none if every SKU is held).
    pub(super) async fn read_missing(
        &mut self,
        connection: &mut PgConnection,
        events: &[Decoded],
    ) -> Result<(), HandlerError> {
        let mut missing: Vec<&str> = events
            .iter()
            .map(|decoded| decoded.event.sku().as_str())
            .filter(|sku| !self.skus.contains_key(*sku))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        missing.dedup();
        // No row locks needed: every transaction of the projection first
        // takes its subscription's checkpoint row (the lease), and a
        // rebuild's tables are its own, so no two writers run at once.
        let mut rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT sku, warehouse, on_hand, reserved, position FROM stock_levels \
             WHERE sku = ANY($1)",
        )
        .bind(&missing)
        .fetch_all(&mut *connection)
        .await?;
        // Sorted here, not by the server: the history lists warehouses in
        // the byte order of their names, whatever the database's collation.
        rows.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        for sku in missing {
            self.skus.entry(sku.to_owned()).or_default();
        }
        for (sku, warehouse, on_hand, reserved, position) in rows {
            let levels = self.skus.entry(sku).or_default();
            levels.applied_up_to = levels.applied_up_to.max(Some(position));
            levels.warehouses.push((
                warehouse,
                Level {
                    on_hand,
                    reserved,
                    unwritten: None,
                },
            ));
        }
        Ok(())
    }

    /// Applies one event to its SKU's levels and returns them after it, or
    /// `None` if the event was applied already. The SKU's rows must have
    /// been read ([`Levels::read_missing`]).
    pub(super) fn apply(&mut self, decoded: &Decoded) -> Option<&[(String, Level)]> {
        let levels = self
            .skus
            .entry(decoded.event.sku().as_str().to_owned())
            .or_default();
        if levels
            .applied_up_to
            .is_some_and(|applied| decoded.position <= applied)
        {
            return None;
        }
        let mut changed = false;
        for_each_change(&decoded.event, |warehouse, on_hand, reserved| {
            let index = match levels
                .warehouses
                .binary_search_by(|(name, _)| name.as_str().cmp(warehouse))
            {
                Ok(index) => index,
                Err(index) => {
                    let empty = Level {
                        on_hand: 0,
                        reserved: 0,
                        unwritten: None,
                    };
                    levels
                        .warehouses
                        .insert(index, (warehouse.to_owned(), empty));
                    index
                }
            };
            let level = &mut levels.warehouses[index].1;
            level.on_hand += on_hand;
            level.reserved += reserved;
            level.unwritten = Some((decoded.position, decoded.recorded_at));
            changed = true;
        });
        // As the rows will say once written: an event that changed no
        // warehouse leaves no position behind.
        if changed {
            levels.applied_up_to = Some(decoded.position);
        }
        Some(&levels.warehouses)
    }

    /// Writes every level changed since the last write, in one statement.
    pub(super) async fn write_changed(
        &mut self,
        connection: &mut PgConnection,
    ) -> Result<(), HandlerError> {
        let mut skus = Vec::new();
        let mut warehouses = Vec::new();
        let mut on_hands = Vec::new();
        let mut reserveds = Vec::new();
        let mut positions = Vec::new();
        let mut updated = Vec::new();
        for (sku, levels) in &self.skus {
            for (warehouse, level) in &levels.warehouses {
                if let Some((position, at)) = level.unwritten {
                    skus.push(sku.as_str());
                    warehouses.push(warehouse.as_str());
                    on_hands.push(level.on_hand);
                    reserveds.push(level.reserved);
                    positions.push(position);
                    updated.push(at);
                }
            }
        }
        if skus.is_empty() {
            return Ok(());
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
        for levels in self.skus.values_mut() {
            for (_, level) in &mut levels.warehouses {
                level.unwritten = None;
            }
        }
        Ok(())
    }
}

/// Calls `change(warehouse, on hand delta, reserved delta)` for each
/// warehouse `event` changes.
fn for_each_change(event: &InventoryEvent, mut change: impl FnMut(&str, i64, i64)) {
    let mut per_allocation = |allocations: &[Allocation], on_hand: i64, reserved: i64| {
        for allocation in allocations {
            let quantity = i64::try_from(allocation.quantity).unwrap_or(i64::MAX);
            change(
                allocation.warehouse.as_str(),
                on_hand * quantity,
                reserved * quantity,
            );
        }
    };
    match event {
        InventoryEvent::Received {
            warehouse,
            quantity,
            ..
        } => change(
            warehouse.as_str(),
            i64::try_from(*quantity).unwrap_or(i64::MAX),
            0,
        ),
        InventoryEvent::Adjusted {
            warehouse, delta, ..
        } => change(warehouse.as_str(), *delta, 0),
        InventoryEvent::Reserved { allocations, .. } => per_allocation(allocations, 0, 1),
        InventoryEvent::Released { allocations, .. } => per_allocation(allocations, 0, -1),
        InventoryEvent::Committed { allocations, .. } => per_allocation(allocations, -1, -1),
    }
}
