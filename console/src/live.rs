//! `/console/live`: server-sent events that keep every page current.
//!
//! One follower per process reads the log through
//! [`EventStore::subscribe`], which sleeps until the store's wake-ups (an
//! append here, a `NOTIFY` from another process) say there is something
//! new, and broadcasts each batch to the open pages (`events`). Each page's
//! stream also sends the subscription overview (`overview`): right away,
//! shortly after each batch of events or operator action, then every
//! half second only while something moves that appends nothing (a
//! subscription catching up; every tenth of a second during a rebuild),
//! and otherwise once every idle period. No table is polled while nothing happens.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use event_store::{EventStore, RecordedEvent, SubscribeOptions};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use crate::error::ConsoleError;
use crate::overview::{overview, Overview};
use crate::ConsoleState;

/// After a batch of events, the overview is sent again within this.
const AFTER_EVENTS: Duration = Duration::from_millis(250);
/// While something settles without appending.
const SETTLING: Duration = Duration::from_millis(500);
/// While a rebuild runs: its progress bar moves smoothly.
const REBUILDING: Duration = Duration::from_millis(100);
/// Owners, states and lag in seconds change without appends too.
const IDLE: Duration = Duration::from_secs(10);
/// Events per broadcast batch.
const BATCH: usize = 500;

/// An event as the live views need it: where, what, and its links.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventSummary {
    pub position: i64,
    pub stream_id: String,
    pub version: i64,
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<Uuid>,
}

impl From<&RecordedEvent> for EventSummary {
    fn from(event: &RecordedEvent) -> Self {
        EventSummary {
            position: event.position,
            stream_id: event.stream_id.clone(),
            version: event.stream_version,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            recorded_at: event.recorded_at,
            correlation_id: event.correlation_id.as_ref().map(|id| id.to_string()),
            causation_id: event.causation_id,
        }
    }
}

type Batch = Arc<Vec<EventSummary>>;

/// How far back the lag chart reaches. Samples are taken while a console
/// page is open: the chart has gaps where none was.
const HISTORY: chrono::Duration = chrono::Duration::minutes(10);

#[derive(Debug, Clone, Copy, Serialize)]
pub struct LagSample {
    pub at: DateTime<Utc>,
    pub events: i64,
    pub seconds: f64,
}

#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    store: EventStore,
    /// The largest lag of every overview computed in the last
    /// [`HISTORY`], for the lag chart of a page just opened.
    lag_history: Mutex<VecDeque<LagSample>>,
    events: broadcast::Sender<Batch>,
    /// Counts operator actions: the overview says which it has seen.
    actions: watch::Sender<u64>,
    follower: OnceLock<JoinHandle<()>>,
    /// True once the process is asked to stop: the streams end.
    closing: watch::Sender<bool>,
    signals: OnceLock<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in [self.follower.get(), self.signals.get()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

impl Live {
    pub fn new(store: EventStore) -> Self {
        Live {
            inner: Arc::new(Inner {
                store,
                lag_history: Mutex::new(VecDeque::new()),
                events: broadcast::channel(64).0,
                actions: watch::Sender::new(0),
                follower: OnceLock::new(),
                closing: watch::Sender::new(false),
                signals: OnceLock::new(),
            }),
        }
    }

    /// An operator action went through: returns its number.
    pub fn nudge(&self) -> u64 {
        self.inner
            .actions
            .send_modify(|count| *count = count.wrapping_add(1));
        *self.inner.actions.borrow()
    }

    /// Records an overview's largest lag (one sample a second at most) and
    /// returns the samples of the last [`HISTORY`].
    fn record_lag(&self, overview: &Overview) -> Vec<LagSample> {
        let sample = LagSample {
            at: overview.at,
            events: overview
                .subscriptions
                .iter()
                .map(|s| s.lag)
                .max()
                .unwrap_or(0),
            seconds: overview
                .subscriptions
                .iter()
                .map(|s| s.lag_seconds)
                .fold(0.0, f64::max),
        };
        // A panic while holding the lock leaves a valid deque.
        let mut history = self
            .inner
            .lag_history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let recent = history
            .back()
            .is_some_and(|last| sample.at - last.at < chrono::Duration::seconds(1));
        if !recent {
            history.push_back(sample);
        }
        let oldest = sample.at - HISTORY;
        while history.front().is_some_and(|first| first.at < oldest) {
            history.pop_front();
        }
        history.iter().copied().collect()
    }

    fn subscribe(&self) -> Receivers {
        self.inner.follower.get_or_init(|| {
            tokio::spawn(follow(self.inner.store.clone(), self.inner.events.clone()))
        });
        self.inner
            .signals
            .get_or_init(|| tokio::spawn(close_on_signal(self.inner.closing.clone())));
        Receivers {
            events: self.inner.events.subscribe(),
            actions: self.inner.actions.subscribe(),
            closing: self.inner.closing.subscribe(),
        }
    }
}

struct Receivers {
    events: broadcast::Receiver<Batch>,
    actions: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
}

/// An event stream never ends by itself, so a graceful shutdown would wait
/// its whole grace period for each open page. The streams end on the
/// signals on which `orderstream serve` shuts down (the binary listens for
/// them already, so listening here changes no signal's effect); the pages'
/// `EventSource` reconnects to whichever server comes next.
async fn close_on_signal(closing: watch::Sender<bool>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "console: cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    closing.send_replace(true);
}

async fn follow(store: EventStore, sender: broadcast::Sender<Batch>) {
    let head = loop {
        match store.head().await {
            Ok(head) => break head,
            Err(error) => {
                tracing::warn!(%error, "console: cannot read the log head; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut batches = store
        .subscribe(head, SubscribeOptions::default())
        .ready_chunks(BATCH);
    while let Some(batch) = batches.next().await {
        // No page open is no error: the next one subscribes.
        let _ = sender.send(Arc::new(batch.iter().map(EventSummary::from).collect()));
    }
}

pub async fn stream(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ConsoleError> {
    let (id, _) = state.sessions.of(&headers)?;
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(feed(state, id, sender));
    Ok(Sse::new(ReceiverStream::new(receiver).map(Ok)).keep_alive(KeepAlive::default()))
}

fn json_event(name: &str, data: &impl Serialize) -> Option<Event> {
    Event::default().event(name).json_data(data).ok()
}

/// One page's stream, until the page goes or its session ends.
async fn feed(state: ConsoleState, session_id: String, sender: mpsc::Sender<Event>) {
    let Receivers {
        mut events,
        mut actions,
        mut closing,
    } = state.live.subscribe();
    let mut next_overview = Instant::now();
    let mut first_overview = true;
    loop {
        tokio::select! {
            _ = sender.closed() => return,
            changed = closing.changed() => {
                let stop = changed.is_err() || *closing.borrow_and_update();
                if stop {
                    let _ = sender.send(Event::default().event("closing").data("{}")).await;
                    return;
                }
            }
            batch = events.recv() => {
                let event = match batch {
                    Ok(batch) => json_event("events", &*batch),
                    // Too slow a page missed events: it reloads its data.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        Some(Event::default().event("resync").data("{}"))
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if let Some(event) = event {
                    if sender.send(event).await.is_err() {
                        return;
                    }
                }
                next_overview = next_overview.min(Instant::now() + AFTER_EVENTS);
            }
            changed = actions.changed() => {
                if changed.is_err() {
                    return;
                }
                next_overview = Instant::now();
            }
            () = tokio::time::sleep_until(next_overview) => {
                let Ok((_, session)) = state.sessions.of_id(&session_id) else {
                    let _ = sender.send(Event::default().event("logged-out").data("{}")).await;
                    return;
                };
                let seen = *actions.borrow_and_update();
                match overview(&state.api, &state.store, &state.finance, &session.token).await {
                    Ok(overview) => {
                        let history = state.live.record_lag(&overview);
                        next_overview = Instant::now()
                            + if overview.rebuilding() {
                                REBUILDING
                            } else if overview.settling() {
                                SETTLING
                            } else {
                                IDLE
                            };
                        // The page keeps its own samples after the first.
                        let body = if first_overview {
                            first_overview = false;
                            serde_json::json!({"actions": seen, "overview": overview, "lag_history": history})
                        } else {
                            serde_json::json!({"actions": seen, "overview": overview})
                        };
                        if let Some(event) = json_event("overview", &body) {
                            if sender.send(event).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(error) => {
                        next_overview = Instant::now() + SETTLING.max(Duration::from_secs(2));
                        let problem = serde_json::json!({
                            "status": error.status().as_u16(),
                            "detail": error.to_string(),
                        });
                        if let Some(event) = json_event("problem", &problem) {
                            if sender.send(event).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}
