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

/// The right to move one subscription's checkpoint, proven at commit time.
///
/// Taking a lease bumps the checkpoint's owner epoch; every move made
/// through the lease names that epoch, so once another process has taken a
/// newer lease, this one's writes match no row and fail with
/// [`StoreError::Fenced`]. Used inside the transaction that writes a
/// subscription's effects, it makes those effects fail with it: two owners'
/// effects can never interleave, whatever the timing of locks and
/// connections (a session advisory lock alone cannot promise that: its
/// connection may be gone, or another's, by the time the effect commits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointLease {
    name: String,
    epoch: i64,
}

impl CheckpointLease {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This lease's owner epoch: higher than every lease taken before it.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Moves the checkpoint forward to `cursor` (a cursor at or behind it
    /// changes nothing) if this lease is still the newest. The checkpoint
    /// row stays locked until the caller's transaction ends, so call it
    /// first in a transaction to serialise with any other would-be owner.
    pub async fn advance<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        cursor: LogCursor,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE subscription_checkpoints \
                SET transaction_id = CASE WHEN (transaction_id, position) < ($3, $4) \
                                          THEN $3 ELSE transaction_id END, \
                    position = CASE WHEN (transaction_id, position) < ($3, $4) \
                                    THEN $4 ELSE position END, \
                    updated_at = now() \
              WHERE name = $1 AND owner_epoch = $2",
        )
        .bind(&self.name)
        .bind(self.epoch)
        .bind(cursor.transaction_id)
        .bind(cursor.position)
        .execute(executor)
        .await?;
        self.fenced_unless(result.rows_affected())
    }

    /// Sets the checkpoint to `cursor`, backward included, if this lease
    /// is still the newest.
    pub async fn reset<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        cursor: LogCursor,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE subscription_checkpoints \
                SET transaction_id = $3, position = $4, updated_at = now() \
              WHERE name = $1 AND owner_epoch = $2",
        )
        .bind(&self.name)
        .bind(self.epoch)
        .bind(cursor.transaction_id)
        .bind(cursor.position)
        .execute(executor)
        .await?;
        self.fenced_unless(result.rows_affected())
    }

    /// Proves, without moving the checkpoint, that this lease is still the
    /// newest, and locks the row until the caller's transaction ends.
    pub async fn confirm<'e>(&self, executor: impl PgExecutor<'e>) -> Result<(), StoreError> {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT owner_epoch FROM subscription_checkpoints \
              WHERE name = $1 AND owner_epoch = $2 FOR UPDATE",
        )
        .bind(&self.name)
        .bind(self.epoch)
        .fetch_optional(executor)
        .await?;
        self.fenced_unless(u64::from(held.is_some()))
    }

    fn fenced_unless(&self, rows: u64) -> Result<(), StoreError> {
        if rows == 1 {
            Ok(())
        } else {
            Err(StoreError::Fenced {
                subscription: self.name.clone(),
                epoch: self.epoch,
            })
        }
    }
}

/// The checkpoints of one subscription that may be split into a consumer
/// group: `group` is the subscription's name, its checkpoints are `group`
/// (not split) or `group.<member>` (one per member), and `members` are the
/// names of the layout now running (`[group]` when it is not split).
#[derive(Debug, Clone, Copy)]
pub struct CheckpointLayout<'a> {
    pub group: &'a str,
    pub members: &'a [String],
}

/// Takes a new lease on `name`, a member of `layout`, fencing every owner
/// of the group's other layouts (their checkpoints' epochs move on too), so
/// two layouts' owners never commit side by side. When another layout
/// moved since this checkpoint did (or this one is new), the checkpoint
/// starts at the least of that layout's checkpoints: every event before it
/// was handled by some member, and the ones after it a member may handle
/// again (effects are idempotent, `commands`' deterministic ids).
pub(crate) async fn take_lease_in_layout<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    layout: CheckpointLayout<'_>,
) -> Result<(CheckpointLease, LogCursor), StoreError> {
    let (epoch, transaction_id, position): (i64, i64, i64) = sqlx::query_as(
        "WITH superseded AS ( \
             UPDATE subscription_checkpoints SET owner_epoch = owner_epoch + 1 \
              WHERE (name = $2 OR starts_with(name, $2 || '.')) AND name <> ALL($3) \
             RETURNING transaction_id, position, updated_at), \
         seed AS ( \
             SELECT transaction_id, position FROM superseded \
              WHERE updated_at > coalesce((SELECT updated_at FROM subscription_checkpoints \
                                            WHERE name = $1), '-infinity') \
              ORDER BY transaction_id, position LIMIT 1) \
         INSERT INTO subscription_checkpoints AS current \
                (name, transaction_id, position, owner_epoch) \
         SELECT $1, coalesce((SELECT transaction_id FROM seed), 0), \
                coalesce((SELECT position FROM seed), 0), 1 \
         ON CONFLICT (name) DO UPDATE \
            SET owner_epoch = current.owner_epoch + 1, \
                transaction_id = coalesce((SELECT transaction_id FROM seed), current.transaction_id), \
                position = coalesce((SELECT position FROM seed), current.position) \
         RETURNING owner_epoch, transaction_id, position",
    )
    .bind(name)
    .bind(layout.group)
    .bind(layout.members)
    .fetch_one(executor)
    .await?;
    Ok((
        CheckpointLease {
            name: name.to_owned(),
            epoch,
        },
        LogCursor {
            transaction_id,
            position,
        },
    ))
}

/// The owner epoch of `name`'s newest lease (0: never leased).
pub(crate) async fn current_epoch<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
) -> Result<i64, StoreError> {
    let epoch: Option<i64> =
        sqlx::query_scalar("SELECT owner_epoch FROM subscription_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(executor)
            .await?;
    Ok(epoch.unwrap_or(0))
}
