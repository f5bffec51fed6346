//! Integration tests of the event store against a real PostgreSQL: each
//! test gets a fresh database of its own (see `helpers`).

mod append;
mod concurrency;
mod consumer_groups;
mod correlation;
mod helpers;
mod leases;
mod log_epoch;
mod properties;
mod reads;
mod restore;
mod session;
mod subscription;
