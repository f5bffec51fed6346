//! Appending events: to one stream or atomically to several, with an
//! expected version per stream, idempotent by event id.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::postgres::{PgArguments, PgDatabaseError};
use sqlx::query::QueryAs;
use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

use crate::{CorrelationId, ExpectedVersion, LogCursor, NewEvent, StoreError};

/// Events for one stream, with what the append expects of its version.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    pub stream_id: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    pub fn new(
        stream_id: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        StreamAppend {
            stream_id: stream_id.into(),
            expected,
            events,
        }
    }
}

/// Where an appended event landed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppendedEvent {
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    pub position: i64,
    pub transaction_id: i64,
    pub recorded_at: DateTime<Utc>,
}

/// The outcome of a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// False when every event was already stored (an idempotent repeat):
    /// nothing was written.
    pub written: bool,
    /// Every event of the append, in log order.
    pub events: Vec<AppendedEvent>,
}

impl AppendResult {
    /// The stream's version after this append, if the append touched it.
    pub fn stream_version(&self, stream_id: &str) -> Option<i64> {
        self.events
            .iter()
            .filter(|event| event.stream_id == stream_id)
            .map(|event| event.stream_version)
            .max()
    }

    /// The log cursor of the append's last event.
    pub fn last_cursor(&self) -> Option<LogCursor> {
        self.events
            .iter()
            .map(|event| LogCursor {
                transaction_id: event.transaction_id,
                position: event.position,
            })
            .max()
    }
}

#[derive(sqlx::FromRow)]
struct AppendRow {
    #[sqlx(flatten)]
    event: AppendedEvent,
    written: bool,
}

/// The limits of one append: far above any real command, they stop a
/// runaway caller before PostgreSQL does.
const MAX_EVENTS_PER_APPEND: usize = 10_000;
const MAX_STREAM_ID_LEN: usize = 256;

pub(crate) async fn append(
    pool: &PgPool,
    appends: &[StreamAppend],
) -> Result<AppendResult, StoreError> {
    validate(appends)?;
    let arrays = AppendArrays::from(appends);
    if let Some(result) = create_stream(pool, appends, &arrays).await? {
        return Ok(result);
    }
    // The first try skips the idempotency check; a repeat whose
    // expectations still hold then meets the unique index on event_id, and
    // the next try compares the stored events. A concurrent writer of the
    // same event ids can commit between our check and our insert: the try
    // after that sees its rows. Past that, the race is reported as what it
    // is, a conflict on those event ids, never as a raw unique violation.
    let mut check_idempotency = false;
    for _ in 0..MAX_EVENT_ID_RACES {
        match run(pool, &arrays, check_idempotency).await {
            Err(StoreError::Database(sqlx::Error::Database(error)))
                if error.constraint() == Some(EVENT_ID_CONSTRAINT) =>
            {
                check_idempotency = true;
            }
            outcome => return outcome,
        }
    }
    Err(StoreError::PartialRepeat)
}

/// The unique index that makes an event id appear once in the log.
const EVENT_ID_CONSTRAINT: &str = "events_event_id_key";
/// Tries of an append that keeps losing a race on its event ids.
const MAX_EVENT_ID_RACES: usize = 3;

fn validate(appends: &[StreamAppend]) -> Result<(), StoreError> {
    let invalid = |message: String| Err(StoreError::InvalidRequest(message));
    if appends.is_empty() {
        return invalid("an append needs at least one stream".into());
    }
    let mut streams = HashSet::new();
    let mut event_ids = HashSet::new();
    let mut total = 0;
    for append in appends {
        let id = &append.stream_id;
        if id.is_empty() || id.len() > MAX_STREAM_ID_LEN {
            return invalid(format!(
                "a stream id is 1 to {MAX_STREAM_ID_LEN} bytes, got {} bytes",
                id.len()
            ));
        }
        if !streams.insert(id.as_str()) {
            return invalid(format!("stream {id} appears twice in one append"));
        }
        if let ExpectedVersion::Exact(version) = append.expected {
            if version < 0 {
                return invalid(format!("expected version {version} is negative"));
            }
        }
        for event in &append.events {
            if event.event_type.is_empty() {
                return invalid("an event type must not be empty".into());
            }
            if !event_ids.insert(event.event_id) {
                return invalid(format!("event id {} appears twice", event.event_id));
            }
        }
        total += append.events.len();
    }
    if total > MAX_EVENTS_PER_APPEND {
        return invalid(format!(
            "at most {MAX_EVENTS_PER_APPEND} events per append, got {total}"
        ));
    }
    Ok(())
}

/// The append as the column arrays `append_events` takes.
#[derive(Default)]
struct AppendArrays {
    streams: Vec<String>,
    expected_kinds: Vec<&'static str>,
    expected_versions: Vec<i64>,
    event_streams: Vec<i32>,
    event_offsets: Vec<i32>,
    event_ids: Vec<Uuid>,
    event_types: Vec<String>,
    schema_versions: Vec<i32>,
    data: Vec<serde_json::Value>,
    metadata: Vec<serde_json::Value>,
    correlation_ids: Vec<Option<CorrelationId>>,
    causation_ids: Vec<Option<Uuid>>,
}

impl AppendArrays {
    /// Binds the per-event columns, in the order both append statements
    /// take them: offset, id, type, schema version, data, metadata,
    /// correlation id, causation id.
    fn bind_event_columns<'q>(
        &'q self,
        query: QueryAs<'q, Postgres, AppendRow, PgArguments>,
    ) -> QueryAs<'q, Postgres, AppendRow, PgArguments> {
        query
            .bind(&self.event_offsets)
            .bind(&self.event_ids)
            .bind(&self.event_types)
            .bind(&self.schema_versions)
            .bind(&self.data)
            .bind(&self.metadata)
            .bind(&self.correlation_ids)
            .bind(&self.causation_ids)
    }
}

impl From<&[StreamAppend]> for AppendArrays {
    fn from(appends: &[StreamAppend]) -> Self {
        let mut arrays = AppendArrays::default();
        for (index, append) in (1_i32..).zip(appends) {
            let (kind, version) = append.expected.to_sql();
            arrays.streams.push(append.stream_id.clone());
            arrays.expected_kinds.push(kind);
            arrays.expected_versions.push(version);
            for (offset, event) in (1_i32..).zip(&append.events) {
                arrays.event_streams.push(index);
                arrays.event_offsets.push(offset);
                arrays.event_ids.push(event.event_id);
                arrays.event_types.push(event.event_type.clone());
                arrays.schema_versions.push(event.schema_version);
                arrays.data.push(event.data.clone());
                arrays
                    .metadata
                    .push(serde_json::to_value(&event.metadata).unwrap_or(serde_json::Value::Null));
                arrays
                    .correlation_ids
                    .push(event.metadata.correlation_id.clone());
                arrays.causation_ids.push(event.metadata.causation_id);
            }
        }
        arrays
    }
}

/// The common case of a new stream (a new order, a new payment): one plain
/// statement instead of the `append_events` call. Its versions are 1..n,
/// so it reads nothing, and the unique index on (stream_id,
/// stream_version) stands in for the version check. It takes the same
/// stream lock as `append_events`, before the transaction gets its id, so
/// the log keeps each stream in version order; and, like it, adds the log
/// epoch offset through `log_epoch_offset()`, whose shared lock and fresh
/// snapshot keep this statement's id behind a concurrent shift
/// (`log_epoch.rs`), although the statement's own snapshot may predate it.
///
/// `None` when the append is not a single new stream, or when the stream
/// or an event id exists already: the caller then takes the general path,
/// which tells a conflict from an idempotent repeat.
async fn create_stream(
    pool: &PgPool,
    appends: &[StreamAppend],
    arrays: &AppendArrays,
) -> Result<Option<AppendResult>, StoreError> {
    let [append] = appends else {
        return Ok(None);
    };
    // Without events, only the general path checks the expectation.
    if append.events.is_empty()
        || !matches!(
            append.expected,
            ExpectedVersion::NoStream | ExpectedVersion::Exact(0)
        )
    {
        return Ok(None);
    }
    let query = sqlx::query_as::<_, AppendRow>(
        "WITH head AS MATERIALIZED ( \
             SELECT log_epoch_offset() + pg_current_xact_id()::text::bigint AS transaction_id, \
                    clock_timestamp() AS recorded_at \
               FROM (SELECT pg_advisory_xact_lock(1, hashtext($1))) AS stream_lock \
         ) \
         INSERT INTO events (transaction_id, stream_id, stream_version, event_id, event_type, \
                             schema_version, data, metadata, correlation_id, causation_id, \
                             recorded_at) \
         SELECT head.transaction_id, $1, n.stream_version, n.event_id, n.event_type, \
                n.schema_version, n.data, n.metadata, n.correlation_id, n.causation_id, \
                head.recorded_at \
           FROM head, \
                unnest($2::int[], $3::uuid[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[], \
                       $8::text[], $9::uuid[]) \
                    AS n(stream_version, event_id, event_type, schema_version, data, metadata, \
                         correlation_id, causation_id) \
          ORDER BY n.stream_version \
         RETURNING event_id, stream_id, stream_version, position, transaction_id, recorded_at, \
                   true AS written",
    )
    .bind(&append.stream_id);
    let inserted = arrays.bind_event_columns(query).fetch_all(pool).await;
    match inserted {
        Ok(rows) => {
            let mut events: Vec<AppendedEvent> = rows.into_iter().map(|row| row.event).collect();
            events.sort_by_key(|event| event.position);
            Ok(Some(AppendResult {
                written: true,
                events,
            }))
        }
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// An append inside the caller's transaction, as its first write (see
/// `horizon.rs`: a transaction that already has an id when it takes its
/// stream locks could hide its events from live readers, so that is
/// refused). No retry: a unique violation aborts the caller's transaction,
/// and the caller decides what to do next.
pub(crate) async fn append_in(
    connection: &mut PgConnection,
    appends: &[StreamAppend],
) -> Result<AppendResult, StoreError> {
    validate(appends)?;
    let wrote_before: bool =
        sqlx::query_scalar("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
            .fetch_one(&mut *connection)
            .await?;
    if wrote_before {
        return Err(StoreError::InvalidRequest(
            "an append must be its transaction's first write (the log order needs its stream \
             locks taken before the transaction has an id)"
                .into(),
        ));
    }
    run(&mut *connection, &AppendArrays::from(appends), false).await
}

async fn run<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    arrays: &AppendArrays,
    check_repeat: bool,
) -> Result<AppendResult, StoreError> {
    let query = sqlx::query_as::<_, AppendRow>(
        "SELECT * FROM append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&arrays.streams)
    .bind(&arrays.expected_kinds)
    .bind(&arrays.expected_versions)
    .bind(&arrays.event_streams);
    let rows = arrays
        .bind_event_columns(query)
        .bind(check_repeat)
        .fetch_all(executor)
        .await
        .map_err(|error| map_append_error(error, arrays))?;
    let written = rows.iter().any(|row| row.written);
    Ok(AppendResult {
        written,
        events: rows.into_iter().map(|row| row.event).collect(),
    })
}

#[derive(Deserialize)]
struct VersionConflict {
    stream_id: String,
    actual_version: i64,
}

/// Turns the `append_events` SQLSTATEs into typed errors.
fn map_append_error(error: sqlx::Error, arrays: &AppendArrays) -> StoreError {
    let Some(database) = error.as_database_error() else {
        return error.into();
    };
    let postgres = database.try_downcast_ref::<PgDatabaseError>();
    let detail = postgres.and_then(PgDatabaseError::detail).unwrap_or("");
    match database.code().as_deref() {
        Some("OS001") => match serde_json::from_str::<VersionConflict>(detail) {
            Ok(conflict) => {
                let expected = arrays
                    .streams
                    .iter()
                    .position(|stream| *stream == conflict.stream_id)
                    .map(|index| {
                        expected_from_sql(
                            arrays.expected_kinds[index],
                            arrays.expected_versions[index],
                        )
                    })
                    .unwrap_or(ExpectedVersion::Any);
                StoreError::WrongExpectedVersion {
                    stream_id: conflict.stream_id,
                    expected,
                    actual: conflict.actual_version,
                }
            }
            Err(_) => StoreError::Database(error),
        },
        Some("OS002") => match detail.parse() {
            Ok(event_id) => StoreError::EventIdConflict { event_id },
            Err(_) => StoreError::Database(error),
        },
        Some("OS003") => StoreError::PartialRepeat,
        _ => error.into(),
    }
}

fn expected_from_sql(kind: &str, version: i64) -> ExpectedVersion {
    match kind {
        "no_stream" => ExpectedVersion::NoStream,
        "stream_exists" => ExpectedVersion::StreamExists,
        "exact" => ExpectedVersion::Exact(version),
        _ => ExpectedVersion::Any,
    }
}
