//! Read your writes: a read model's row when it has caught up with its
//! stream, else the aggregate folded from the stream. Read models follow
//! the log a moment behind the writes; a client that has just written
//! must still see its write.

use std::future::Future;

use aggregates::Aggregate;
use commands::{CommandExecutor, ExecuteError, Loaded};
use event_store::{RecordedEvent, StreamRead};

use super::orders::OrderSummary;
use super::stock::StockView;

/// A read model row that knows how far it has read its stream.
pub trait CaughtUp {
    /// Whether the row already reflects `last`, its stream's last event.
    fn reflects(&self, last: &RecordedEvent) -> bool;
}

impl CaughtUp for OrderSummary {
    fn reflects(&self, last: &RecordedEvent) -> bool {
        self.version >= last.stream_version
    }
}

impl CaughtUp for StockView {
    // A stream's positions grow with its versions (appends to one stream
    // are serialised before they take positions).
    fn reflects(&self, last: &RecordedEvent) -> bool {
        self.position >= last.position
    }
}

/// The current state of one aggregate, from wherever was up to date.
#[derive(Debug)]
pub enum Current<V, A> {
    /// The read model's row: it reflects the stream's last event.
    ReadModel(V),
    /// The aggregate, folded from the stream, because the read model lags
    /// behind it (or has no row yet).
    Aggregate(Loaded<A>),
}

/// The read model's row (from `row`) if it reflects the last event of
/// `stream_id`, else the aggregate loaded from the stream; `None` when the
/// stream has no event. The row and the stream's last event are read
/// concurrently.
pub async fn read_model_or_aggregate<A, V>(
    executor: &CommandExecutor,
    stream_id: &str,
    row: impl Future<Output = Result<Option<V>, sqlx::Error>>,
) -> Result<Option<Current<V, A>>, ExecuteError<A::Error>>
where
    A: Aggregate,
    V: CaughtUp,
{
    let last = async {
        executor
            .store()
            .read_stream(stream_id, StreamRead::backward().limit(1))
            .await
            .map(|events| events.into_iter().next())
    };
    let (row, last) = tokio::try_join!(
        async { row.await.map_err(event_store::StoreError::from) },
        last
    )?;
    let Some(last) = last else {
        return Ok(None);
    };
    if let Some(row) = row.filter(|row| row.reflects(&last)) {
        return Ok(Some(Current::ReadModel(row)));
    }
    Ok(Some(Current::Aggregate(
        executor.load::<A>(stream_id).await?,
    )))
}
