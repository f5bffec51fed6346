//! The integration relay: the `integration-relay` subscription, which
//! publishes orderstream's integration contracts (crate `contracts`) from
//! its log to a durable RabbitMQ topic exchange, routing key = contract name.
//!
//! It is a reactor of the subscription runtime whose effect is a publish,
//! so it gets the runtime's ownership and fencing, retries, parking,
//! `/subscriptions` status and metrics for free:
//! - A publish counts as done only when the broker confirmed it (publisher
//!   confirms). The runtime moves the checkpoint past a batch only when
//!   every event of it was handled, so the checkpoint never passes an
//!   unconfirmed message; a crash before the checkpoint republishes with the
//!   same `message_id` (at-least-once, duplicates only as redeliveries).
//! - Per-stream order: the runtime hands a stream's events over one after
//!   another, and `react` returns only when every message of the event was
//!   confirmed; so no message of a stream's event n+1 is published before
//!   all of event n's are confirmed, and a failed event (retried, then
//!   parked) holds back the rest of its stream. Throughput comes from
//!   elsewhere: many streams in flight at once ([`Reactor::concurrency`],
//!   [`RelayConfig::streams_in_flight`]), and an event's messages published
//!   back to back with their confirms awaited together.
//! - `mandatory`: a message no queue is bound for comes back (returned) and
//!   counts as a failure of the handler, like a nack: retried with backoff,
//!   then parked with the events of its stream behind it.
//! - An unreachable broker is an outage, not a failure: the relay drops its
//!   connection, and the runtime retries with backoff (uncounted) until the
//!   broker is back, then goes on from the same event. Nothing else in the
//!   process waits for the broker.

mod message;
mod publisher;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use aggregates::inventory::Inventory;
use aggregates::Aggregate;
use contracts::IntegrationEvent;
use lru::LruCache;

use async_trait::async_trait;
use event_store::{EventStore, FailureClass, RecordedEvent, StreamRead};
use projections::runtime::Subscriber;
use projections::{HandlerError, Reactor};

pub use message::{
    message_traceparent, properties, publish_span, HEADER_CAUSATION_ID, HEADER_LOG_POSITION,
    HEADER_SCHEMA_VERSION, HEADER_STREAM_ID, HEADER_TRACEPARENT,
};
pub use publisher::{PublishError, Publisher};

/// The subscription name operators see.
pub const NAME: &str = projections::catalogue::INTEGRATION_RELAY;

/// Where and how the relay publishes.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `amqp://user:password@host:port/vhost`.
    pub url: String,
    /// A durable topic exchange, declared by the relay when missing.
    pub exchange: String,
    /// How long a connection attempt may take before it counts as an outage.
    pub connect_timeout: Duration,
    /// How long the broker may take to confirm a publish before the
    /// connection is taken for broken.
    pub confirm_timeout: Duration,
    /// Streams whose events are being published at once, each awaiting its
    /// confirms: the confirms in flight that hide the broker's round trip
    /// (and its disk, for durable queues).
    pub streams_in_flight: usize,
}

impl RelayConfig {
    pub const DEFAULT_EXCHANGE: &'static str = "orderstream.events";
    /// At least the runtime's batch (500 events): a batch of events from
    /// distinct streams is in flight all at once.
    pub const DEFAULT_STREAMS_IN_FLIGHT: usize = 512;

    /// The settings for `url`, refused at start-up when it is not an
    /// AMQP URL (the relay would otherwise retry it forever as an outage).
    pub fn parse(url: &str, exchange: &str) -> Result<Self, InvalidRelayConfig> {
        url.parse::<lapin::uri::AMQPUri>()
            .map_err(InvalidRelayConfig::Url)?;
        if exchange.trim().is_empty() || exchange.len() > 255 {
            return Err(InvalidRelayConfig::Exchange(exchange.to_owned()));
        }
        Ok(Self::new(url, exchange))
    }

    pub fn new(url: impl Into<String>, exchange: impl Into<String>) -> Self {
        RelayConfig {
            url: url.into(),
            exchange: exchange.into(),
            connect_timeout: Duration::from_secs(5),
            confirm_timeout: Duration::from_secs(15),
            streams_in_flight: Self::DEFAULT_STREAMS_IN_FLIGHT,
        }
    }
}

/// Inventory streams whose stock the relay keeps between events.
const KEPT_STOCKS: usize = 4096;

/// Streams read back at once to map an event. The relay has hundreds of
/// streams in flight, but the pool is shared with the whole runtime: this
/// keeps its reads to what a reactor of the default concurrency would use.
const HISTORY_READS: usize = 8;

/// Why the relay's settings are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRelayConfig {
    /// The parser's message (it never includes the password).
    #[error("not an AMQP URL (amqp://user:password@host:port/vhost): {0}")]
    Url(String),
    #[error("an exchange name is 1 to 255 characters, got {0:?}")]
    Exchange(String),
}

/// The relay as a subscriber of the runtime.
pub struct IntegrationRelay {
    store: EventStore,
    publisher: Publisher,
    /// The stock of recently seen inventory streams after their last
    /// mapped event (its version): the runtime hands a stream's events over
    /// in order, so the next one maps without reading the stream again (a
    /// busy SKU's stream is long).
    stocks: Mutex<LruCache<String, (i64, Inventory)>>,
    history_reads: Semaphore,
    streams_in_flight: usize,
}

impl IntegrationRelay {
    pub fn new(store: EventStore, config: RelayConfig) -> Self {
        IntegrationRelay {
            store,
            streams_in_flight: config.streams_in_flight.max(1),
            publisher: Publisher::new(config),
            stocks: Mutex::new(LruCache::new(
                NonZeroUsize::new(KEPT_STOCKS).unwrap_or(NonZeroUsize::MIN),
            )),
            history_reads: Semaphore::new(HISTORY_READS),
        }
    }

    /// The messages of `event`, reading the earlier events of its stream
    /// only when the mapping needs them and no kept state will do.
    async fn messages(&self, event: &RecordedEvent) -> Result<Vec<IntegrationEvent>, HandlerError> {
        let permanent = |error| HandlerError::with_class(FailureClass::Permanent, error);
        if event.category() != Inventory::CATEGORY {
            let earlier = if contracts::needs_history(event) {
                self.earlier(event).await?
            } else {
                Vec::new()
            };
            return contracts::integration_events(event, &earlier).map_err(permanent);
        }
        let kept = self
            .stocks
            .lock()
            .ok()
            .and_then(|mut stocks| stocks.pop(&event.stream_id))
            .filter(|(version, _)| *version == event.stream_version - 1)
            .map(|(_, stock)| stock);
        let before = match kept {
            Some(stock) => stock,
            None => contracts::fold_stock(&self.earlier(event).await?).map_err(permanent)?,
        };
        let (messages, after) = contracts::stock_changes(event, before).map_err(permanent)?;
        if let Ok(mut stocks) = self.stocks.lock() {
            stocks.put(event.stream_id.clone(), (event.stream_version, after));
        }
        Ok(messages)
    }

    /// The relay, ready to hand to `SubscriptionRuntime::start_with`.
    pub fn subscriber(store: EventStore, config: RelayConfig) -> Subscriber {
        Subscriber::Reactor(Arc::new(Self::new(store, config)))
    }

    /// The events of `event`'s stream before it, oldest first.
    async fn earlier(&self, event: &RecordedEvent) -> Result<Vec<RecordedEvent>, HandlerError> {
        // Never closed, so an error cannot happen; reading without a permit
        // would still be correct.
        let _permit = self.history_reads.acquire().await.ok();
        let mut earlier = Vec::new();
        let mut next = 1;
        while next < event.stream_version {
            let page = self
                .store
                .read_stream(&event.stream_id, StreamRead::forward_from(next))
                .await?;
            let Some(last) = page.last().map(|e| e.stream_version) else {
                break;
            };
            earlier.extend(
                page.into_iter()
                    .filter(|e| e.stream_version < event.stream_version),
            );
            next = last + 1;
        }
        Ok(earlier)
    }
}

#[async_trait]
impl Reactor for IntegrationRelay {
    fn name(&self) -> &'static str {
        NAME
    }

    fn concurrency(&self) -> Option<usize> {
        Some(self.streams_in_flight)
    }

    /// Returns only once the broker confirmed every message of `event`.
    ///
    /// Why this keeps each stream's order, failures included: the runtime
    /// awaits this before it hands over the stream's next event, so that
    /// event's messages are published only after all of this one's were
    /// confirmed. If one of them is returned, nacked or not confirmed, this
    /// fails as a whole: the runtime retries the event (every message
    /// again, with the same message ids) and at last parks it, and parks
    /// the stream's later events behind it untried; none of them is
    /// published or checkpointed until the operator replays. The messages
    /// of this one event are in flight together (`publish_all`); one after
    /// a failed one may already sit in a queue, but it is the same source
    /// event (same log position), republished with the same id by the
    /// retry. For a returned message not even that is visible: it was
    /// returned because no queue is bound for it, so a queue that took a
    /// sibling never sees it (until its bindings change).
    async fn react(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        let messages = self.messages(event).await?;
        self.publisher
            .publish_all(event, &messages)
            .await
            .map_err(PublishError::into_handler_error)
    }
}

/// Why the relay is off, for `serve`'s one line.
pub const OFF_MESSAGE: &str =
    "integration relay off: ORDERSTREAM_AMQP_URL is not set (no events are published to a broker)";
