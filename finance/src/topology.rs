//! Finance's queues on the broker, and how a failing message moves through
//! them:
//!
//! ```text
//! exchange (topic) --contract keys--> inbox queue --consumer--> journal
//!                                          ^   |
//!       TTL expires: dead-lettered back    |   | failed attempt n (n < delays)
//!       through the default exchange       |   v
//!                                   <queue>.retry.<delay>ms (x-message-ttl)
//!                                              | failed after the last delay
//!                                              v
//!                                      dead-letter queue (finance.dead)
//! ```
//!
//! One retry queue per delay, named after it: a queue's TTL is fixed when it
//! is declared, so changing the delays declares new queues instead of
//! failing on the old ones' arguments.

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

/// The binding key that matches every routing key of the topic exchange.
const ALL_CONTRACTS: &str = "#";

pub const DEFAULT_EXCHANGE: &str = "orderstream.events";
pub const DEFAULT_QUEUE: &str = "finance.inbox";
pub const DEFAULT_DEAD_LETTER_QUEUE: &str = "finance.dead";
pub const DEFAULT_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(10),
    Duration::from_secs(60),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The topic exchange the relay publishes to.
    pub exchange: String,
    /// Finance's durable inbox queue.
    pub queue: String,
    pub dead_letter_queue: String,
    /// Delay before retry n+1 of a failing message; after the last one it
    /// is dead-lettered. Empty: dead-lettered on the first failure.
    pub retry_delays: Vec<Duration>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            exchange: DEFAULT_EXCHANGE.to_owned(),
            queue: DEFAULT_QUEUE.to_owned(),
            dead_letter_queue: DEFAULT_DEAD_LETTER_QUEUE.to_owned(),
            retry_delays: DEFAULT_RETRY_DELAYS.to_vec(),
        }
    }
}

impl Topology {
    /// The retry queue holding a message for `delay` before it returns.
    pub fn retry_queue(&self, delay: Duration) -> String {
        format!("{}.retry.{}ms", self.queue, delay.as_millis())
    }

    /// Declares the exchange, the queues and the bindings (idempotent; the
    /// relay declares the same exchange with the same arguments).
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .exchange_declare(
                &self.exchange,
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(&self.queue, durable, FieldTable::default())
            .await?;
        // Every contract, not only the ones booked (`CONSUMED`): the relay
        // publishes with `mandatory` and parks what no queue takes, so the
        // only consumer of the estate takes all and acks what it does not
        // book. A consumer beside it may bind narrower keys.
        channel
            .queue_bind(
                &self.queue,
                &self.exchange,
                ALL_CONTRACTS,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        for delay in &self.retry_delays {
            let mut arguments = FieldTable::default();
            let ttl_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl_ms));
            // Expired messages go back to the inbox queue by name through
            // the default exchange, not through the topic exchange: other
            // subscribers of the contract must not see Finance's retries.
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString("".into()),
            );
            arguments.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(self.queue.as_str().into()),
            );
            channel
                .queue_declare(&self.retry_queue(*delay), durable, arguments)
                .await?;
        }
        channel
            .queue_declare(&self.dead_letter_queue, durable, FieldTable::default())
            .await?;
        Ok(())
    }
}

/// Connects with tokio as lapin's executor and reactor.
pub async fn connect(amqp_url: &str) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default()
        .with_connection_name("orderstream-finance".into())
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    Connection::connect(amqp_url, properties).await
}
