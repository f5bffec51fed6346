//! One AMQP connection with a confirming channel, (re)opened on demand:
//! any connection or channel error drops it, and the next publish opens a
//! new one. The runtime's retry loop supplies the backoff between tries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use contracts::IntegrationEvent;
use event_store::{FailureClass, RecordedEvent};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use projections::HandlerError;
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::message::{message_traceparent, properties, publish_span};
use crate::RelayConfig;

/// Counter of publishes by outcome (`confirmed`, `nacked`, `returned`,
/// `broker_unavailable`).
pub const RELAY_PUBLISHES: &str = "orderstream_relay_publishes_total";
/// Counter of connections the relay opened to the broker.
pub const RELAY_CONNECTIONS: &str = "orderstream_relay_connections_total";

/// Why a message was not confirmed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    #[error("the broker cannot be reached: {0}")]
    Unavailable(String),
    #[error("no queue is bound for {contract} on exchange {exchange:?}: the broker returned the message")]
    Returned {
        contract: &'static str,
        exchange: String,
    },
    #[error("the broker refused (nacked) {contract}")]
    Nacked { contract: &'static str },
}

impl PublishError {
    /// An outage is waited out; a refusal counts toward parking the event.
    pub fn into_handler_error(self) -> HandlerError {
        let class = match self {
            PublishError::Unavailable(_) => FailureClass::Unavailable,
            PublishError::Returned { .. } | PublishError::Nacked { .. } => FailureClass::Permanent,
        };
        HandlerError::with_class(class, self)
    }
}

struct Link {
    connection: Connection,
    channel: Channel,
    generation: u64,
}

pub struct Publisher {
    config: RelayConfig,
    link: Mutex<Option<Link>>,
    generations: AtomicU64,
}

impl Publisher {
    pub fn new(config: RelayConfig) -> Self {
        Publisher {
            config,
            link: Mutex::new(None),
            generations: AtomicU64::new(0),
        }
    }

    /// Publishes `message` and waits for the broker's confirm.
    pub async fn publish(
        &self,
        event: &RecordedEvent,
        message: &IntegrationEvent,
    ) -> Result<(), PublishError> {
        self.publish_all(event, std::slice::from_ref(message)).await
    }

    /// Publishes the messages of one source event back to back on one
    /// channel, then awaits their confirms in publish order; the first
    /// message not confirmed (returned, nacked, or no confirm in time) is
    /// the error. Every message's outcome is counted.
    ///
    /// All of them are in flight at once, so an event of several messages
    /// costs one confirm round trip, not one per message. Order: they go
    /// out in order on one channel (AMQP keeps a channel's order into each
    /// queue), and the caller treats any failure as a failure of the whole
    /// event, which is retried (all its messages again, same ids) and then
    /// parked with its stream's later events behind it (see `lib.rs`).
    pub async fn publish_all(
        &self,
        event: &RecordedEvent,
        messages: &[IntegrationEvent],
    ) -> Result<(), PublishError> {
        if messages.is_empty() {
            return Ok(());
        }
        let (channel, generation) = self.channel().await?;
        let timeout = self.config.confirm_timeout;
        let outcomes = match tokio::time::timeout(timeout, async {
            let mut confirms = Vec::with_capacity(messages.len());
            for message in messages {
                // One publish span per message; its context travels in the
                // message's `traceparent`, so Finance's consume span is
                // its child.
                let span = publish_span(&self.config.exchange, message);
                let traceparent = message_traceparent(&span, event);
                let confirm = channel
                    .basic_publish(
                        &self.config.exchange,
                        message.name,
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        &message.body(),
                        properties(event, message, traceparent.as_ref()),
                    )
                    .instrument(span.clone())
                    .await?;
                confirms.push((confirm, span));
            }
            let mut outcomes = Vec::with_capacity(confirms.len());
            for (message, (confirm, span)) in messages.iter().zip(confirms) {
                outcomes.push(self.outcome(message, confirm.instrument(span).await));
            }
            Ok::<_, lapin::Error>(outcomes)
        })
        .await
        {
            Ok(Ok(outcomes)) => outcomes,
            // The channel failed before every message was out: count them
            // all as undelivered, as the broker may hold none of them.
            Ok(Err(error)) => {
                vec![Err(PublishError::Unavailable(error.to_string())); messages.len()]
            }
            Err(_) => vec![
                Err(PublishError::Unavailable(format!(
                    "no confirm within {timeout:?}"
                )));
                messages.len()
            ],
        };
        for outcome in &outcomes {
            let label = match outcome {
                Ok(()) => "confirmed",
                Err(PublishError::Returned { .. }) => "returned",
                Err(PublishError::Nacked { .. }) => "nacked",
                Err(PublishError::Unavailable(_)) => "broker_unavailable",
            };
            metrics::counter!(RELAY_PUBLISHES, "outcome" => label).increment(1);
        }
        if outcomes
            .iter()
            .any(|outcome| matches!(outcome, Err(PublishError::Unavailable(_))))
        {
            self.drop_link(generation).await;
        }
        outcomes
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    fn outcome(
        &self,
        message: &IntegrationEvent,
        confirmed: Result<Confirmation, lapin::Error>,
    ) -> Result<(), PublishError> {
        match confirmed {
            Ok(Confirmation::Ack(None)) => Ok(()),
            Ok(Confirmation::Ack(Some(_))) => Err(PublishError::Returned {
                contract: message.name,
                exchange: self.config.exchange.clone(),
            }),
            Ok(Confirmation::Nack(_)) => Err(PublishError::Nacked {
                contract: message.name,
            }),
            // The channel is in confirm mode: an unrequested confirm means
            // it is not the channel this publisher set up.
            Ok(Confirmation::NotRequested) => Err(PublishError::Unavailable(
                "the channel is not in confirm mode".into(),
            )),
            Err(error) => Err(PublishError::Unavailable(error.to_string())),
        }
    }

    /// The open channel, opening a connection first when there is none.
    async fn channel(&self) -> Result<(Channel, u64), PublishError> {
        let mut link = self.link.lock().await;
        if let Some(open) = link.as_ref() {
            if open.channel.status().connected() {
                return Ok((open.channel.clone(), open.generation));
            }
        }
        if let Some(broken) = link.take() {
            close(broken).await;
        }
        let (connection, channel) =
            tokio::time::timeout(self.config.connect_timeout, self.connect())
                .await
                .map_err(|_| {
                    PublishError::Unavailable(format!(
                        "no connection within {:?}",
                        self.config.connect_timeout
                    ))
                })?
                .map_err(|error| PublishError::Unavailable(error.to_string()))?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::counter!(RELAY_CONNECTIONS).increment(1);
        tracing::info!(exchange = %self.config.exchange, generation, "integration relay connected to the broker");
        *link = Some(Link {
            connection,
            channel: channel.clone(),
            generation,
        });
        Ok((channel, generation))
    }

    async fn connect(&self) -> Result<(Connection, Channel), lapin::Error> {
        let connection = Connection::connect(
            &self.config.url,
            ConnectionProperties::default()
                .with_connection_name("orderstream integration-relay".into())
                // The workspace builds lapin without its own runtime.
                .with_executor(tokio_executor_trait::Tokio::current())
                .with_reactor(tokio_reactor_trait::Tokio::current()),
        )
        .await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channel
            .exchange_declare(
                &self.config.exchange,
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok((connection, channel))
    }

    /// Forgets the connection of `generation` (not a newer one another
    /// publish opened meanwhile).
    async fn drop_link(&self, generation: u64) {
        let mut link = self.link.lock().await;
        if link
            .as_ref()
            .is_some_and(|open| open.generation == generation)
        {
            if let Some(broken) = link.take() {
                close(broken).await;
            }
        }
    }

    /// Closes the connection now (tests: as a broker restart would).
    pub async fn disconnect(&self) {
        if let Some(open) = self.link.lock().await.take() {
            close(open).await;
        }
    }
}

/// Closes a connection, waiting briefly: a dead broker does not answer.
async fn close(link: Link) {
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        link.connection.close(320, "orderstream relay reconnecting"),
    )
    .await;
}
