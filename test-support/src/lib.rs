//! What the workspace's tests and benches share, and nothing a release
//! build links: every crate takes it as a dev-dependency only.
//!
//! - [`TestDatabase`]: one fresh, migrated database per test, cloned from a
//!   template, on `DATABASE_URL` or a private cluster of `pg-embedded`;
//! - [`restore_into_fresh_cluster`] and [`advance_transaction_ids`]: a
//!   database restored the way an operator does it, for the restore tests;
//! - [`wait_until`] and [`eventually`]: waiting on a condition with a
//!   deadline, for outcomes that background tasks produce.
//!
//! Each test crate keeps its own helper module for what is specific to it
//! (its patience, its set-up); this crate knows no orderstream type.

mod backup;
mod error;
mod test_database;
mod wait;

pub use backup::{advance_transaction_ids, restore_into_fresh_cluster};
pub use error::TestSupportError;
pub use test_database::TestDatabase;
pub use wait::{eventually, wait_until};
