//! The append horizon: the transaction id below which no event can appear
//! any more, and the one task per store that keeps it for every reader.
//!
//! `log.rs` orders the log by `(transaction_id, position)` and, for a
//! one-off read, hides every transaction at or above the oldest one still
//! running anywhere in the cluster (`pg_snapshot_xmin`). That is safe but
//! blind: the oldest running transaction is often one that will never add
//! an event (a projection batch, a checkpoint, a lease), so a live reader
//! that stopped at it cannot wait for a wake-up; it used to re-query every
//! few milliseconds until that transaction ended, and under load some
//! transaction always is running.
//!
//! Live readers use a sharper horizon instead: the oldest running
//! transaction *that appends*. Every append takes a stream lock
//! (`pg_advisory_xact_lock(1, …)`) before it writes anything, so before its
//! transaction gets an id; the log epoch shift holds class 3. Then, with
//! `S` the snapshot of a statement that reads `pg_locks` after taking `S`:
//!
//! *H = the least of `xmax(S)` and the ids of transactions running in `S`
//! that hold an advisory lock of class 1 or 3 when `pg_locks` is read, or
//! whose id is not yet locked then (see [`append_horizon`]).*
//!
//! Claim: every statement whose snapshot is taken after that one ends sees
//! every event that will ever have a transaction id below H. An appender
//! with an id below `xmax(S)` got it before `S`, so it took its stream lock
//! before `S` too. A transaction releases its locks only after its commit
//! became visible. So at the time `pg_locks` is read it is either finished
//! and visible (its events are seen), or still holding the lock, and then
//! running in `S` as well, so its id is one of those H is the least of:
//! it is not below H. A transaction that appends later gets a later id, at
//! least `xmax(S)`.
//!
//! The argument needs one rule from writers, which the append paths keep:
//! *a transaction takes its stream lock before its first write*. A
//! transaction that wrote something else first, then appended, could hold
//! an id below H without holding a lock when `pg_locks` was read.
//!
//! When every appender below H is done, a reader that has read everything
//! below H has nothing to do until H moves, and H moves only when some
//! transaction got an id, which for an appender means it will commit (and
//! send a wake-up, `wakeups.rs`) or roll back (the append path then sends
//! one too). So the watcher below recomputes H at each wake-up, and on a
//! slow timer as a safety net, and readers wait for it: no polling.
//!
//! Transaction ids are stored with the log epoch offset added
//! (`log_epoch.rs`); H carries the offset it was computed with, and a read
//! below H returns nothing if the offset has changed since (a shift holds
//! the class-3 lock with an id, so H stays below it while it runs).

use std::sync::OnceLock;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::StoreError;

/// The transaction id (with the log epoch offset added) below which the
/// log is complete, as of one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppendHorizon {
    pub(crate) transaction_id: i64,
    pub(crate) epoch_offset: i64,
}

/// The append horizon now (see the module comment for why it is safe).
/// `pg_current_snapshot()` is the statement's own snapshot, taken before
/// the materialised read of `pg_locks`: the order the argument needs.
///
/// A transaction's id is in the snapshot a moment before the lock on that
/// id is in the lock table (PostgreSQL assigns the id, then locks it), so
/// an appender caught in that moment holds its stream lock without a
/// visible id. Every running id of the snapshot that has no lock row yet
/// therefore counts as an appender too: without this, a descheduled
/// appender was passed by under load (one order in about 500 in the
/// load test never reached `paid`: its `PaymentCaptured` was skipped).
pub(crate) async fn append_horizon(pool: &PgPool) -> Result<AppendHorizon, StoreError> {
    let (transaction_id, epoch_offset): (i64, i64) = sqlx::query_as(
        "WITH locks AS MATERIALIZED ( \
             SELECT locktype, classid, virtualtransaction, transactionid, mode, granted \
               FROM pg_locks), \
         xid_locks AS ( \
             SELECT virtualtransaction, transactionid::text::bigint AS xid32 FROM locks \
              WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted), \
         appending AS ( \
             SELECT held.xid32 \
               FROM locks AS lock JOIN xid_locks AS held USING (virtualtransaction) \
              WHERE lock.locktype = 'advisory' AND lock.classid IN (1, 3) AND lock.granted), \
         snapshot AS (SELECT pg_current_snapshot() AS s) \
         SELECT least( \
                  pg_snapshot_xmax(s)::text::bigint, \
                  (SELECT min(x::text::bigint) FROM pg_snapshot_xip(s) AS x \
                    WHERE x::text::bigint % 4294967296 IN (SELECT xid32 FROM appending) \
                       OR x::text::bigint % 4294967296 NOT IN (SELECT xid32 FROM xid_locks)) \
                ) + epoch.transaction_id_offset, \
                epoch.transaction_id_offset \
           FROM snapshot, log_epoch AS epoch",
    )
    .fetch_one(pool)
    .await?;
    Ok(AppendHorizon {
        transaction_id,
        epoch_offset,
    })
}

/// Whether any event lies in `[from, until)` of transaction ids: run after
/// [`append_horizon`] returned `until`, so the answer is final.
async fn events_between(
    pool: &PgPool,
    from: i64,
    until: AppendHorizon,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM events WHERE transaction_id >= $1 AND transaction_id < $2)",
    )
    .bind(from)
    .bind(until.transaction_id)
    .fetch_one(pool)
    .await?)
}

/// The safety net: a wake-up can be lost (a process that appended died
/// before it could notify), so the horizon is also recomputed when a
/// reader has heard nothing for its poll interval, but at most this often:
/// an idle service then costs one horizon query (and a range check when
/// other transactions moved it) every 5 s however many readers it has;
/// at 1 s, seven readers made it 0.6 queries a second. Wake-ups never wait
/// for it; only a lost one is noticed up to this much later.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);
const ERROR_RETRY_FIRST: Duration = Duration::from_millis(50);
const ERROR_RETRY_MAX: Duration = Duration::from_secs(5);

/// One task per store that keeps the append horizon for all its readers.
pub(crate) struct LogWatcher {
    horizon: watch::Sender<Option<AppendHorizon>>,
    refresh: std::sync::Arc<Notify>,
    task: OnceLock<JoinHandle<()>>,
}

impl LogWatcher {
    pub(crate) fn new() -> Self {
        LogWatcher {
            horizon: watch::Sender::new(None),
            refresh: std::sync::Arc::new(Notify::new()),
            task: OnceLock::new(),
        }
    }

    /// A receiver of the horizon, which changes when events below a new
    /// horizon may be readable; starts the watcher on first use.
    pub(crate) fn subscribe(
        &self,
        pool: &PgPool,
        wakeups: watch::Receiver<u64>,
    ) -> watch::Receiver<Option<AppendHorizon>> {
        self.task.get_or_init(|| {
            tokio::spawn(watch_log(
                pool.clone(),
                wakeups,
                self.horizon.clone(),
                self.refresh.clone(),
            ))
        });
        self.horizon.subscribe()
    }

    /// Asks for the horizon to be recomputed although no wake-up came.
    pub(crate) fn refresh(&self) {
        self.refresh.notify_one();
    }
}

impl Drop for LogWatcher {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

async fn watch_log(
    pool: PgPool,
    mut wakeups: watch::Receiver<u64>,
    horizon: watch::Sender<Option<AppendHorizon>>,
    refresh: std::sync::Arc<Notify>,
) {
    let mut error_delay = ERROR_RETRY_FIRST;
    loop {
        // Seen before computing: a wake-up during the query is not lost.
        wakeups.borrow_and_update();
        let computed_at = tokio::time::Instant::now();
        match advance(&pool, &horizon).await {
            Ok(()) => error_delay = ERROR_RETRY_FIRST,
            Err(error) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%error, "the log watcher cannot read the append horizon; retrying");
                tokio::time::sleep(error_delay).await;
                error_delay = (error_delay * 2).min(ERROR_RETRY_MAX);
                continue;
            }
        }
        tokio::select! {
            changed = wakeups.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = refresh.notified() => {
                tokio::select! {
                    changed = wakeups.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    _ = tokio::time::sleep_until(computed_at + MIN_REFRESH_INTERVAL) => {}
                }
            }
        }
    }
}

/// Recomputes the horizon and publishes it; readers are woken only if
/// events lie between the old horizon and the new one (an idle service
/// whose other transactions move `xmax` wakes nobody).
async fn advance(
    pool: &PgPool,
    horizon: &watch::Sender<Option<AppendHorizon>>,
) -> Result<(), StoreError> {
    let next = append_horizon(pool).await?;
    let previous = *horizon.borrow();
    let wake = match previous {
        None => true,
        Some(previous) if previous.epoch_offset != next.epoch_offset => true,
        Some(previous) if next.transaction_id <= previous.transaction_id => false,
        Some(previous) => events_between(pool, previous.transaction_id, next).await?,
    };
    if wake {
        horizon.send_replace(Some(next));
    } else if previous.is_some_and(|previous| next.transaction_id > previous.transaction_id) {
        // Nothing new below it: readers may use it, need not be woken.
        horizon.send_if_modified(|current| {
            *current = Some(next);
            false
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, PgConnection};
    use test_support::TestDatabase;

    use super::*;
    use crate::log::{read_after, read_below};
    use crate::{
        EventStore, ExpectedVersion, LogCursor, LogFilter, NewEvent, StoreOptions, MIGRATOR,
    };

    async fn append(store: &EventStore, stream: &str) {
        store
            .append_to_stream(
                stream,
                ExpectedVersion::Any,
                vec![NewEvent::new("Something", serde_json::json!({}))],
            )
            .await
            .expect("append");
    }

    async fn below_horizon(store: &EventStore) -> usize {
        let horizon = append_horizon(store.pool()).await.expect("horizon");
        read_below(
            store.pool(),
            LogCursor::START,
            &LogFilter::All,
            100,
            horizon,
        )
        .await
        .expect("read")
        .len()
    }

    /// A transaction that wrote something (so has an id) but appends
    /// nothing holds back the cluster-wide horizon, not the append horizon.
    #[tokio::test]
    async fn only_open_appending_transactions_hold_the_append_horizon_back() {
        let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
        let store = EventStore::connect(database.url(), &StoreOptions::default())
            .await
            .expect("connect");
        append(&store, "s-1").await;

        let mut other_writer = PgConnection::connect(database.url())
            .await
            .expect("connect");
        let mut writing = other_writer.begin().await.expect("begin");
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(&mut *writing)
            .await
            .expect("take an id");
        append(&store, "s-2").await;
        let conservative = read_after(store.pool(), LogCursor::START, &LogFilter::All, 100)
            .await
            .expect("read");
        assert_eq!(conservative.len(), 1, "the xmin horizon waits for it");
        assert_eq!(
            below_horizon(&store).await,
            2,
            "the append horizon does not"
        );

        // An appender: stream lock first, then an id, as the append paths do.
        let mut appender = PgConnection::connect(database.url())
            .await
            .expect("connect");
        let mut appending = appender.begin().await.expect("begin");
        sqlx::query("SELECT pg_advisory_xact_lock(1, hashtext('s-3'))")
            .execute(&mut *appending)
            .await
            .expect("lock");
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(&mut *appending)
            .await
            .expect("take an id");
        append(&store, "s-4").await;
        assert_eq!(
            below_horizon(&store).await,
            2,
            "an event committed after an open appender took its id waits for it"
        );
        appending.rollback().await.expect("rollback");
        assert_eq!(below_horizon(&store).await, 3);
        writing.rollback().await.expect("rollback");
    }

    #[tokio::test]
    async fn a_horizon_from_before_a_log_epoch_shift_reads_nothing() {
        let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
        let store = EventStore::connect(database.url(), &StoreOptions::default())
            .await
            .expect("connect");
        append(&store, "s-1").await;
        let horizon = append_horizon(store.pool()).await.expect("horizon");
        let stale = AppendHorizon {
            epoch_offset: horizon.epoch_offset + 1,
            ..horizon
        };
        let read = read_below(store.pool(), LogCursor::START, &LogFilter::All, 100, stale)
            .await
            .expect("read");
        assert!(read.is_empty());
    }
}
