//! The test's own view of what the relay published: a queue bound to every
//! contract, and what the log says should be on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use event_store::{EventStore, LogCursor, RecordedEvent, StoreOptions};
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::ExchangeKind;
use rabbitmq_embedded::TestBroker;
use serde_json::Value;

/// One message as the test's own queue received it.
pub struct Delivered {
    pub message_id: String,
    pub contract: String,
    pub body: Value,
    pub stream_id: String,
    pub log_position: i64,
}

/// A message the log says the relay owes.
pub struct Expected {
    contract: &'static str,
    body: Value,
}

fn text_header(headers: &FieldTable, name: &str) -> Option<String> {
    match headers.inner().get(name)? {
        AMQPValue::LongString(text) => Some(text.to_string()),
        AMQPValue::ShortString(text) => Some(text.to_string()),
        _ => None,
    }
}

fn number_header(headers: &FieldTable, name: &str) -> Option<i64> {
    match headers.inner().get(name)? {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// Binds a queue of the test's own to every contract and records what
/// arrives. Exclusive: it goes with the connection.
pub async fn audit(url: &str, exchange: &str) -> (lapin::Connection, Arc<Mutex<Vec<Delivered>>>) {
    let connection = rabbitmq_embedded::connect_amqp(url)
        .await
        .expect("the audit connection");
    let channel = connection.create_channel().await.expect("channel");
    // As the relay and Finance declare it.
    channel
        .exchange_declare(
            exchange,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare the exchange");
    let queue = TestBroker::unique_name("crash-audit");
    channel
        .queue_declare(
            &queue,
            QueueDeclareOptions {
                exclusive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare the audit queue");
    channel
        .queue_bind(
            &queue,
            exchange,
            "#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind the audit queue");
    let mut consumer = channel
        .basic_consume(
            &queue,
            "crash-audit",
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume the audit queue");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let headers = delivery.properties.headers().clone().unwrap_or_default();
            let record = Delivered {
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                contract: delivery
                    .properties
                    .kind()
                    .as_ref()
                    .map(|kind| kind.to_string())
                    .unwrap_or_default(),
                body: serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
                stream_id: text_header(&headers, relay::HEADER_STREAM_ID).unwrap_or_default(),
                log_position: number_header(&headers, relay::HEADER_LOG_POSITION).unwrap_or(-1),
            };
            sink.lock().expect("audit lock").push(record);
        }
    });
    (connection, seen)
}

/// The messages the events of the log map to, by message id, and how many
/// events there are.
pub async fn expected_messages(url: &str) -> (HashMap<String, Expected>, usize) {
    let store = EventStore::connect(url, &StoreOptions::default())
        .await
        .expect("orderstream's database");
    let mut streams: HashMap<String, Vec<RecordedEvent>> = HashMap::new();
    let mut expected = HashMap::new();
    let mut events = 0;
    let mut after = LogCursor::START;
    loop {
        let page = store.read_log(after, 500).await.expect("read the log");
        let Some(last) = page.last() else { break };
        after = LogCursor {
            transaction_id: last.transaction_id,
            position: last.position,
        };
        for event in page {
            events += 1;
            let earlier = streams.entry(event.stream_id.clone()).or_default();
            let messages = contracts::integration_events(&event, earlier.as_slice());
            for message in messages.expect("map an event") {
                let body = message.payload.clone();
                expected.insert(
                    message.message_id.to_string(),
                    Expected {
                        contract: message.name,
                        body,
                    },
                );
            }
            earlier.push(event);
        }
    }
    (expected, events)
}

/// Checks what the audit queue saw against the log: every message owed,
/// nothing else, each id with one body (the one the log maps to), and per
/// stream, first deliveries in log order. Returns the redeliveries.
pub fn check_published(seen: &[Delivered], expected: &HashMap<String, Expected>) -> usize {
    let mut first: HashMap<&str, &Delivered> = HashMap::new();
    let mut last_position: HashMap<&str, i64> = HashMap::new();
    for delivered in seen.iter() {
        // Else the order check below would compare nothing.
        assert!(
            delivered.log_position > 0 && !delivered.stream_id.is_empty(),
            "{} {} without its stream_id and log_position headers",
            delivered.contract,
            delivered.message_id
        );
        let Some(owed) = expected.get(&delivered.message_id) else {
            panic!(
                "{} {} was published but no event of the log maps to it",
                delivered.contract, delivered.message_id
            );
        };
        assert_eq!(
            delivered.contract, owed.contract,
            "{}",
            delivered.message_id
        );
        assert_eq!(
            delivered.body, owed.body,
            "{} {}: a body other than the log's",
            delivered.contract, delivered.message_id
        );
        if let Some(earlier) = first.get(delivered.message_id.as_str()) {
            assert_eq!(earlier.body, delivered.body, "one message id, two bodies");
            continue;
        }
        first.insert(delivered.message_id.as_str(), delivered);
        let position = last_position.entry(&delivered.stream_id).or_insert(0);
        assert!(
            delivered.log_position >= *position,
            "stream {}: {} (log position {}) first delivered after log position {}",
            delivered.stream_id,
            delivered.message_id,
            delivered.log_position,
            position
        );
        *position = delivered.log_position;
    }
    assert_eq!(
        first.len(),
        expected.len(),
        "every message owed was published"
    );
    seen.len() - first.len()
}
