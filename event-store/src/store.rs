//! [`EventStore`]: the handle every reader and writer of the log uses.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::horizon::{AppendHorizon, LogWatcher};
use crate::wakeups::Wakeups;
use crate::{
    append, checkpoints, log, log_epoch, snapshots, stream, subscribe, AppendResult, AsOf,
    CheckpointLayout, CheckpointLease, CorrelationId, ExpectedVersion, FlowPage, LogCursor,
    LogEpochShift, LogFilter, NewEvent, RecordedEvent, Snapshot, StoreError, StreamAppend,
    StreamRead, SubscribeOptions, Subscription,
};

/// How to connect.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// A transaction idle this long is ended by the server, so a stuck
    /// client cannot hold back every reader of the log (see `log.rs`).
    pub idle_in_transaction_timeout: Duration,
    pub acquire_timeout: Duration,
    /// A statement running longer than this is cancelled by the server
    /// ([`StoreError::Timeout`]), so a stuck query or lock wait holds a
    /// connection for a bounded time. Zero means no limit. Migrations run
    /// without it (see [`EventStore::migrate`]).
    pub statement_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 20,
            idle_in_transaction_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// The session settings of every connection the store opens, whatever the
/// server's, database's or role's defaults: sent in the start-up packet,
/// they override `ALTER DATABASE/ROLE ... SET` (only a `SET` in the
/// session beats them). The append path needs READ COMMITTED: under
/// REPEATABLE READ its version read after the stream lock would use a
/// snapshot from before the lock, and concurrent appends would fail with
/// unique violations instead of version conflicts.
fn session_settings(options: &StoreOptions) -> [(&'static str, String); 3] {
    [
        (
            "idle_in_transaction_session_timeout",
            options.idle_in_transaction_timeout.as_millis().to_string(),
        ),
        (
            "statement_timeout",
            options.statement_timeout.as_millis().to_string(),
        ),
        // A space in a start-up option is escaped with a backslash.
        ("default_transaction_isolation", r"read\ committed".into()),
    ]
}

/// A cheap-to-clone handle on the event store.
#[derive(Clone)]
pub struct EventStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    wakeups: Wakeups,
    log_watcher: LogWatcher,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore").finish_non_exhaustive()
    }
}

impl EventStore {
    /// Connects to the database at `url` (which must be migrated: see
    /// [`EventStore::migrate`]).
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<EventStore, StoreError> {
        let connect_options: PgConnectOptions = url
            .parse::<PgConnectOptions>()?
            .options(session_settings(options))
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect_options)
            .await?;
        // Before anything appends: a database restored into another cluster
        // gets its log order back here (see `log_epoch.rs`).
        log_epoch::ensure_if_migrated(&pool).await?;
        Ok(EventStore::from_pool(pool))
    }

    /// Wraps an existing pool.
    pub fn from_pool(pool: PgPool) -> EventStore {
        EventStore {
            inner: Arc::new(Inner {
                wakeups: Wakeups::new(pool.clone()),
                log_watcher: LogWatcher::new(),
                pool,
            }),
        }
    }

    /// Applies every pending migration, on a connection of its own without
    /// the statement timeout: a migration may rewrite the whole log (the
    /// timeout guards requests, not schema changes). The connection is
    /// closed afterwards rather than returned to the pool with the limit
    /// lifted.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let mut connection = self.inner.pool.acquire().await?;
        connection.close_on_drop();
        sqlx::query("SET statement_timeout = 0")
            .execute(&mut *connection)
            .await?;
        crate::MIGRATOR.run(&mut *connection).await
    }

    /// Makes every event appended from now on sort after every stored one
    /// if stored transaction ids are ahead of this cluster's (a database
    /// restored from a dump into another cluster); returns the shift when it
    /// made one. [`EventStore::connect`] already does this; call it again on
    /// a store built [`from_pool`](EventStore::from_pool).
    pub async fn ensure_log_order(&self) -> Result<Option<LogEpochShift>, StoreError> {
        log_epoch::ensure(&self.inner.pool).await
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The append horizon as the store's one log watcher keeps it for
    /// every live reader (`horizon.rs`).
    pub(crate) fn horizons(&self) -> tokio::sync::watch::Receiver<Option<AppendHorizon>> {
        self.inner
            .log_watcher
            .subscribe(&self.inner.pool, self.inner.wakeups.subscribe())
    }

    pub(crate) fn refresh_horizon(&self) {
        self.inner.log_watcher.refresh();
    }

    /// Appends `events` to one stream if its version meets `expected`.
    #[tracing::instrument(skip(self, events), fields(events = events.len()))]
    pub async fn append_to_stream(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.append_to_streams(&[StreamAppend::new(stream_id, expected, events)])
            .await
    }

    /// Appends to several streams in one transaction: all or nothing. Each
    /// stream's expectation is checked; one failing aborts the whole append.
    #[tracing::instrument(skip_all, fields(streams = appends.len()))]
    pub async fn append_to_streams(
        &self,
        appends: &[StreamAppend],
    ) -> Result<AppendResult, StoreError> {
        let result = append::append(&self.inner.pool, appends).await;
        // Also after a failure that may have come after the insert began
        // (so with a transaction id): it held readers' horizon back, and
        // they wait for a wake-up to look again (`horizon.rs`). A version
        // check or a refused request fails before anything is written.
        let wake = match &result {
            Ok(appended) => appended.written,
            Err(StoreError::WrongExpectedVersion { .. } | StoreError::InvalidRequest(_)) => false,
            Err(_) => true,
        };
        if wake {
            self.inner.wakeups.appended();
        }
        result
    }

    /// Appends inside the caller's transaction `connection`, which must
    /// not have written anything yet (the append is its first write, so the
    /// log order holds: `horizon.rs`); more writes may follow it, such as a
    /// subscription's checkpoint. All or nothing with the rest of that
    /// transaction; an event id stored already aborts it (no retry here).
    /// Call [`EventStore::wake_readers`] after the commit.
    pub async fn append_in_transaction(
        &self,
        connection: &mut sqlx::PgConnection,
        appends: &[StreamAppend],
    ) -> Result<AppendResult, StoreError> {
        append::append_in(connection, appends).await
    }

    /// Tells live readers, here and in other processes, that events may
    /// have been committed: after [`EventStore::append_in_transaction`]'s
    /// transaction ends, committed or not.
    pub fn wake_readers(&self) {
        self.inner.wakeups.appended();
    }

    /// Reads part of one stream. Sees every committed append at once
    /// (unlike log reads, which wait for the visibility horizon).
    pub async fn read_stream(
        &self,
        stream_id: &str,
        read: StreamRead,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        stream::read_stream(&self.inner.pool, stream_id, read).await
    }

    /// The stream's current version (0 when it has no events).
    pub async fn stream_version(&self, stream_id: &str) -> Result<i64, StoreError> {
        stream::stream_version(&self.inner.pool, stream_id).await
    }

    /// The stream's version as of a point in its past.
    pub async fn stream_version_as_of(
        &self,
        stream_id: &str,
        as_of: AsOf,
    ) -> Result<i64, StoreError> {
        stream::stream_version_as_of(&self.inner.pool, stream_id, as_of).await
    }

    /// The event at `cursor`, which the caller was handed before (so it
    /// is committed): visible whatever transaction is still open.
    pub async fn read_event_at(
        &self,
        cursor: LogCursor,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        log::read_at(&self.inner.pool, cursor).await
    }

    /// Up to `limit` events after `after` in log order: gap-free, so
    /// paging by the last event's cursor never skips or repeats one.
    pub async fn read_log(
        &self,
        after: LogCursor,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        log::read_after(&self.inner.pool, after, &LogFilter::All, limit).await
    }

    /// Like [`EventStore::read_log`], for the streams of one category
    /// (`order` reads `order-*`).
    pub async fn read_category(
        &self,
        category: &str,
        after: LogCursor,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        log::read_after(
            &self.inner.pool,
            after,
            &LogFilter::Category(category.to_owned()),
            limit,
        )
        .await
    }

    /// Every event of one correlation id (one request's whole flow), in
    /// log order.
    pub async fn read_correlation(
        &self,
        correlation_id: &CorrelationId,
        after: LogCursor,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        log::read_correlation(&self.inner.pool, correlation_id, after, limit).await
    }

    /// Whether readers can see events after `after` that match `filter`:
    /// false once a subscriber from `after` has caught up.
    pub async fn has_events_after(
        &self,
        after: LogCursor,
        filter: &LogFilter,
    ) -> Result<bool, StoreError> {
        Ok(!log::read_after(&self.inner.pool, after, filter, 1)
            .await?
            .is_empty())
    }

    /// The cursor of the last event readers can see.
    pub async fn head(&self) -> Result<LogCursor, StoreError> {
        log::head(&self.inner.pool).await
    }

    /// Where a reader holding the bare position `position` resumes so that
    /// it misses neither an event after the one at `position` nor one of a
    /// greater position, whatever their order in the log (see `log.rs`).
    pub async fn cursor_at(&self, position: i64) -> Result<LogCursor, StoreError> {
        log::cursor_at(&self.inner.pool, position).await
    }

    /// A page of the flow of a stream: every event sharing a correlation id
    /// with one of the stream's, in log order (see `log::read_flow`).
    pub async fn read_flow(
        &self,
        stream_id: &str,
        after: LogCursor,
        limit: i64,
    ) -> Result<FlowPage, StoreError> {
        log::read_flow(&self.inner.pool, stream_id, after, limit).await
    }

    /// Every event after `from` that matches the filter, in log order, then
    /// every new one as it is committed. The stream never ends on its own;
    /// drop it to stop. Database failures are retried inside.
    pub fn subscribe(&self, from: LogCursor, options: SubscribeOptions) -> Subscription {
        subscribe::subscribe(self.clone(), from, options)
    }

    pub async fn load_checkpoint(&self, name: &str) -> Result<Option<LogCursor>, StoreError> {
        checkpoints::load(&self.inner.pool, name).await
    }

    /// Moves a checkpoint forward (never back); returns whether it moved.
    /// To save it in the same transaction as other writes, use
    /// [`save_checkpoint`](crate::save_checkpoint) with that transaction.
    pub async fn save_checkpoint(&self, name: &str, cursor: LogCursor) -> Result<bool, StoreError> {
        checkpoints::save(&self.inner.pool, name, cursor).await
    }

    /// Moves a checkpoint anywhere, backward included.
    pub async fn reset_checkpoint(&self, name: &str, cursor: LogCursor) -> Result<(), StoreError> {
        checkpoints::reset(&self.inner.pool, name, cursor).await
    }

    /// Becomes the newest owner of `name`'s checkpoint: every lease taken
    /// before is fenced off from now on. Returns the lease and where the
    /// checkpoint is.
    pub async fn take_checkpoint_lease(
        &self,
        name: &str,
    ) -> Result<(CheckpointLease, LogCursor), StoreError> {
        // A subscription that is not split: a layout of its own name.
        let members = [name.to_owned()];
        let layout = CheckpointLayout {
            group: name,
            members: &members,
        };
        checkpoints::take_lease_in_layout(&self.inner.pool, name, layout).await
    }

    /// Like [`EventStore::take_checkpoint_lease`], for `name`, one member
    /// of a subscription's consumer-group `layout`: fences the group's
    /// other layouts too, and starts from where they got to when they are
    /// ahead of this checkpoint (see `checkpoints.rs`).
    pub async fn take_checkpoint_lease_in_layout(
        &self,
        name: &str,
        layout: CheckpointLayout<'_>,
    ) -> Result<(CheckpointLease, LogCursor), StoreError> {
        checkpoints::take_lease_in_layout(&self.inner.pool, name, layout).await
    }

    /// The owner epoch of `name`'s newest lease (0 if never leased): a
    /// lease with a lower epoch is fenced.
    pub async fn checkpoint_epoch(&self, name: &str) -> Result<i64, StoreError> {
        checkpoints::current_epoch(&self.inner.pool, name).await
    }

    /// How many visible events matching `filter` lie after `after` and up
    /// to `until`: a subscriber's lag.
    pub async fn count_between(
        &self,
        after: LogCursor,
        until: LogCursor,
        filter: &LogFilter,
    ) -> Result<i64, StoreError> {
        log::count_between(&self.inner.pool, after, until, filter).await
    }

    /// The versions of [`MIGRATOR`](crate::MIGRATOR)'s migrations not yet
    /// applied to this database (all of them if it was never migrated).
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.inner.pool)
                .await
            {
                Ok(applied) => applied,
                // 42P01: no migration table yet.
                Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42P01") => {
                    Vec::new()
                }
                Err(error) => return Err(error.into()),
            };
        Ok(crate::MIGRATOR
            .iter()
            .map(|migration| migration.version)
            .filter(|version| !applied.contains(version))
            .collect())
    }

    pub async fn load_snapshot(&self, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        snapshots::load(&self.inner.pool, stream_id).await
    }

    pub async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        snapshots::save(&self.inner.pool, snapshot).await
    }
}
