//! Rebuilding a read model: fresh tables in a schema of their own, filled
//! from position 0 while the old tables keep serving, then swapped in
//! within one transaction.
//!
//! The projection's SQL names its tables without a schema, so pointing the
//! rebuild connection's `search_path` at the new schema is all it takes to
//! write there. The connection is dedicated: no statement prepared against
//! the live tables is ever reused for the new ones.

use event_store::{EventStore, LogCursor, RecordedEvent};
use sqlx::{Connection, PgConnection};

use super::status::report_rebuild_progress;
use super::worker::RuntimeError;
use crate::Projection;

const BATCH: i64 = 2000;

fn schema_of(projection: &dyn Projection) -> String {
    format!("rebuild_{}", projection.name())
}

/// Creates empty copies of the projection's tables and returns a
/// connection that writes to them.
pub(crate) async fn prepare(
    store: &EventStore,
    projection: &dyn Projection,
) -> Result<PgConnection, RuntimeError> {
    let schema = schema_of(projection);
    let mut connection = PgConnection::connect_with(&store.pool().connect_options()).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut connection)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut connection)
        .await?;
    for table in projection.tables() {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut connection)
        .await?;
    }
    sqlx::query(&format!("SET search_path TO {schema}, public"))
        .execute(&mut connection)
        .await?;
    Ok(connection)
}

/// Applies every visible event after `from` to the new tables, one
/// transaction per batch, reporting progress. Returns the last cursor.
pub(crate) async fn catch_up(
    store: &EventStore,
    projection: &dyn Projection,
    connection: &mut PgConnection,
    from: LogCursor,
) -> Result<LogCursor, RuntimeError> {
    // An estimate is enough for a progress bar, and a count of a large log
    // is a scan of it.
    let total: i64 = sqlx::query_scalar(
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'events'::regclass",
    )
    .fetch_one(store.pool())
    .await?;
    let mut done = 0_i64;
    let mut cursor = from;
    loop {
        let batch = read_batch(store, projection, cursor).await?;
        let Some(last) = batch.last() else {
            break;
        };
        cursor = last.cursor();
        let mut transaction = connection.begin().await?;
        apply(projection, &mut transaction, &batch).await?;
        transaction.commit().await?;
        done += batch.len() as i64;
        report_rebuild_progress(
            store.pool(),
            projection.name(),
            Some((done, total.max(done))),
        )
        .await?;
    }
    Ok(cursor)
}

async fn apply(
    projection: &dyn Projection,
    connection: &mut PgConnection,
    batch: &[RecordedEvent],
) -> Result<(), RuntimeError> {
    projection
        .apply_batch(connection, batch)
        .await
        .map_err(|error| RuntimeError::Rebuild(error.to_string()))
}

async fn read_batch(
    store: &EventStore,
    projection: &dyn Projection,
    after: LogCursor,
) -> Result<Vec<RecordedEvent>, RuntimeError> {
    Ok(store
        .read_category(projection.category(), after, BATCH)
        .await?)
}

/// With the live worker paused: applies what came since `cursor`, swaps
/// the new tables in and moves the checkpoint, in one transaction; readers
/// see the old tables until the commit, the new ones after it.
pub(crate) async fn swap(
    store: &EventStore,
    projection: &dyn Projection,
    mut connection: PgConnection,
    mut cursor: LogCursor,
) -> Result<LogCursor, RuntimeError> {
    let schema = schema_of(projection);
    let mut transaction = connection.begin().await?;
    for table in projection.tables() {
        sqlx::query(&format!(
            "LOCK TABLE public.{table} IN ACCESS EXCLUSIVE MODE"
        ))
        .execute(&mut *transaction)
        .await?;
    }
    loop {
        let batch = read_batch(store, projection, cursor).await?;
        let Some(last) = batch.last() else {
            break;
        };
        cursor = last.cursor();
        apply(projection, &mut transaction, &batch).await?;
    }
    for table in projection.tables() {
        for statement in [
            format!("DROP TABLE public.{table}"),
            format!("ALTER TABLE {schema}.{table} SET SCHEMA public"),
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON public.{table} TO orderstream_app"),
        ] {
            sqlx::query(&statement).execute(&mut *transaction).await?;
        }
    }
    sqlx::query(&format!("DROP SCHEMA {schema}"))
        .execute(&mut *transaction)
        .await?;
    // Everything up to `cursor` is now in the model, parked events included.
    sqlx::query("DELETE FROM public.parked_events WHERE subscription = $1")
        .bind(projection.name())
        .execute(&mut *transaction)
        .await?;
    event_store::save_checkpoint(&mut *transaction, projection.name(), cursor).await?;
    transaction.commit().await?;
    let _ = connection.close().await;
    report_rebuild_progress(store.pool(), projection.name(), None).await?;
    Ok(cursor)
}
