//! A private PostgreSQL for orderstream, started from the machine's installed
//! PostgreSQL binaries, and fresh databases for tests.
//!
//! This is not a PostgreSQL distribution: it finds `initdb` and `postgres`
//! (via `pg_config --bindir` or `/usr/lib/postgresql/*/bin`) and runs them.
//! As root, which PostgreSQL refuses to run as, it runs them as the `postgres`
//! OS user.
//!
//! Start reading at [`Cluster`] (a running server) and [`TestDatabase`] (one
//! fresh, migrated database per test, cloned from a template).
//!
//! `pgtemp` was evaluated: it only makes throwaway clusters (no reuse of a
//! data directory across runs, which `serve` needs) and panics on failures,
//! so this crate does the little it needs by hand.

mod backup;
mod cluster;
mod error;
mod test_database;

pub use backup::{advance_transaction_ids, dump_and_restore};
pub use cluster::{client_program, Cluster, ClusterOptions};
pub use error::EmbeddedError;
pub use test_database::TestDatabase;
