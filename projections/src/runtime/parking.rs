//! Parked events: those a subscription gave up on, and the later events of
//! the same stream that wait behind them.

use std::collections::HashMap;

use event_store::RecordedEvent;
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
