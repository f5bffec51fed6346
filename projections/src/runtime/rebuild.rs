//! Rebuilding a read model: fresh tables in a schema of their own, filled
//! from position 0 while the old tables keep serving, then swapped in
//! within one transaction.
//!
//! The new tables are `UNLOGGED` while they fill: a rebuild writes every
//! row of the model at once, and skipping the WAL for them is most of its
//! speed. They are made durable (`SET LOGGED`, one pass over each table)
//! before the swap. A crash before then loses only the rebuild, which the
//! still-pending request starts over.
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
            "CREATE UNLOGGED TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
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
    batch_size: i64,
) -> Result<LogCursor, RuntimeError> {
    // An estimate is enough for a progress bar, and a count of a large log
    // is a scan of it.
    let total: i64 = sqlx::query_scalar(
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'events'::regclass",
    )
    .fetch_one(store.pool())
    .await?;
    // The next batch is read while this one is applied: at most three
    // batches are in memory at once.
    let (sender, mut batches) = tokio::sync::mpsc::channel(1);
    let reader = tokio::spawn(read_ahead(
        store.clone(),
        projection.category().to_owned(),
        from,
        batch_size,
        sender,
    ));
    let mut done = 0_i64;
    let mut cursor = from;
    while let Some(batch) = batches.recv().await {
        let batch: Vec<RecordedEvent> = batch?;
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
    reader.abort();
    Ok(cursor)
}

/// Sends the category's batches after `from` until the log's visible end
/// (or the receiver is gone); a read error is sent, then it stops.
async fn read_ahead(
    store: EventStore,
    category: String,
    from: LogCursor,
    batch_size: i64,
    batches: tokio::sync::mpsc::Sender<Result<Vec<RecordedEvent>, RuntimeError>>,
) {
    let mut cursor = from;
    loop {
        let batch = store
            .read_category(&category, cursor, batch_size)
            .await
            .map_err(RuntimeError::from);
        let next = match &batch {
            Ok(batch) => batch.last().map(RecordedEvent::cursor),
            Err(_) => None,
        };
        if batches.send(batch).await.is_err() {
            return;
        }
        match next {
            Some(last) => cursor = last,
            None => return,
        }
    }
}

/// Makes the filled tables crash-safe, before they are swapped in.
pub(crate) async fn make_durable(
    projection: &dyn Projection,
    connection: &mut PgConnection,
) -> Result<(), RuntimeError> {
    let schema = schema_of(projection);
    for table in projection.tables() {
        sqlx::query(&format!("ALTER TABLE {schema}.{table} SET LOGGED"))
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
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

/// With the live worker paused: applies what came since `cursor`, swaps
/// the new tables in and moves the checkpoint, in one transaction; readers
/// see the old tables until the commit, the new ones after it.
pub(crate) async fn swap(
    store: &EventStore,
    projection: &dyn Projection,
    mut connection: PgConnection,
    mut cursor: LogCursor,
    batch_size: i64,
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
        let batch = store
            .read_category(projection.category(), cursor, batch_size)
            .await?;
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
