//! Reads of one stream: forward or backward from a version, and as of a
//! version, a global position or an instant.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::event::EVENT_COLUMNS;
use crate::{RecordedEvent, StoreError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direction {
    #[default]
    Forward,
    Backward,
}

/// A point in a stream's past: only events at or before it are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Up to and including this stream version.
    Version(i64),
    /// Up to and including this global position.
    Position(i64),
    /// Events recorded at or before this instant.
    Instant(DateTime<Utc>),
}

/// What part of a stream to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRead {
    /// Forward: the first version returned (at least). Backward: the
    /// highest version returned (at most); `None` starts at the end.
    pub from_version: Option<i64>,
    pub direction: Direction,
    pub limit: i64,
    pub as_of: Option<AsOf>,
}

impl Default for StreamRead {
    fn default() -> Self {
        StreamRead {
            from_version: None,
            direction: Direction::Forward,
            limit: 1000,
            as_of: None,
        }
    }
}

impl StreamRead {
    /// Events from `version` on, oldest first.
    pub fn forward_from(version: i64) -> Self {
        StreamRead {
            from_version: Some(version),
            ..StreamRead::default()
        }
    }

    /// The latest events, newest first.
    pub fn backward() -> Self {
        StreamRead {
            direction: Direction::Backward,
            ..StreamRead::default()
        }
    }

    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }

    pub fn as_of(mut self, as_of: AsOf) -> Self {
        self.as_of = Some(as_of);
        self
    }
}

pub(crate) async fn read_stream(
    pool: &PgPool,
    stream_id: &str,
    read: StreamRead,
) -> Result<Vec<RecordedEvent>, StoreError> {
    if read.limit < 0 {
        return Err(StoreError::InvalidRequest(format!(
            "limit must not be negative, got {}",
            read.limit
        )));
    }
    let (version_bound, order) = match read.direction {
        Direction::Forward => ("stream_version >= $2", "ASC"),
        Direction::Backward => ("stream_version <= $2", "DESC"),
    };
    let from_version = read.from_version.unwrap_or(match read.direction {
        Direction::Forward => 0,
        Direction::Backward => i64::MAX,
    });
    // Absent bounds become no-ops so that one statement serves every case.
    let (max_version, max_position, max_instant) = match read.as_of {
        None => (i64::MAX, i64::MAX, None),
        Some(AsOf::Version(version)) => (version, i64::MAX, None),
        Some(AsOf::Position(position)) => (i64::MAX, position, None),
        Some(AsOf::Instant(instant)) => (i64::MAX, i64::MAX, Some(instant)),
    };
    Ok(sqlx::query_as::<_, RecordedEvent>(&format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE stream_id = $1 AND {version_bound} \
           AND stream_version <= $4 AND position <= $5 \
           AND ($6::timestamptz IS NULL OR recorded_at <= $6) \
         ORDER BY stream_version {order} LIMIT $3"
    ))
    .bind(stream_id)
    .bind(from_version)
    .bind(read.limit)
    .bind(max_version)
    .bind(max_position)
    .bind(max_instant)
    .fetch_all(pool)
    .await?)
}

/// The stream's current version: its number of events (0 if none).
pub(crate) async fn stream_version(pool: &PgPool, stream_id: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(max(stream_version), 0)::bigint FROM events WHERE stream_id = $1",
    )
    .bind(stream_id)
    .fetch_one(pool)
    .await?)
}

/// The stream's version as of a point in its past.
pub(crate) async fn stream_version_as_of(
    pool: &PgPool,
    stream_id: &str,
    as_of: AsOf,
) -> Result<i64, StoreError> {
    let (max_version, max_position, max_instant) = match as_of {
        AsOf::Version(version) => (version, i64::MAX, None),
        AsOf::Position(position) => (i64::MAX, position, None),
        AsOf::Instant(instant) => (i64::MAX, i64::MAX, Some(instant)),
    };
    Ok(sqlx::query_scalar(
        "SELECT coalesce(max(stream_version), 0)::bigint FROM events \
         WHERE stream_id = $1 AND stream_version <= $2 AND position <= $3 \
           AND ($4::timestamptz IS NULL OR recorded_at <= $4)",
    )
    .bind(stream_id)
    .bind(max_version)
    .bind(max_position)
    .bind(max_instant)
    .fetch_one(pool)
    .await?)
}
