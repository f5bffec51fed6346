//! Test helpers: the broker, a unique topology per test, a contract
//! publisher (as the relay publishes, per the integration contracts), and
//! polling with a deadline.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use finance::topology::{self, Topology};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

/// The broker the tests use: `ORDERSTREAM_TEST_AMQP_URL`, or a private
/// node started once per test process (`rabbitmq-embedded`); each test
/// isolates itself with names of its own ([`unique_topology`]).
pub async fn amqp_url() -> String {
    match rabbitmq_embedded::TestBroker::shared().await {
        Ok(broker) => broker.url().to_owned(),
        Err(error) => panic!("these tests need RabbitMQ: {error}"),
    }
}

/// Exchange and queues of their own, so tests run in parallel; short
/// retry delays (100, 200, 400 ms).
pub fn unique_topology() -> Topology {
    let id = Uuid::new_v4().simple().to_string();
    Topology {
        exchange: format!("test.{id}.events"),
        queue: format!("test.{id}.finance.inbox"),
        dead_letter_queue: format!("test.{id}.finance.dead"),
        retry_delays: vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400),
        ],
    }
}

pub async fn delete_topology(topology: &Topology) {
    let Ok(connection) = topology::connect(&amqp_url().await).await else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    let mut queues = vec![topology.queue.clone(), topology.dead_letter_queue.clone()];
    queues.extend(
        topology
            .retry_delays
            .iter()
            .map(|d| topology.retry_queue(*d)),
    );
    for queue in queues {
        let _ = channel
            .queue_delete(&queue, QueueDeleteOptions::default())
            .await;
    }
    let _ = channel
        .exchange_delete(&topology.exchange, ExchangeDeleteOptions::default())
        .await;
}

/// Publishes contract messages the way the relay does.
pub struct Publisher {
    _connection: Connection,
    channel: Channel,
    exchange: String,
}

impl Publisher {
    pub async fn new(topology: &Topology) -> Publisher {
        let connection = topology::connect(&amqp_url().await)
            .await
            .expect("connect to the broker");
        let channel = connection.create_channel().await.expect("channel");
        // Declares the exchange and Finance's queue as a deployed Finance
        // would have: messages published before it consumes wait there.
        topology.declare(&channel).await.expect("declare topology");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        Publisher {
            _connection: connection,
            channel,
            exchange: topology.exchange.clone(),
        }
    }

    pub async fn publish(&self, message: &Message) {
        self.publish_with(message, |properties| properties).await;
    }

    /// Publishes with an AMQP timestamp (unix seconds), as the relay sets
    /// it to when the source event was recorded.
    pub async fn publish_at(&self, message: &Message, timestamp: u64) {
        self.publish_with(message, |properties| properties.with_timestamp(timestamp))
            .await;
    }

    async fn publish_with(
        &self,
        message: &Message,
        adjust: impl FnOnce(BasicProperties) -> BasicProperties,
    ) {
        let mut headers = FieldTable::default();
        headers.insert(
            "stream_id".into(),
            AMQPValue::LongString(format!("order-{}", message.order_id).into()),
        );
        headers.insert("schema_version".into(), AMQPValue::LongInt(1));
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(message.message_id.as_str().into())
            .with_correlation_id(message.order_id.as_str().into())
            .with_type(message.contract.into())
            .with_app_id("orderstream".into())
            .with_headers(headers);
        let properties = adjust(properties);
        let confirmation = self
            .channel
            .basic_publish(
                &self.exchange,
                message.contract,
                BasicPublishOptions::default(),
                message.payload.as_bytes(),
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirmation.is_ack(), "the broker nacked a test publish");
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub message_id: String,
    pub contract: &'static str,
    pub order_id: String,
    pub payload: String,
}

pub fn shipped(order_id: &str, total: Decimal) -> Message {
    Message {
        message_id: Uuid::new_v4().to_string(),
        contract: "order.shipped.v1",
        order_id: order_id.to_owned(),
        payload: json!({
            "order_id": order_id, "customer_id": "c-1", "currency": "EUR",
            "total": total.to_string(),
            "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": total.to_string()}],
            "shipped_at": "2026-01-02T03:04:05Z"
        })
        .to_string(),
    }
}

pub fn captured(order_id: &str, amount: Decimal) -> Message {
    Message {
        message_id: Uuid::new_v4().to_string(),
        contract: "payment.captured.v1",
        order_id: order_id.to_owned(),
        payload: json!({
            "order_id": order_id, "payment_id": Uuid::new_v4().to_string(),
            "amount": amount.to_string(), "currency": "EUR", "reference": "ref",
            "captured_at": "2026-01-02T03:05:00Z"
        })
        .to_string(),
    }
}

pub fn failed(order_id: &str, amount: Decimal, is_final: bool) -> Message {
    Message {
        message_id: Uuid::new_v4().to_string(),
        contract: "payment.failed.v1",
        order_id: order_id.to_owned(),
        payload: json!({
            "order_id": order_id, "payment_id": Uuid::new_v4().to_string(),
            "amount": amount.to_string(), "currency": "EUR", "reason": "card declined",
            "final": is_final, "failed_at": "2026-01-02T03:05:00Z"
        })
        .to_string(),
    }
}

pub fn cancelled(order_id: &str) -> Message {
    Message {
        message_id: Uuid::new_v4().to_string(),
        contract: "order.cancelled.v1",
        order_id: order_id.to_owned(),
        payload: json!({"order_id": order_id, "reason": "customer", "cancelled_at": "2026-01-02T03:04:05Z"})
            .to_string(),
    }
}

/// [`test_support::wait_until`], in the argument order these tests use.
pub async fn wait_until<Fut>(what: &str, timeout: Duration, condition: impl FnMut() -> Fut)
where
    Fut: Future<Output = bool>,
{
    test_support::wait_until(timeout, what, condition).await;
}
