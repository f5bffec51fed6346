//! Parked events: those a subscription gave up on, and the later events of
//! the same stream that wait behind them.

use std::collections::HashMap;

use event_store::RecordedEvent;

use crate::consumer_groups::Member;
use sqlx::{PgExecutor, PgPool};

pub(crate) const PARKED_COUNT_SQL: &str =
    "SELECT count(*) FROM parked_events WHERE subscription = $1";

/// Parks `event`: as the failing head of its stream (`blocked_by` None), or
/// waiting behind the head at position `blocked_by`.
pub(crate) async fn park<'e>(
    executor: impl PgExecutor<'e>,
    subscription: &str,
    event: &RecordedEvent,
    attempts: u32,
    error: &str,
    blocked_by: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO parked_events (subscription, transaction_id, position, event_id, stream_id, \
             stream_version, event_type, attempts, last_error, blocked_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (subscription, transaction_id, position) DO NOTHING",
    )
    .bind(subscription)
    .bind(event.transaction_id)
    .bind(event.position)
    .bind(event.event_id)
    .bind(&event.stream_id)
    .bind(event.stream_version)
    .bind(&event.event_type)
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .bind(error)
    .bind(blocked_by)
    .execute(executor)
    .await?;
    Ok(())
}

/// Makes the parked events of the subscription's other layouts (split
/// another way, or not split) whose streams `member` reads its own, so a
/// stream's parked events follow it into the layout that runs now and its
/// later events keep waiting behind them. Call it with the member's lease
/// confirmed in the same transaction.
pub(crate) async fn adopt_from_other_layouts<'e>(
    executor: impl PgExecutor<'e>,
    member: &Member,
) -> Result<u64, sqlx::Error> {
    let (count, index) = match member.partition {
        Some(partition) => (
            Some(i64::from(partition.count())),
            Some(i64::from(partition.index())),
        ),
        None => (None, None),
    };
    let adopted = sqlx::query(
        "UPDATE parked_events SET subscription = $1 \
          WHERE (subscription = $2 OR starts_with(subscription, $2 || '.')) \
            AND subscription <> ALL($3) \
            AND ($4::int IS NULL OR stream_partition(stream_id, $4::int) = $5::int)",
    )
    .bind(member.name())
    .bind(member.subscription)
    .bind(member.layout_names())
    .bind(count)
    .bind(index)
    .execute(executor)
    .await?;
    Ok(adopted.rows_affected())
}

/// Parks `event` untried, behind its stream's failing head at `head`.
pub(crate) async fn park_behind<'e>(
    executor: impl PgExecutor<'e>,
    subscription: &str,
    event: &RecordedEvent,
    head: i64,
) -> Result<(), sqlx::Error> {
    park(
        executor,
        subscription,
        event,
        0,
        "waiting behind a parked event",
        Some(head),
    )
    .await
}

/// The streams this subscription must not process live, each with the
/// position of its failing head.
pub(crate) async fn blocked_streams(
    pool: &PgPool,
    subscription: &str,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT stream_id, min(position) FILTER (WHERE blocked_by IS NULL) \
           FROM parked_events WHERE subscription = $1 GROUP BY stream_id",
    )
    .bind(subscription)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(stream, head)| (stream, head.unwrap_or(0)))
        .collect())
}

/// The parked events of one stream, in log order.
pub(crate) async fn parked_in_stream(
    pool: &PgPool,
    subscription: &str,
    stream_id: &str,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT transaction_id, position FROM parked_events \
         WHERE subscription = $1 AND stream_id = $2 ORDER BY transaction_id, position",
    )
    .bind(subscription)
    .bind(stream_id)
    .fetch_all(pool)
    .await
}

pub(crate) async fn unpark<'e>(
    executor: impl PgExecutor<'e>,
    subscription: &str,
    transaction_id: i64,
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM parked_events WHERE subscription = $1 AND transaction_id = $2 AND position = $3",
    )
    .bind(subscription)
    .bind(transaction_id)
    .bind(position)
    .execute(executor)
    .await?;
    Ok(())
}

/// One parked event, as a replay of it alone needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct ParkedEntry {
    pub(crate) transaction_id: i64,
    pub(crate) stream_id: String,
    /// The stream's parked events before this one, in log order.
    pub(crate) earlier: Vec<i64>,
}

/// The event `subscription` parked at `position`, with the parked events
/// of its stream before it; `None` if nothing is parked there.
pub(crate) async fn parked_at<'e>(
    executor: impl PgExecutor<'e>,
    subscription: &str,
    position: i64,
) -> Result<Option<ParkedEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.transaction_id, p.stream_id, \
                ARRAY(SELECT e.position FROM parked_events e \
                       WHERE e.subscription = p.subscription AND e.stream_id = p.stream_id \
                         AND (e.transaction_id, e.position) < (p.transaction_id, p.position) \
                       ORDER BY e.transaction_id, e.position) AS earlier \
           FROM parked_events p WHERE p.subscription = $1 AND p.position = $2",
    )
    .bind(subscription)
    .bind(position)
    .fetch_optional(executor)
    .await
}

/// After the stream's head was replayed alone: its first remaining parked
/// event becomes the head the rest wait behind (it was never tried, so its
/// error says so). Returns the new head, `None` if nothing of the stream is
/// parked any more.
pub(crate) async fn promote_next_head(
    connection: &mut sqlx::PgConnection,
    subscription: &str,
    stream_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let head: Option<i64> = sqlx::query_scalar(
        "SELECT position FROM parked_events WHERE subscription = $1 AND stream_id = $2 \
          ORDER BY transaction_id, position LIMIT 1",
    )
    .bind(subscription)
    .bind(stream_id)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(head) = head else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE parked_events \
            SET blocked_by = CASE WHEN position = $3 THEN NULL ELSE $3 END, \
                last_error = CASE WHEN position = $3 AND blocked_by IS NOT NULL \
                                  THEN $4 ELSE last_error END \
          WHERE subscription = $1 AND stream_id = $2",
    )
    .bind(subscription)
    .bind(stream_id)
    .bind(head)
    .bind(NOT_TRIED)
    .execute(&mut *connection)
    .await?;
    Ok(Some(head))
}

/// The error of a stream's head that waited behind an event replayed alone.
const NOT_TRIED: &str =
    "not tried yet: the parked event before it was replayed; replay this one next";

/// After a failed replay: `position` is the stream's failing head again,
/// with its new attempt count and error; the rest wait behind it.
pub(crate) async fn mark_head<'e>(
    executor: impl PgExecutor<'e>,
    subscription: &str,
    stream_id: &str,
    position: i64,
    attempts: u32,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE parked_events \
            SET blocked_by = CASE WHEN position = $3 THEN NULL ELSE $3 END, \
                attempts = CASE WHEN position = $3 THEN attempts + $4 ELSE attempts END, \
                last_error = CASE WHEN position = $3 THEN $5 ELSE last_error END \
          WHERE subscription = $1 AND stream_id = $2",
    )
    .bind(subscription)
    .bind(stream_id)
    .bind(position)
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .bind(error)
    .execute(executor)
    .await?;
    Ok(())
}

/// Forgets parked events after `cursor` (they will be delivered again).
pub(crate) async fn forget_after<'e>(
    executor: impl PgExecutor<'e>,
    subscription: &str,
    cursor: event_store::LogCursor,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM parked_events WHERE subscription = $1 \
           AND (transaction_id, position) > ($2, $3)",
    )
    .bind(subscription)
    .bind(cursor.transaction_id)
    .bind(cursor.position)
    .execute(executor)
    .await?;
    Ok(())
}

/// Forgets every parked event of `subscription` (a rebuild applied them).
pub(crate) async fn forget_all<'e>(
    executor: impl PgExecutor<'e>,
    subscription: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM parked_events WHERE subscription = $1")
        .bind(subscription)
        .execute(executor)
        .await?;
    Ok(())
}
