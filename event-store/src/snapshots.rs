//! Snapshots: an aggregate's state at a stream version, to load from
//! instead of folding the whole stream. An optimisation only.

use sqlx::PgPool;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Snapshot {
    pub stream_id: String,
    /// The version of the last event folded into `state`.
    pub stream_version: i64,
    /// The version of the state's serialized shape; a loader ignores a
    /// snapshot whose shape it does not know.
    pub schema_version: i32,
    pub state: serde_json::Value,
}

pub(crate) async fn load(pool: &PgPool, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
    Ok(sqlx::query_as::<_, Snapshot>(
        "SELECT stream_id, stream_version, schema_version, state FROM snapshots \
         WHERE stream_id = $1",
    )
    .bind(stream_id)
    .fetch_optional(pool)
    .await?)
}

/// Keeps the newer of the stored and the given snapshot.
pub(crate) async fn save(pool: &PgPool, snapshot: &Snapshot) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO snapshots (stream_id, stream_version, schema_version, state) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (stream_id) DO UPDATE \
            SET stream_version = excluded.stream_version, \
                schema_version = excluded.schema_version, \
                state = excluded.state, taken_at = now() \
          WHERE snapshots.stream_version < excluded.stream_version \
             OR snapshots.schema_version <> excluded.schema_version",
    )
    .bind(&snapshot.stream_id)
    .bind(snapshot.stream_version)
    .bind(snapshot.schema_version)
    .bind(&snapshot.state)
    .execute(pool)
    .await?;
    Ok(())
}
