//! Rebuilding a read model: fresh tables in a schema of their own, filled
//! from position 0 while the old tables keep serving, then swapped in.
//!
//! Nothing here holds a transaction longer than one batch: log readers see
//! nothing past the oldest running transaction of the cluster (`log.rs` in
//! the event store), so one long rebuild transaction would stop every
//! subscriber. That is why the fresh tables are ordinary logged tables from
//! the start (an `UNLOGGED` table made durable with `SET LOGGED` is faster
//! to fill, but the conversion rewrites the table in one long
//! transaction), and why the swap first catches up the events that came
//! during the fill, outside any lock, and only then takes its locks, with a
//! short `lock_timeout`, retrying if readers hold them.
//!
//! The projection's SQL names its tables without a schema, so pointing the
//! rebuild connection's `search_path` at the new schema is all it takes to
//! write there. The connection is dedicated: no statement prepared against
//! the live tables is ever reused for the new ones.
//!
//! Creating, dropping and moving the tables is done by two `SECURITY
//! DEFINER` functions (`rebuild_prepare`, `rebuild_swap`) for the tables a
//! migration listed as rebuildable, so the same code runs as the owner or
//! as the service's least-privilege role, which has no DDL rights.

use std::time::Duration;

use event_store::{CheckpointLease, EventStore, FailureClass, LogCursor, RecordedEvent};
use sqlx::{Connection, PgConnection};

use super::error::RuntimeError;
use super::status::report_rebuild_progress;
use crate::Projection;

/// How long the swap waits for readers to let go of the old tables before
/// it tries again: readers queue behind the swap's lock request, so this
/// bounds how long any of them waits.
const SWAP_LOCK_TIMEOUT: &str = "1s";
const SWAP_ATTEMPTS: u32 = 10;

/// Creates empty copies of the projection's tables and returns a
/// connection that writes to them.
///
/// The copies are made by `rebuild_prepare`, a `SECURITY DEFINER` function
/// owned by the migrations' owner (see the migration
/// `20261201000013_app_role_privileges.sql`): the service's role has no
/// right to create tables itself.
pub(crate) async fn prepare(
    store: &EventStore,
    projection: &dyn Projection,
) -> Result<PgConnection, RuntimeError> {
    let mut connection = PgConnection::connect_with(&store.pool().connect_options()).await?;
    let schema: String = sqlx::query_scalar("SELECT rebuild_prepare($1, $2)")
        .bind(projection.name())
        .bind(projection.tables())
        .fetch_one(&mut connection)
        .await?;
    sqlx::query("SELECT set_config('search_path', quote_ident($1) || ', public', false)")
        .bind(&schema)
        .execute(&mut connection)
        .await?;
    Ok(connection)
}

/// Applies every visible event after `from` to the new tables, one
/// transaction per batch, reporting progress. Returns the last cursor.
pub(crate) async fn catch_up(
    store: &EventStore,
    projection: &dyn Projection,
    connection: &mut PgConnection,
    from: LogCursor,
    batch_size: i64,
) -> Result<LogCursor, RuntimeError> {
    // An estimate is enough for a progress bar, and a count of a large log
    // is a scan of it.
    let total: i64 = sqlx::query_scalar(
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'events'::regclass",
    )
    .fetch_one(store.pool())
    .await?;
    // The next batch is read while this one is applied: at most three
    // batches are in memory at once.
    let (sender, mut batches) = tokio::sync::mpsc::channel(1);
    let reader = tokio::spawn(read_ahead(
        store.clone(),
        projection.category().to_owned(),
        from,
        batch_size,
        sender,
    ));
    let mut done = 0_i64;
    let mut cursor = from;
    while let Some(batch) = batches.recv().await {
        let batch: Vec<RecordedEvent> = batch?;
        let Some(last) = batch.last() else {
            break;
        };
        cursor = last.cursor();
        let mut transaction = connection.begin().await?;
        apply(projection, &mut transaction, &batch).await?;
        transaction.commit().await?;
        done += batch.len() as i64;
        report_rebuild_progress(
            store.pool(),
            projection.name(),
            Some((done, total.max(done))),
        )
        .await?;
    }
    reader.abort();
    Ok(cursor)
}

/// Sends the category's batches after `from` until the log's visible end
/// (or the receiver is gone); a read error is sent, then it stops.
async fn read_ahead(
    store: EventStore,
    category: String,
    from: LogCursor,
    batch_size: i64,
    batches: tokio::sync::mpsc::Sender<Result<Vec<RecordedEvent>, RuntimeError>>,
) {
    let mut cursor = from;
    loop {
        let batch = store
            .read_category(&category, cursor, batch_size)
            .await
            .map_err(RuntimeError::from);
        let next = match &batch {
            Ok(batch) => batch.last().map(RecordedEvent::cursor),
            Err(_) => None,
        };
        if batches.send(batch).await.is_err() {
            return;
        }
        match next {
            Some(last) => cursor = last,
            None => return,
        }
    }
}

async fn apply(
    projection: &dyn Projection,
    connection: &mut PgConnection,
    batch: &[RecordedEvent],
) -> Result<(), RuntimeError> {
    projection
        .apply_batch(connection, batch)
        .await
        .map_err(RuntimeError::Rebuild)
}

/// With the live worker paused: applies what came since `cursor`, then
/// swaps the new tables in, clears the parked events and moves the
/// checkpoint, in one short transaction that touches no event; readers see
/// the old tables until its commit, the new ones after it. Returns the new
/// checkpoint.
pub(crate) async fn swap(
    store: &EventStore,
    projection: &dyn Projection,
    lease: &CheckpointLease,
    mut connection: PgConnection,
    mut cursor: LogCursor,
    batch_size: i64,
) -> Result<LogCursor, RuntimeError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Outside the swap's locks: whatever came during the fill (or
        // while the last attempt waited) is applied batch by batch.
        cursor = catch_up(store, projection, &mut connection, cursor, batch_size).await?;
        match swap_once(projection, lease, &mut connection, cursor).await {
            Ok(cursor) => {
                let _ = connection.close().await;
                report_rebuild_progress(store.pool(), projection.name(), None).await?;
                return Ok(cursor);
            }
            Err(RuntimeError::Store(error))
                if error.class() == FailureClass::Contention && attempt < SWAP_ATTEMPTS =>
            {
                tracing::info!(projection = projection.name(), attempt, %error,
                    "readers hold the old tables; trying the swap again");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn swap_once(
    projection: &dyn Projection,
    lease: &CheckpointLease,
    connection: &mut PgConnection,
    cursor: LogCursor,
) -> Result<LogCursor, RuntimeError> {
    let mut transaction = connection.begin().await?;
    sqlx::query(&format!("SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'"))
        .execute(&mut *transaction)
        .await?;
    // First: proves this worker still owns the subscription.
    lease.confirm(&mut *transaction).await?;
    // Events committed since the catch-up just before are not applied
    // here, under the locks: the live worker, paused now, resumes from
    // `cursor` and applies them to the new tables. The locks, the drop and
    // the move are `rebuild_swap`'s (SECURITY DEFINER, like
    // `rebuild_prepare`).
    sqlx::query("SELECT rebuild_swap($1, $2)")
        .bind(projection.name())
        .bind(projection.tables())
        .execute(&mut *transaction)
        .await?;
    // Everything up to `cursor` is now in the model, parked events included.
    super::parking::forget_all(&mut *transaction, projection.name()).await?;
    lease.reset(&mut *transaction, cursor).await?;
    transaction.commit().await?;
    Ok(cursor)
}
