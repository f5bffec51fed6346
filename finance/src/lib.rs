//! Finance: a separate bounded context that books orderstream's integration
//! events (see `contracts`) into a double-entry journal in its own database.

pub mod consumer;
pub mod contracts;
pub mod ledger;
pub mod rules;
pub mod topology;

/// Finance's schema, applied to its own database (`FINANCE_DATABASE_URL`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
