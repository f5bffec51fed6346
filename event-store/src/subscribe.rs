//! A live subscription to the log: catch up from a cursor, then follow.
//!
//! A background task reads batches ahead of the consumer (one batch in
//! flight while the consumer works on another) and survives database
//! failures: it retries with backoff and resumes after the last event it
//! delivered, so the consumer sees every event once, in log order. It reads
//! only below the append horizon the store's log watcher publishes
//! (`horizon.rs`), and waits for the next one instead of polling.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;

use crate::log::read_below;
use crate::{EventStore, LogCursor, LogFilter, RecordedEvent};

#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    pub filter: LogFilter,
    /// Events fetched per query while catching up.
    pub batch_size: i64,
    /// How long to wait for a new horizon before asking the log watcher
    /// to recompute it anyway (the safety net for a lost wake-up).
    pub poll_interval: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            filter: LogFilter::All,
            batch_size: 1000,
            poll_interval: Duration::from_secs(5),
        }
    }
}

const ERROR_RETRY_FIRST: Duration = Duration::from_millis(50);
const ERROR_RETRY_MAX: Duration = Duration::from_secs(5);

/// The stream of events of a live subscription: see
/// [`EventStore::subscribe`]. Dropping it stops the background reader.
#[derive(Debug)]
pub struct Subscription {
    batches: mpsc::Receiver<Vec<RecordedEvent>>,
    current: std::vec::IntoIter<RecordedEvent>,
}

impl Stream for Subscription {
    type Item = RecordedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RecordedEvent>> {
        loop {
            if let Some(event) = self.current.next() {
                return Poll::Ready(Some(event));
            }
            match self.batches.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.current = batch.into_iter(),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

pub(crate) fn subscribe(
    store: EventStore,
    from: LogCursor,
    options: SubscribeOptions,
) -> Subscription {
    let (sender, batches) = mpsc::channel::<Vec<RecordedEvent>>(2);
    tokio::spawn(follow(store, from, options, sender));
    Subscription {
        batches,
        current: Vec::new().into_iter(),
    }
}

async fn follow(
    store: EventStore,
    mut cursor: LogCursor,
    options: SubscribeOptions,
    sender: mpsc::Sender<Vec<RecordedEvent>>,
) {
    let mut horizons = store.horizons();
    let mut error_delay = ERROR_RETRY_FIRST;
    loop {
        // Marked seen before reading: a newer horizon published during the
        // read wakes the wait below.
        let horizon = *horizons.borrow_and_update();
        if let Some(horizon) = horizon {
            // Everything below the horizon, a batch at a time.
            loop {
                let batch = match read_below(
                    store.pool(),
                    cursor,
                    &options.filter,
                    options.batch_size,
                    horizon,
                )
                .await
                {
                    Ok(batch) => batch,
                    Err(error) => {
                        tracing::warn!(%error, ?cursor, "subscription read failed; retrying");
                        if pause_or_closed(&sender, error_delay).await {
                            return;
                        }
                        error_delay = (error_delay * 2).min(ERROR_RETRY_MAX);
                        continue;
                    }
                };
                error_delay = ERROR_RETRY_FIRST;
                let full = batch.len() as i64 == options.batch_size;
                if let Some(last) = batch.last() {
                    cursor = last.cursor();
                    if sender.send(batch).await.is_err() {
                        return;
                    }
                }
                if !full {
                    break;
                }
            }
        }
        // Nothing more until the horizon moves (`horizon.rs`): wait for
        // it, asking for a fresh one now and then in case a wake-up was lost.
        loop {
            tokio::select! {
                _ = sender.closed() => return,
                changed = horizons.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                _ = tokio::time::sleep(options.poll_interval) => store.refresh_horizon(),
            }
        }
    }
}

/// Waits `delay`; true if the consumer went away meanwhile.
async fn pause_or_closed(sender: &mpsc::Sender<Vec<RecordedEvent>>, delay: Duration) -> bool {
    tokio::select! {
        _ = sender.closed() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}
