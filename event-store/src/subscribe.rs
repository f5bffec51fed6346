//! A live subscription to the log: catch up from a cursor, then follow.
//!
//! A background task reads batches ahead of the consumer (one batch in
//! flight while the consumer works on another) and survives database
//! failures: it retries with backoff and resumes after the last event it
//! delivered, so the consumer sees every event once, in log order.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;

use crate::log::{has_pending_after, read_after};
use crate::{EventStore, LogCursor, LogFilter, RecordedEvent};

#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    pub filter: LogFilter,
    /// Events fetched per query while catching up.
    pub batch_size: i64,
    /// The safety-net re-read when no wake-up arrives.
    pub poll_interval: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            filter: LogFilter::All,
            batch_size: 1000,
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// Committed events can be invisible for a moment behind an older, still
/// running transaction; while that is so, look again after these delays
/// rather than wait for a wake-up that the other transaction will not send.
/// Writing transactions are short (an append, a projection batch), so the
/// pauses stay short too: a long pause here is added to every hop of the
/// choreography.
const HORIZON_RETRY_FIRST: Duration = Duration::from_micros(500);
const HORIZON_RETRY_MAX: Duration = Duration::from_millis(5);
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
    let mut wakeups = store.wakeups().subscribe();
    let mut error_delay = ERROR_RETRY_FIRST;
    let mut horizon_delay = HORIZON_RETRY_FIRST;
    loop {
        // Mark wake-ups seen *before* reading, so one that arrives during
        // the read is not lost.
        wakeups.borrow_and_update();
        let batch =
            match read_after(store.pool(), cursor, &options.filter, options.batch_size).await {
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
            horizon_delay = HORIZON_RETRY_FIRST;
            if sender.send(batch).await.is_err() {
                return;
            }
            if full {
                continue;
            }
        }
        let pending = has_pending_after(store.pool(), cursor, &options.filter)
            .await
            .unwrap_or(false);
        if pending {
            if pause_or_closed(&sender, horizon_delay).await {
                return;
            }
            horizon_delay = (horizon_delay * 2).min(HORIZON_RETRY_MAX);
            continue;
        }
        tokio::select! {
            _ = sender.closed() => return,
            changed = wakeups.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(options.poll_interval) => {}
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
