//! The Inventory aggregate (`inventory-{sku}`): on hand and reserved stock of
//! one SKU per warehouse, and the open reservation of each order.
//!
//! Invariants, kept by `decide`: per warehouse, `reserved <= on_hand`, so
//! `available = on_hand - reserved` is never negative; `reserved` equals the
//! sum of the open reservations' allocations; on hand stays within
//! [`crate::limits`] per warehouse and per SKU (only receipts and upward
//! adjustments raise it, and both are checked).
//!
//! Idempotent no-ops (`Ok(vec![])`): `Reserve` for an order that already holds
//! a reservation of this SKU; `Release` for an order that holds none.
//! `Commit` without an open reservation is an error (`NoReservation`):
//! stock that was never reserved cannot be shipped.

mod allocation;
mod command;
mod decide;
mod error;
mod event;
mod level;
mod state;

pub use crate::limits::{MAX_ON_HAND_PER_SKU, MAX_ON_HAND_PER_WAREHOUSE, MAX_STOCK_MOVEMENT};
pub use allocation::{allocate, Allocation, Shortfall};
pub use command::InventoryCommand;
pub use error::InventoryError;
pub use event::InventoryEvent;
pub use level::StockLevel;
pub use state::{Inventory, WarehouseStock};
