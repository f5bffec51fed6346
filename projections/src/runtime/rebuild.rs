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

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use event_store::{CheckpointLease, EventStore, FailureClass, LogCursor, RecordedEvent};
use sqlx::{Connection, PgConnection};

use super::error::RuntimeError;
use super::status::report_rebuild_progress;
use crate::Projection;

/// How long the swap waits for readers to let go of the old tables before
/// it tries again, as a multiple of the server's `deadlock_timeout`:
/// readers queue behind the swap's lock request, so this bounds how long
/// any of them waits. It must be longer than `deadlock_timeout`: an
/// autovacuum of a table (likely on a freshly filled one) gives its lock
/// up only when the deadlock check, run after `deadlock_timeout`, cancels
/// it, and with equal timeouts the lock timeout is raised first, so every
/// attempt failed for as long as the autovacuum ran (a bench run of the
/// code with a 1 s timeout, the default `deadlock_timeout`, failed so:
/// ten attempts over 15 s right after a 10^6-row fill).
const SWAP_LOCK_TIMEOUT_DEADLOCK_TIMEOUTS: i64 = 2;
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
///
/// The batches go through the projection's [`crate::RebuildSession`]s (one
/// per connection), which may hold rows in memory from batch to batch;
/// each is finished, and what it held written, before this returns.
///
/// A projection whose rows each follow one stream
/// ([`Projection::rows_per_stream`]) is applied over [`PARTITIONS`]
/// connections, each owning the streams that hash to it: while one
/// connection's server process writes a batch, the other partition decodes
/// and folds its own, and the log is read ahead by a third task. Each
/// stream's events still reach its partition in log order.
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
    let partitions = if projection.rows_per_stream() {
        PARTITIONS
    } else {
        1
    };
    // A fill batch needs no flush of its own: a crash before the swap
    // throws the new tables away (the next rebuild prepares them afresh),
    // and the swap's commit, made with the usual setting, flushes the WAL
    // of every batch before it.
    sqlx::query("SET synchronous_commit = off")
        .execute(&mut *connection)
        .await?;
    let mut others = more_connections(store, connection, partitions - 1).await?;
    let batch_len = usize::try_from(batch_size).unwrap_or(usize::MAX).max(1);
    let mut senders = Vec::with_capacity(partitions);
    let mut receivers = Vec::with_capacity(partitions);
    for _ in 0..partitions {
        // Per partition at most three batches are in memory: one being
        // filled, one waiting, one being applied.
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        senders.push(sender);
        receivers.push(receiver);
    }
    let reader = tokio::spawn(read_ahead(
        store.clone(),
        projection.category().to_owned(),
        from,
        batch_size,
        batch_len,
        senders,
    ));
    let progress = Progress::new(total);
    let connections = std::iter::once(&mut *connection).chain(others.iter_mut());
    let applied =
        futures::future::try_join_all(connections.zip(receivers).map(|(connection, batches)| {
            apply_partition(store, projection, connection, batches, &progress)
        }))
        .await;
    for other in others {
        let _ = other.close().await;
    }
    if let Err(error) = applied {
        reader.abort();
        return Err(error);
    }
    let cursor = reader.await.map_err(|error| {
        RuntimeError::Rebuild(crate::HandlerError::new(format!(
            "the rebuild's log reader stopped: {error}"
        )))
    })??;
    progress.report(store, projection).await?;
    sqlx::query("RESET synchronous_commit")
        .execute(&mut *connection)
        .await?;
    Ok(cursor.unwrap_or(from))
}

/// How many connections apply a rebuild whose rows follow streams. Two
/// cores are what this was measured on (see `benches/README.md`).
const PARTITIONS: usize = 2;

/// How often the progress is written, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Opens `count` more connections to the rebuild's tables: the same
/// `search_path` and `synchronous_commit` as `connection`'s.
async fn more_connections(
    store: &EventStore,
    connection: &mut PgConnection,
    count: usize,
) -> Result<Vec<PgConnection>, RuntimeError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let (search_path, synchronous_commit): (String, String) = sqlx::query_as(
        "SELECT current_setting('search_path'), current_setting('synchronous_commit')",
    )
    .fetch_one(&mut *connection)
    .await?;
    let mut connections = Vec::with_capacity(count);
    for _ in 0..count {
        let mut other = PgConnection::connect_with(&store.pool().connect_options()).await?;
        sqlx::query(
            "SELECT set_config('search_path', $1, false), \
                    set_config('synchronous_commit', $2, false)",
        )
        .bind(&search_path)
        .bind(&synchronous_commit)
        .execute(&mut other)
        .await?;
        connections.push(other);
    }
    Ok(connections)
}

/// Applies one partition's batches through one rebuild session, one
/// transaction each, then finishes the session in one more.
async fn apply_partition(
    store: &EventStore,
    projection: &dyn Projection,
    connection: &mut PgConnection,
    mut batches: tokio::sync::mpsc::Receiver<Vec<RecordedEvent>>,
    progress: &Progress,
) -> Result<(), RuntimeError> {
    let mut session = projection.rebuild_session();
    while let Some(batch) = batches.recv().await {
        let events = batch.len();
        let mut transaction = connection.begin().await?;
        session
            .apply_batch(&mut transaction, batch)
            .await
            .map_err(RuntimeError::Rebuild)?;
        transaction.commit().await?;
        progress.add(events);
        if progress.due() {
            progress.report(store, projection).await?;
        }
    }
    let mut transaction = connection.begin().await?;
    session
        .finish(&mut transaction)
        .await
        .map_err(RuntimeError::Rebuild)?;
    transaction.commit().await?;
    Ok(())
}

/// Events applied so far, and when that was last written.
struct Progress {
    total: i64,
    done: AtomicI64,
    reported: Mutex<Instant>,
}

impl Progress {
    fn new(total: i64) -> Self {
        Progress {
            total,
            done: AtomicI64::new(0),
            // The first batch's progress is written at once: a rebuild
            // shorter than PROGRESS_EVERY would otherwise show none at all.
            reported: Mutex::new(
                Instant::now()
                    .checked_sub(PROGRESS_EVERY)
                    .unwrap_or_else(Instant::now),
            ),
        }
    }

    fn add(&self, events: usize) {
        self.done
            .fetch_add(i64::try_from(events).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Whether it is time to write the progress again (and if so, it
    /// counts as written).
    fn due(&self) -> bool {
        let Ok(mut reported) = self.reported.lock() else {
            return false;
        };
        if reported.elapsed() < PROGRESS_EVERY {
            return false;
        }
        *reported = Instant::now();
        true
    }

    async fn report(
        &self,
        store: &EventStore,
        projection: &dyn Projection,
    ) -> Result<(), RuntimeError> {
        let done = self.done.load(Ordering::Relaxed);
        report_rebuild_progress(
            store.pool(),
            projection.name(),
            Some((done, self.total.max(done))),
        )
        .await?;
        Ok(())
    }
}

/// Reads the category's events after `from` until the log's visible end
/// (or until no partition listens), and sends each partition its streams'
/// events in batches of `batch_len`. Returns the last event's cursor.
async fn read_ahead(
    store: EventStore,
    category: String,
    from: LogCursor,
    page_size: i64,
    batch_len: usize,
    partitions: Vec<tokio::sync::mpsc::Sender<Vec<RecordedEvent>>>,
) -> Result<Option<LogCursor>, RuntimeError> {
    let mut cursor = from;
    let mut last = None;
    let mut filling: Vec<Vec<RecordedEvent>> = partitions.iter().map(|_| Vec::new()).collect();
    loop {
        let page = store.read_category(&category, cursor, page_size).await?;
        let Some(end) = page.last().map(RecordedEvent::cursor) else {
            break;
        };
        cursor = end;
        last = Some(end);
        for event in page {
            let partition = partition_of(&event.stream_id, partitions.len());
            filling[partition].push(event);
            if filling[partition].len() >= batch_len {
                let batch = std::mem::take(&mut filling[partition]);
                if partitions[partition].send(batch).await.is_err() {
                    return Ok(last);
                }
            }
        }
    }
    for (batch, partition) in filling.into_iter().zip(&partitions) {
        if !batch.is_empty() && partition.send(batch).await.is_err() {
            break;
        }
    }
    Ok(last)
}

/// The partition of a stream: a hash of its id, the same on every call.
fn partition_of(stream_id: &str, partitions: usize) -> usize {
    if partitions <= 1 {
        return 0;
    }
    let mut hasher = std::hash::DefaultHasher::new();
    stream_id.hash(&mut hasher);
    // The remainder is below `partitions`, a usize.
    usize::try_from(hasher.finish() % partitions as u64).unwrap_or(0)
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
    sqlx::query(
        "SELECT set_config('lock_timeout', \
             (extract(epoch FROM current_setting('deadlock_timeout')::interval) * 1000 * $1) \
                 ::bigint::text, true)",
    )
    .bind(SWAP_LOCK_TIMEOUT_DEADLOCK_TIMEOUTS)
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
