//! Named checkpoints: where each subscription has got to in the log.

use sqlx::{PgExecutor, PgPool};

use crate::{LogCursor, StoreError};

pub(crate) async fn load(pool: &PgPool, name: &str) -> Result<Option<LogCursor>, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT transaction_id, position FROM subscription_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(transaction_id, position)| LogCursor {
        transaction_id,
        position,
    }))
}

/// Moves the checkpoint forward to `cursor`; a cursor at or behind the
/// stored one changes nothing. Returns whether it moved.
pub async fn save<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    cursor: LogCursor,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO subscription_checkpoints (name, transaction_id, position) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE \
            SET transaction_id = excluded.transaction_id, position = excluded.position, \
                updated_at = now() \
          WHERE (subscription_checkpoints.transaction_id, subscription_checkpoints.position) \
              < (excluded.transaction_id, excluded.position)",
    )
    .bind(name)
    .bind(cursor.transaction_id)
    .bind(cursor.position)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Sets the checkpoint to `cursor`, backward or forward: the one way to
/// make a subscription see events again.
pub(crate) async fn reset<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    cursor: LogCursor,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO subscription_checkpoints (name, transaction_id, position) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE \
            SET transaction_id = excluded.transaction_id, position = excluded.position, \
                updated_at = now()",
    )
    .bind(name)
    .bind(cursor.transaction_id)
    .bind(cursor.position)
    .execute(executor)
    .await?;
    Ok(())
}
