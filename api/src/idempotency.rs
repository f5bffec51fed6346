//! `Idempotency-Key` on `POST /orders`.
//!
//! A key stands for one order for a while (the TTL, 24 hours unless
//! configured): the first request with a key stores it with a hash of the
//! request and a fresh order id before anything is placed. A repeat with
//! the same body places that same order id again, which the order stream's
//! expected version turns into "already placed": the caller gets the
//! existing order. Concurrent repeats race on that same stream, so exactly
//! one `OrderPlaced` is ever written, and a request that died after storing
//! its key is completed by the next repeat.
//!
//! Once the TTL has passed the key is new again: the next request with it
//! takes the row over with its own hash and a new order id (so it never
//! lands on the old order), whether or not the row has been deleted yet.
//! A task of the serving process deletes expired rows in small batches
//! ([`start_cleanup`]).

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::dto::PlaceOrderRequest;
use crate::error::ApiError;
use crate::AppState;

/// Longest key accepted.
const MAX_KEY_LEN: usize = 255;

/// How long a key stands for its order unless configured.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Expired rows deleted per statement: each delete is short, and the
/// cleanup never holds many row locks at once.
const CLEANUP_BATCH: i64 = 500;

/// How many times a claim looks again when its key's row changes between
/// its two statements (expired, deleted or taken over meanwhile).
const CLAIM_ATTEMPTS: usize = 3;

/// Whether this request is the first with its key or a repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    First,
    Repeat,
}

/// What a key stands for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    pub claim: Claim,
    /// The order the key stands for: place it (again).
    pub order_id: Uuid,
}

/// Checks a key's shape: 1-255 visible ASCII characters.
pub fn validate_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(())
}

/// The hash of a request: of its parsed form, so that whitespace and
/// field order do not make a repeat look different.
pub fn request_hash(request: &PlaceOrderRequest) -> Result<Vec<u8>, ApiError> {
    let canonical = serde_json::to_vec(request).map_err(ApiError::internal)?;
    Ok(Sha256::digest(&canonical).to_vec())
}

/// Stores the key with its request hash and a new order id (a key never
/// used, or expired: stored `ttl` ago or earlier), or finds it stored: a
/// repeat with another body is a 409.
pub async fn claim(
    pool: &PgPool,
    key: &str,
    hash: &[u8],
    ttl: Duration,
) -> Result<Claimed, ApiError> {
    let ttl_ms = millis(ttl);
    for _ in 0..CLAIM_ATTEMPTS {
        // An expired row is taken over in the same statement; a live one
        // is left alone (no row returned). A concurrent claim of the same
        // key waits for this one's commit and then finds its row live.
        let taken: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys AS stored (key, request_hash, order_id, created_at) \
             VALUES ($1, $2, $3, now()) \
             ON CONFLICT (key) DO UPDATE \
                SET request_hash = excluded.request_hash, order_id = excluded.order_id, \
                    created_at = excluded.created_at \
              WHERE stored.created_at <= now() - $4::bigint * interval '1 millisecond' \
             RETURNING order_id",
        )
        .bind(key)
        .bind(hash)
        .bind(Uuid::new_v4())
        .bind(ttl_ms)
        .fetch_optional(pool)
        .await?;
        if let Some(order_id) = taken {
            return Ok(Claimed {
                claim: Claim::First,
                order_id,
            });
        }
        let stored: Option<(Vec<u8>, Uuid)> = sqlx::query_as(
            "SELECT request_hash, order_id FROM idempotency_keys \
              WHERE key = $1 AND created_at > now() - $2::bigint * interval '1 millisecond'",
        )
        .bind(key)
        .bind(ttl_ms)
        .fetch_optional(pool)
        .await?;
        match stored {
            Some((stored, order_id)) if stored == hash => {
                return Ok(Claimed {
                    claim: Claim::Repeat,
                    order_id,
                })
            }
            Some(_) => {
                return Err(ApiError::Conflict(
                    "this Idempotency-Key was already used with a different request body".into(),
                ))
            }
            // Expired or deleted since the insert looked: claim it again.
            None => continue,
        }
    }
    Err(ApiError::internal(
        "an idempotency key kept changing between claiming and reading it",
    ))
}

/// Deletes the keys stored `ttl` ago or earlier, `CLEANUP_BATCH` rows per
/// statement, oldest first, until none is left; returns how many. Rows a
/// claim is taking over right now are skipped, not waited for.
pub async fn delete_expired(pool: &PgPool, ttl: Duration) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    loop {
        let batch = sqlx::query(
            "DELETE FROM idempotency_keys WHERE key IN ( \
                 SELECT key FROM idempotency_keys \
                  WHERE created_at <= now() - $1::bigint * interval '1 millisecond' \
                  ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(millis(ttl))
        .bind(CLEANUP_BATCH)
        .execute(pool)
        .await?
        .rows_affected();
        deleted += batch;
        if batch < CLEANUP_BATCH.unsigned_abs() {
            return Ok(deleted);
        }
    }
}

/// How often the cleanup runs for a TTL: a quarter of it, between 100 ms
/// and 5 minutes, so a row outlives its key by at most that.
pub fn cleanup_interval(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(300))
}

/// The cleanup task of a serving process; stopped when dropped.
pub struct Cleanup(JoinHandle<()>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts deleting expired keys every [`cleanup_interval`]. Several
/// serving processes may each run one: they skip each other's rows.
pub fn start_cleanup(state: &AppState) -> Cleanup {
    let pool = state.store().pool().clone();
    let ttl = state.idempotency_ttl();
    Cleanup(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(cleanup_interval(ttl));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match delete_expired(&pool, ttl).await {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "expired idempotency keys deleted"),
                // The next round tries again; the keys are expired anyway.
                Err(error) => tracing::warn!(%error, "could not delete expired idempotency keys"),
            }
        }
    }))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cleanup_runs_at_a_quarter_of_the_ttl_within_bounds() {
        assert_eq!(cleanup_interval(DEFAULT_TTL), Duration::from_secs(300));
        assert_eq!(
            cleanup_interval(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert_eq!(cleanup_interval(Duration::ZERO), Duration::from_millis(100));
    }
}
