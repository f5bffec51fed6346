//! The global log: its order, and gap-free reads of it.
//!
//! Positions come from a sequence, so they are taken in one order and
//! committed in another: with concurrent writers, the transaction holding
//! position 5 may commit after the one holding position 6. A reader that
//! checkpointed 6 would then never see 5. Instead, readers see events in
//! `(transaction_id, position)` order and only those of transactions older
//! than the oldest one still running (`pg_snapshot_xmin`). Every transaction
//! that can still commit has an id at or above that horizon, so it sorts
//! after everything already handed out: a checkpoint never passes an event
//! that is yet to appear. The append function takes its stream locks before
//! the transaction gets an id, so a stream's events are also in version
//! order within this order.
//!
//! The cost: one long-running writing transaction anywhere in the cluster
//! holds readers back (not writers) until it ends; the store's connections
//! set `idle_in_transaction_session_timeout` so a stuck one cannot do so
//! for long.
//!
//! Transaction ids belong to the cluster: a database restored into another
//! one would break this order, so every id is stored, and the horizon
//! compared, with a log epoch offset added (`log_epoch.rs`).

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::event::EVENT_COLUMNS;
use crate::horizon::AppendHorizon;
use crate::{RecordedEvent, StoreError};

/// A place in the global log: the `(transaction_id, position)` of the last
/// event handled. Ordered as readers see the log.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogCursor {
    pub transaction_id: i64,
    pub position: i64,
}

impl LogCursor {
    /// Before the first event.
    pub const START: LogCursor = LogCursor {
        transaction_id: 0,
        position: 0,
    };
}

/// Which events of the log a read or subscription wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LogFilter {
    #[default]
    All,
    /// Streams whose id starts with `{category}-`.
    Category(String),
    /// One member's share of a subscription split into a consumer group:
    /// the streams of `category` (of every category when `None`) whose id
    /// falls in `partition`.
    Partition {
        category: Option<String>,
        partition: Partition,
    },
}

impl LogFilter {
    /// This filter's share of the log for one member of a consumer group.
    pub fn partitioned(self, partition: Partition) -> LogFilter {
        let category = match self {
            LogFilter::All => None,
            LogFilter::Category(category) => Some(category),
            LogFilter::Partition { category, .. } => category,
        };
        LogFilter::Partition {
            category,
            partition,
        }
    }

    fn category(&self) -> Option<&str> {
        match self {
            LogFilter::All => None,
            LogFilter::Category(category) => Some(category),
            LogFilter::Partition { category, .. } => category.as_deref(),
        }
    }

    fn partition(&self) -> Option<Partition> {
        match self {
            LogFilter::Partition { partition, .. } => Some(*partition),
            LogFilter::All | LogFilter::Category(_) => None,
        }
    }

    /// The filter as SQL conditions on `events`, each followed by `AND`
    /// (empty for `All`), numbering its parameters with `placeholder`;
    /// [`LogFilter::bind`] binds them in the same order. The text differs
    /// by shape rather than testing parameters for NULL, so each shape's
    /// prepared statement can use the category index.
    fn conditions(&self, mut placeholder: impl FnMut() -> String) -> String {
        let mut sql = String::new();
        if self.category().is_some() {
            sql.push_str(&format!(
                "split_part(stream_id, '-', 1) = {} AND ",
                placeholder()
            ));
        }
        if self.partition().is_some() {
            sql.push_str(&format!(
                "stream_partition(stream_id, {}) = {} AND ",
                placeholder(),
                placeholder()
            ));
        }
        sql
    }

    fn bind<'q, O>(
        &'q self,
        mut query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        if let Some(category) = self.category() {
            query = query.bind(category);
        }
        if let Some(partition) = self.partition() {
            query = query.bind(partition.count).bind(partition.index);
        }
        query
    }
}

/// Member `index` of a consumer group of `count`: the streams whose id,
/// without its category, hashes to `index` (`stream_partition` in
/// `migrations/*_stream_partition.sql`: md5, so a stream never changes
/// partition across PostgreSQL releases, and `order-42` and `payment-42`
/// share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Partition {
    index: i32,
    count: i32,
}

impl Partition {
    /// The most partitions a subscription may be split into.
    pub const MAX_COUNT: u32 = 64;

    /// Member `index` of `count` (`index < count <= MAX_COUNT`).
    pub fn new(index: u32, count: u32) -> Option<Partition> {
        if index >= count || count > Self::MAX_COUNT {
            return None;
        }
        Some(Partition {
            index: i32::try_from(index).ok()?,
            count: i32::try_from(count).ok()?,
        })
    }

    pub fn index(self) -> u32 {
        self.index.unsigned_abs()
    }

    pub fn count(self) -> u32 {
        self.count.unsigned_abs()
    }
}

/// The horizon below which every transaction has ended: events of older
/// transactions are all visible and no new one can appear among them. Ids
/// are stored with the log epoch offset added (`log_epoch.rs`), so the
/// horizon is too. Readers take no lock for it: a statement whose snapshot
/// predates a shift sees the offset, the events and the horizon as they
/// were before it, consistently.
const VISIBLE_HORIZON: &str = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
     + transaction_id_offset FROM log_epoch)";

pub(crate) async fn read_after(
    pool: &PgPool,
    after: LogCursor,
    filter: &LogFilter,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    read(pool, after, filter, limit, None).await
}

/// Like [`read_after`], but only events below `horizon` (see `horizon.rs`):
/// what a live reader uses, and nothing at all if the log epoch offset is
/// no longer the one the horizon was computed with.
pub(crate) async fn read_below(
    pool: &PgPool,
    after: LogCursor,
    filter: &LogFilter,
    limit: i64,
    horizon: AppendHorizon,
) -> Result<Vec<RecordedEvent>, StoreError> {
    read(pool, after, filter, limit, Some(horizon)).await
}

async fn read(
    pool: &PgPool,
    after: LogCursor,
    filter: &LogFilter,
    limit: i64,
    horizon: Option<AppendHorizon>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    // $1..$3 always; then the filter's and the horizon's, numbered in
    // turn (PostgreSQL refuses a bound parameter the text does not use).
    let mut next = 4;
    let mut placeholder = || {
        next += 1;
        format!("${}", next - 1)
    };
    let conditions = filter.conditions(&mut placeholder);
    let below = match horizon {
        None => format!("transaction_id < {VISIBLE_HORIZON}"),
        Some(_) => format!(
            "transaction_id < {} AND (SELECT transaction_id_offset FROM log_epoch) = {}",
            placeholder(),
            placeholder()
        ),
    };
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE {conditions} transaction_id >= $1 AND (transaction_id, position) > ($1, $2) \
           AND {below} \
         ORDER BY transaction_id, position LIMIT $3"
    );
    let query = sqlx::query_as::<_, RecordedEvent>(&sql)
        .bind(after.transaction_id)
        .bind(after.position)
        .bind(limit);
    let mut query = filter.bind(query);
    if let Some(horizon) = horizon {
        query = query
            .bind(horizon.transaction_id)
            .bind(horizon.epoch_offset);
    }
    Ok(query.fetch_all(pool).await?)
}

/// How many events matching `filter` lie in `(after, until]`.
pub(crate) async fn count_between(
    pool: &PgPool,
    after: LogCursor,
    until: LogCursor,
    filter: &LogFilter,
) -> Result<i64, StoreError> {
    let mut next = 5;
    let conditions = filter.conditions(|| {
        next += 1;
        format!("${}", next - 1)
    });
    let sql = format!(
        "SELECT count(*) FROM events \
          WHERE {conditions} (transaction_id, position) > ($1, $2) \
            AND (transaction_id, position) <= ($3, $4)"
    );
    let query = sqlx::query_as::<_, (i64,)>(&sql)
        .bind(after.transaction_id)
        .bind(after.position)
        .bind(until.transaction_id)
        .bind(until.position);
    let (count,) = filter.bind(query).fetch_one(pool).await?;
    Ok(count)
}

/// The event at `cursor`, whatever the horizon: for a reader that was
/// handed that event before (a subscriber replaying what it parked), so
/// its transaction has committed. A one-off read of the log could hide it
/// behind an unrelated transaction that is still open.
pub(crate) async fn read_at(
    pool: &PgPool,
    cursor: LogCursor,
) -> Result<Option<RecordedEvent>, StoreError> {
    Ok(sqlx::query_as::<_, RecordedEvent>(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE transaction_id = $1 AND position = $2"
    ))
    .bind(cursor.transaction_id)
    .bind(cursor.position)
    .fetch_optional(pool)
    .await?)
}

/// The cursor of the last visible event, or [`LogCursor::START`].
pub(crate) async fn head(pool: &PgPool) -> Result<LogCursor, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT transaction_id, position FROM events \
         WHERE transaction_id < {VISIBLE_HORIZON} \
         ORDER BY transaction_id DESC, position DESC LIMIT 1"
    ))
    .fetch_optional(pool)
    .await?;
    Ok(
        row.map_or(LogCursor::START, |(transaction_id, position)| LogCursor {
            transaction_id,
            position,
        }),
    )
}

/// Where a reader that holds a bare position `position` resumes: the
/// latest cursor at or before the event at `position` (when there is one)
/// with no event of a greater position at or before it, now or later.
/// Position 0 (or less) is the start.
///
/// The cursor of the event at `position` alone is not that place: an event
/// of a concurrent transaction can take a greater position yet sort before
/// it, and a reader resuming there would never see it. So the cursor also
/// stops just before the first event, in log order, whose position is
/// greater, and before the visibility horizon, since a transaction still
/// running below it may yet add one. A reader resuming there reads every
/// event after the one at `position` and every event of a greater
/// position, each once; it may read again a few events of transactions
/// concurrent with the one at `position`.
pub(crate) async fn cursor_at(pool: &PgPool, position: i64) -> Result<LogCursor, StoreError> {
    if position <= 0 {
        return Ok(LogCursor::START);
    }
    // One statement, so the horizon and the events are of one snapshot.
    // The planner picks, from its statistics, the log-order index for an
    // old position (the first greater one is near the scan's start) or
    // the position key for a recent one (few greater positions to sort).
    let row: (i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(&format!(
        "SELECT {VISIBLE_HORIZON}, held.transaction_id, held.position, \
                    greater.transaction_id, greater.position \
             FROM (SELECT 1) AS one \
             LEFT JOIN LATERAL ( \
                 SELECT transaction_id, position FROM events WHERE position = $1) AS held ON true \
             LEFT JOIN LATERAL ( \
                 SELECT transaction_id, position FROM events WHERE position > $1 \
                 ORDER BY transaction_id, position LIMIT 1) AS greater ON true"
    ))
    .bind(position)
    .fetch_one(pool)
    .await?;
    let (horizon, held, greater) = (row.0, row.1.zip(row.2), row.3.zip(row.4));
    Ok(resume_cursor(horizon, held, greater))
}

/// The latest cursor at or before `held` (the event at the position, if
/// any), before the horizon and before `greater` (the first event in log
/// order with a greater position). Positions start at 1, so `(t, 0)` lies
/// before every event of transaction `t`, and `(t, p - 1)` before the event
/// `(t, p)` alone.
fn resume_cursor(horizon: i64, held: Option<(i64, i64)>, greater: Option<(i64, i64)>) -> LogCursor {
    let cursor = |(transaction_id, position): (i64, i64)| LogCursor {
        transaction_id,
        position,
    };
    let before_horizon = cursor((horizon, 0));
    [
        Some(before_horizon),
        held.map(cursor),
        greater.map(|(transaction_id, position)| cursor((transaction_id, position - 1))),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(before_horizon)
}

/// One page of a stream's flow: see [`read_flow`].
#[derive(Debug, Clone, PartialEq)]
pub struct FlowPage {
    pub events: Vec<RecordedEvent>,
    /// Where the next page starts, when more events follow.
    pub next: Option<LogCursor>,
}

#[derive(sqlx::FromRow)]
struct FlowRow {
    #[sqlx(flatten)]
    event: RecordedEvent,
    settled: bool,
}

/// The flow of a stream, a page at a time: every event, in any stream,
/// that shares a correlation id with an event of `stream_id`, in log
/// order, after `after`. The stream's own events come too before the log
/// shows them (committed while an older transaction still runs), so a
/// writer reads its writes; they sort after every settled event and a
/// page never continues past them, so paging by `next` stays gap-free.
pub(crate) async fn read_flow(
    pool: &PgPool,
    stream_id: &str,
    after: LogCursor,
    limit: i64,
) -> Result<FlowPage, StoreError> {
    let mut rows = sqlx::query_as::<_, FlowRow>(&format!(
        "WITH horizon AS (SELECT {VISIBLE_HORIZON} AS id) \
         SELECT {EVENT_COLUMNS}, transaction_id < (SELECT id FROM horizon) AS settled \
         FROM events \
         WHERE transaction_id >= $2 AND (transaction_id, position) > ($2, $3) \
           AND (stream_id = $1 OR (transaction_id < (SELECT id FROM horizon) \
                AND correlation_id IN (SELECT correlation_id FROM events \
                    WHERE stream_id = $1 AND correlation_id IS NOT NULL))) \
         ORDER BY transaction_id, position LIMIT $4"
    ))
    .bind(stream_id)
    .bind(after.transaction_id)
    .bind(after.position)
    .bind(limit.saturating_add(1))
    .fetch_all(pool)
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more {
        // Unsettled events sort last; the next page starts before them.
        let settled = rows.iter().take_while(|row| row.settled).count();
        if settled > 0 {
            rows.truncate(settled);
        }
        rows.last()
            .filter(|row| row.settled)
            .map(|row| row.event.cursor())
    } else {
        None
    };
    Ok(FlowPage {
        events: rows.into_iter().map(|row| row.event).collect(),
        next,
    })
}

/// Every event that shares a correlation id, in log order.
pub(crate) async fn read_correlation(
    pool: &PgPool,
    correlation_id: &crate::CorrelationId,
    after: LogCursor,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    Ok(sqlx::query_as::<_, RecordedEvent>(&format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE correlation_id = $1 AND (transaction_id, position) > ($2, $3) \
           AND transaction_id < {VISIBLE_HORIZON} \
         ORDER BY transaction_id, position LIMIT $4"
    ))
    .bind(correlation_id)
    .bind(after.transaction_id)
    .bind(after.position)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::LogCursor;

    #[test]
    fn a_position_resumes_before_any_greater_one_and_the_running_transactions() {
        let at = |transaction_id, position| LogCursor {
            transaction_id,
            position,
        };
        // The event held sorts first, nothing runs: resume right after it.
        assert_eq!(
            super::resume_cursor(900, Some((100, 8)), Some((101, 9))),
            at(100, 8)
        );
        // A greater position sorts before the event held: resume before it.
        assert_eq!(
            super::resume_cursor(900, Some((101, 7)), Some((100, 9))),
            at(100, 8)
        );
        // Transaction 95 still runs and may add a greater position.
        assert_eq!(
            super::resume_cursor(95, Some((101, 7)), Some((100, 9))),
            at(95, 0)
        );
        // A position no event holds (a rolled-back append).
        assert_eq!(
            super::resume_cursor(900, None, Some((300, 12))),
            at(300, 11)
        );
        assert_eq!(super::resume_cursor(900, None, None), at(900, 0));
    }
}
