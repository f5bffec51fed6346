//! `Idempotency-Key` on `POST /orders`.
//!
//! The key stands for one order: its id is derived from the key (UUID v5),
//! and the key is stored with a hash of the request before anything is
//! placed. A repeat with the same body places the same order id again,
//! which the order stream's expected version turns into "already placed":
//! the caller gets the existing order. Concurrent repeats race on that
//! same stream, so exactly one `OrderPlaced` is ever written, and a request
//! that died after storing its key is completed by the next repeat.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::dto::PlaceOrderRequest;
use crate::error::ApiError;

/// Longest key accepted.
const MAX_KEY_LEN: usize = 255;

/// Namespace of the order ids derived from keys.
const NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_7472_6561_6d2d_6964_656d);

/// Whether this request is the first with its key or a repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    First,
    Repeat,
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

/// The order id a key stands for.
pub fn order_id_for(key: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, key.as_bytes())
}

/// The hash of a request: of its parsed form, so that whitespace and
/// field order do not make a repeat look different.
pub fn request_hash(request: &PlaceOrderRequest) -> Result<Vec<u8>, ApiError> {
    let canonical = serde_json::to_vec(request).map_err(ApiError::internal)?;
    Ok(Sha256::digest(&canonical).to_vec())
}

/// Stores the key with its request hash, or finds it stored: a repeat with
/// another body is a 409.
pub async fn claim(
    pool: &PgPool,
    key: &str,
    hash: &[u8],
    order_id: Uuid,
) -> Result<Claim, ApiError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(hash)
    .bind(order_id)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::First);
    }
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT request_hash FROM idempotency_keys WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?;
    match stored {
        Some(stored) if stored == hash => Ok(Claim::Repeat),
        Some(_) => Err(ApiError::Conflict(
            "this Idempotency-Key was already used with a different request body".into(),
        )),
        None => Err(ApiError::internal(
            "an idempotency key vanished between insert and select",
        )),
    }
}
