//! A private PostgreSQL for orderstream, started from the machine's installed
//! PostgreSQL binaries.
//!
//! This is not a PostgreSQL distribution: it finds `initdb` and `postgres`
//! (via `pg_config --bindir` or `/usr/lib/postgresql/*/bin`) and runs them.
//! As root, which PostgreSQL refuses to run as, it runs them as the `postgres`
//! OS user.
//!
//! A cluster is reachable only by that OS user (and root): no TCP, one unix
//! socket in a 0700 directory (see [`Cluster`]).
//!
//! Start reading at [`Cluster`] (a running server). Fresh databases for
//! tests, and restores, are the dev-only `test-support` crate's, built on
//! [`Cluster::start_temporary`]: none of it is in a release build.
//!
//! `pgtemp` was evaluated: it only makes throwaway clusters (no reuse of a
//! data directory across runs, which `serve` needs) and panics on failures,
//! so this crate does the little it needs by hand.

mod cluster;
mod error;
mod install;
mod postmaster;
mod watchdog;

pub use cluster::{client_program, Cluster, ClusterOptions};
pub use error::EmbeddedError;
