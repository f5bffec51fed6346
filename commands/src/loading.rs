//! Loading an aggregate: latest snapshot plus later events, or a full fold
//! up to a point in the past.

use aggregates::{Aggregate, DomainEvent};
use event_store::{AsOf, EventStore, RecordedEvent, StreamRead};

use crate::ExecuteError;

/// An aggregate's state and the stream version it reflects.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    pub stream_id: String,
    pub state: A,
    /// The version of the last event folded in (0: the stream is empty).
    pub version: i64,
}

/// Events are folded page by page: a long stream never sits in memory whole.
const PAGE: i64 = 1000;

/// The current state, from the latest usable snapshot plus later events.
pub(crate) async fn load<A: Aggregate, E>(
    store: &EventStore,
    stream_id: &str,
    use_snapshots: bool,
) -> Result<Loaded<A>, ExecuteError<E>> {
    let mut loaded = Loaded {
        stream_id: stream_id.to_owned(),
        state: A::default(),
        version: 0,
    };
    if use_snapshots {
        if let Some(snapshot) = store.load_snapshot(stream_id).await? {
            // A snapshot of another shape is ignored, never an error: it is
            // only an optimisation and the events are the truth.
            if snapshot.schema_version == A::SNAPSHOT_VERSION {
                match serde_json::from_value::<A>(snapshot.state) {
                    Ok(state) => {
                        loaded.state = state;
                        loaded.version = snapshot.stream_version;
                    }
                    Err(error) => {
                        tracing::warn!(%stream_id, %error, "ignoring an unreadable snapshot");
                    }
                }
            }
        }
    }
    fold_pages(store, &mut loaded, None).await?;
    Ok(loaded)
}

/// The state as it was at `as_of`: a full fold of the events up to it.
pub(crate) async fn load_as_of<A: Aggregate, E>(
    store: &EventStore,
    stream_id: &str,
    as_of: AsOf,
) -> Result<Loaded<A>, ExecuteError<E>> {
    let mut loaded = Loaded {
        stream_id: stream_id.to_owned(),
        state: A::default(),
        version: 0,
    };
    fold_pages(store, &mut loaded, Some(as_of)).await?;
    Ok(loaded)
}

async fn fold_pages<A: Aggregate, E>(
    store: &EventStore,
    loaded: &mut Loaded<A>,
    as_of: Option<AsOf>,
) -> Result<(), ExecuteError<E>> {
    loop {
        let read = StreamRead {
            as_of,
            ..StreamRead::forward_from(loaded.version + 1).limit(PAGE)
        };
        let page = store.read_stream(&loaded.stream_id, read).await?;
        let full = page.len() as i64 == PAGE;
        for recorded in &page {
            let event = decode::<A, E>(recorded)?;
            loaded.state = std::mem::take(&mut loaded.state).apply(&event);
            loaded.version = recorded.stream_version;
        }
        if !full {
            return Ok(());
        }
    }
}

pub(crate) fn decode<A: Aggregate, E>(
    recorded: &RecordedEvent,
) -> Result<A::Event, ExecuteError<E>> {
    A::Event::from_stored(
        &recorded.event_type,
        recorded.schema_version,
        recorded.data.clone(),
    )
    .map_err(|source| ExecuteError::Decode {
        stream_id: recorded.stream_id.clone(),
        version: recorded.stream_version,
        source,
    })
}
