//! Command execution against a real PostgreSQL: one fresh database per test.

mod batch;
mod cache;
mod concurrency;
mod execute;
mod helpers;
mod limits;
mod reservations;
mod shipping;
mod snapshots;
