//! The log epoch: keeping the log's order when the database changes cluster.
//!
//! The log orders events by the transaction id that appended them and shows
//! readers those below the oldest running transaction (`log.rs`). Those ids
//! belong to the PostgreSQL cluster, not to the database: restored from
//! `pg_dump` into another cluster (or copied by logical replication, or
//! moved to a managed server), the database holds ids far above the ones
//! the new cluster hands out. Its old events would be invisible for ever and
//! its new ones would sort before them, behind every checkpoint.
//!
//! So every id the store writes or compares is `pg_current_xact_id() +
//! offset`, with the offset in the one-row table `log_epoch`, dumped and
//! restored with the events. [`ensure`] notices stored ids that this
//! cluster cannot have produced and raises the offset once, so that new
//! events sort after every stored one and every stored one is below the
//! horizon. Nothing stored is rewritten: the log stays append-only and a
//! checkpoint taken before the move is still a place in the same order.
//! The SQL side, with its locking, is `migrations/*_log_epoch.sql`.
//!
//! [`EventStore::connect`](crate::EventStore::connect) calls it, rather than
//! leaving it to `serve` after migrating: every process that can append
//! opens the store that way, the check costs one index probe and no lock
//! when nothing is to do, and the database function is `SECURITY DEFINER`,
//! so a service connecting as `orderstream_app` without migration rights
//! heals the database too. A database not yet migrated has no such function
//! (the migration that adds it runs the same check).

use sqlx::PgPool;

use crate::StoreError;

/// `42883`: the function does not exist (the database is not migrated yet).
const UNDEFINED_FUNCTION: &str = "42883";

/// The log epoch offset moved: stored transaction ids were ahead of the
/// cluster's (the database was restored or moved into another cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct LogEpochShift {
    pub old_offset: i64,
    pub new_offset: i64,
    /// The largest transaction id stored in the log when it moved: every
    /// event appended since sorts after it.
    pub max_stored_transaction_id: i64,
}

/// Moves the log epoch offset if stored transaction ids are ahead of this
/// cluster's, and logs it at WARN. `None` when nothing was to do, which is
/// every start but the first one after a restore.
pub(crate) async fn ensure(pool: &PgPool) -> Result<Option<LogEpochShift>, StoreError> {
    let shift = sqlx::query_as::<_, LogEpochShift>(
        "SELECT old_offset, new_offset, max_stored_transaction_id FROM ensure_log_order()",
    )
    .fetch_optional(pool)
    .await?;
    if let Some(shift) = shift {
        tracing::warn!(
            old_offset = shift.old_offset,
            new_offset = shift.new_offset,
            max_stored_transaction_id = shift.max_stored_transaction_id,
            "stored transaction ids were ahead of this PostgreSQL cluster's (restored from a \
             dump or moved?): moved the log epoch offset so that new events follow every \
             stored one"
        );
    }
    Ok(shift)
}

/// [`ensure`] on a database that may not be migrated yet: there is nothing
/// to heal before the migrations (whose last step does the same check).
pub(crate) async fn ensure_if_migrated(pool: &PgPool) -> Result<(), StoreError> {
    match ensure(pool).await {
        Ok(_) => Ok(()),
        Err(StoreError::Database(sqlx::Error::Database(error)))
            if error.code().as_deref() == Some(UNDEFINED_FUNCTION) =>
        {
            tracing::debug!("no ensure_log_order() yet: the database is not migrated");
            Ok(())
        }
        Err(error) => Err(error),
    }
}
