//! A private PostgreSQL for orderstream, started from the machine's installed
//! PostgreSQL binaries, and fresh databases for tests.
//!
//! This is not a PostgreSQL distribution: it finds `initdb` and `postgres`
//! (via `pg_config --bindir` or `/usr/lib/postgresql/*/bin`) and runs them.
//! As root, which PostgreSQL refuses to run as, it runs them as the `postgres`
//! OS user.
//!
//! A cluster is reachable only by that OS user (and root): no TCP, one unix
//! socket in a 0700 directory (see [`Cluster`]).
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
mod install;
mod postmaster;
mod test_database;
mod watchdog;

pub use backup::{advance_transaction_ids, dump_and_restore, restore_into_fresh_cluster};
pub use cluster::{client_program, Cluster, ClusterOptions};
pub use error::EmbeddedError;
pub use test_database::TestDatabase;
