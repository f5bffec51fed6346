//! Set-up of the relay tests: a database, a broker (`broker_url`), a queue
//! bound with `#` to a per-test exchange, a TCP proxy that plays a broker
//! going down and coming back, and orders driven through the choreography.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aggregates::inventory::{Inventory, InventoryCommand};
use aggregates::order::{Order, OrderCommand, OrderLine, OrderStatus, PlaceOrder};
use aggregates::stream_id;
use aggregates::values::{Currency, PaymentMethod, Sku, Warehouse};
use commands::{CommandContext, CommandExecutor, ExecutorOptions};
use event_store::{EventStore, LogCursor, RecordedEvent, StoreOptions, MIGRATOR};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use projections::runtime::{
    standard_subscribers, RuntimeHandle, RuntimeOptions, SubscriptionRuntime,
};
use relay::{IntegrationRelay, RelayConfig};
use test_support::TestDatabase;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const PATIENCE: Duration = Duration::from_secs(60);

/// The broker the tests publish to. The lead switches this to a private
/// RabbitMQ node started by the tests (issue 11); until then it must be given.
pub async fn broker_url() -> String {
    // ORDERSTREAM_TEST_AMQP_URL, or a private node per test process; each
    // test isolates itself with an exchange and queue of its own.
    match rabbitmq_embedded::TestBroker::shared().await {
        Ok(broker) => broker.url().to_owned(),
        Err(error) => panic!("the relay tests need RabbitMQ: {error}"),
    }
}

pub struct TestApp {
    #[allow(dead_code)] // keeps the database alive
    pub database: TestDatabase,
    pub store: EventStore,
    pub executor: CommandExecutor,
    /// This test's own exchange.
    pub exchange: String,
}

impl TestApp {
    pub async fn new() -> TestApp {
        let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
        let store = EventStore::connect(
            database.url(),
            &StoreOptions {
                max_connections: 30,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("connect");
        let executor = CommandExecutor::new(store.clone(), ExecutorOptions::default());
        TestApp {
            database,
            store,
            executor,
            exchange: format!("test.relay.{}", Uuid::new_v4().simple()),
        }
    }

    pub fn fast_options() -> RuntimeOptions {
        RuntimeOptions {
            retry_base: Duration::from_millis(5),
            retry_max: Duration::from_millis(50),
            outage_retry_max: Duration::from_millis(300),
            max_attempts: 3,
            ownership_interval: Duration::from_millis(200),
            ..RuntimeOptions::default()
        }
    }

    pub fn relay_config(&self, url: &str) -> RelayConfig {
        RelayConfig {
            connect_timeout: Duration::from_secs(2),
            confirm_timeout: Duration::from_secs(5),
            ..RelayConfig::new(url, self.exchange.clone())
        }
    }

    /// The standard subscriptions and the relay, publishing through `url`.
    pub fn start(&self, url: &str) -> RuntimeHandle {
        let options = Self::fast_options();
        let mut subscribers = standard_subscribers(&self.executor, &options);
        subscribers.push(IntegrationRelay::subscriber(
            self.store.clone(),
            self.relay_config(url),
        ));
        SubscriptionRuntime::start_with(self.store.clone(), subscribers, options)
    }

    /// The relay alone (nothing else reacts to the events).
    pub fn start_relay_only(&self, url: &str) -> RuntimeHandle {
        SubscriptionRuntime::start_with(
            self.store.clone(),
            vec![IntegrationRelay::subscriber(
                self.store.clone(),
                self.relay_config(url),
            )],
            Self::fast_options(),
        )
    }

    pub async fn receive(&self, sku: &str, quantity: u64) {
        let command = InventoryCommand::Receive {
            sku: Sku::parse(sku).expect("sku"),
            warehouse: Warehouse::parse("main").expect("warehouse"),
            quantity,
        };
        self.executor
            .execute::<Inventory>(&stream_id::<Inventory>(sku), &command, &request())
            .await
            .expect("receive");
    }

    pub async fn place(&self, sku: &str, quantity: u32, method: PaymentMethod) -> Uuid {
        let order_id = Uuid::new_v4();
        let command = OrderCommand::Place(PlaceOrder {
            order_id,
            customer_id: "c-1".into(),
            currency: Currency::Eur,
            lines: vec![OrderLine {
                sku: Sku::parse(sku).expect("sku"),
                quantity,
                unit_price: rust_decimal::Decimal::new(1250, 2),
            }],
            payment_method: method,
        });
        self.executor
            .execute::<Order>(&stream_id::<Order>(order_id), &command, &request())
            .await
            .expect("place");
        order_id
    }

    pub async fn status(&self, order_id: Uuid) -> Option<OrderStatus> {
        self.executor
            .load::<Order>(&stream_id::<Order>(order_id))
            .await
            .expect("load order")
            .state
            .status()
    }

    /// Every event committed so far, in log order (waiting until log
    /// readers can see the last one: the visible head can trail it).
    pub async fn log(&self) -> Vec<RecordedEvent> {
        let last: Option<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id, position FROM events \
             ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .fetch_optional(self.store.pool())
        .await
        .expect("last event");
        if let Some(last) = last {
            wait_until("the log head reaches the last committed event", || async {
                let head = self.store.head().await.expect("head");
                (head.transaction_id, head.position) >= last
            })
            .await;
        }
        let mut events = Vec::new();
        let mut after = LogCursor::default();
        loop {
            let page = self.store.read_log(after, 1000).await.expect("read log");
            let Some(last) = page.last() else {
                return events;
            };
            after = last.cursor();
            events.extend(page);
        }
    }

    /// What the relay must publish for the log as it is: each message id
    /// with its contract name, in log order.
    pub async fn expected_messages(&self) -> Vec<(Uuid, &'static str, String)> {
        let log = self.log().await;
        let mut streams: HashMap<String, Vec<RecordedEvent>> = HashMap::new();
        let mut expected = Vec::new();
        for event in log {
            let earlier = streams.entry(event.stream_id.clone()).or_default();
            for message in contracts::integration_events(&event, earlier).expect("maps") {
                expected.push((message.message_id, message.name, event.stream_id.clone()));
            }
            earlier.push(event);
        }
        expected
    }

    /// The body each message must have, by message id.
    pub async fn expected_bodies(&self) -> HashMap<Uuid, serde_json::Value> {
        let mut streams: HashMap<String, Vec<RecordedEvent>> = HashMap::new();
        let mut bodies = HashMap::new();
        for event in self.log().await {
            let earlier = streams.entry(event.stream_id.clone()).or_default();
            for message in contracts::integration_events(&event, earlier).expect("maps") {
                bodies.insert(message.message_id, message.payload);
            }
            earlier.push(event);
        }
        bodies
    }

    /// Messages the broker rejects stay parked: how many the relay parked.
    pub async fn relay_parked(&self) -> i64 {
        projections::operations::subscription_statuses(&self.store)
            .await
            .expect("statuses")
            .into_iter()
            .find(|status| status.name == relay::NAME)
            .map_or(0, |status| status.parked)
    }
}

pub fn request() -> CommandContext {
    CommandContext::from_request(Uuid::new_v4(), "test")
}

/// [`test_support::wait_until`] with these tests' [`PATIENCE`].
pub async fn wait_until<Fut>(what: &str, condition: impl FnMut() -> Fut)
where
    Fut: Future<Output = bool>,
{
    test_support::wait_until(PATIENCE, what, condition).await;
}

/// A message as a consumer received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: Uuid,
    pub properties: BasicProperties,
    pub routing_key: String,
    pub body: serde_json::Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<lapin::types::AMQPValue> {
        self.properties
            .headers()
            .as_ref()
            .and_then(|headers| headers.inner().get(name).cloned())
    }

    pub fn stream_id(&self) -> String {
        match self.header(relay::HEADER_STREAM_ID) {
            Some(lapin::types::AMQPValue::LongString(text)) => text.to_string(),
            other => panic!("stream_id header: {other:?}"),
        }
    }

    pub fn log_position(&self) -> i64 {
        match self.header(relay::HEADER_LOG_POSITION) {
            Some(lapin::types::AMQPValue::LongLongInt(position)) => position,
            other => panic!("log_position header: {other:?}"),
        }
    }
}

/// A queue bound with `#` to the test's exchange, collecting what arrives.
pub struct Queue {
    connection: Connection,
    channel: Channel,
    exchange: String,
    queue: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    consuming: JoinHandle<()>,
}

impl Queue {
    /// Declares the exchange as the relay does, and binds a fresh queue to it.
    pub async fn bind(exchange: &str) -> Queue {
        Self::bind_keys(exchange, &["#"]).await
    }

    /// A fresh queue bound to `exchange` with each of `keys` only.
    pub async fn bind_keys(exchange: &str, keys: &[&str]) -> Queue {
        let connection = rabbitmq_embedded::connect_amqp(&broker_url().await)
            .await
            .expect("a test connection to RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        declare_exchange(&channel, exchange).await;
        let queue = channel
            .queue_declare(
                "",
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue");
        let name = queue.name().as_str().to_owned();
        for key in keys {
            channel
                .queue_bind(
                    &name,
                    exchange,
                    key,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind");
        }
        let mut consumer = channel
            .basic_consume(
                &name,
                "test",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let consuming = tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let message_id = delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .and_then(|id| Uuid::try_parse(id.as_str()).ok())
                    .expect("every message has a UUID message_id");
                let body = serde_json::from_slice(&delivery.data).expect("a JSON body");
                sink.lock().expect("lock").push(Received {
                    message_id,
                    properties: delivery.properties.clone(),
                    routing_key: delivery.routing_key.as_str().to_owned(),
                    body,
                });
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
        });
        Queue {
            connection,
            channel,
            exchange: exchange.to_owned(),
            queue: name,
            received,
            consuming,
        }
    }

    /// Binds one more key to this queue (an operator fixing a routing gap).
    pub async fn add_key(&self, key: &str) {
        self.channel
            .queue_bind(
                &self.queue,
                &self.exchange,
                key,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
    }

    pub fn snapshot(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits until a message with every id of `expected` arrived.
    pub async fn wait_for(&self, expected: &[(Uuid, &'static str, String)]) {
        wait_until(&format!("{} messages arrived", expected.len()), || async {
            let received = self.snapshot();
            expected
                .iter()
                .all(|(id, _, _)| received.iter().any(|message| message.message_id == *id))
        })
        .await;
    }

    pub async fn delete(self) {
        self.consuming.abort();
        let _ = self
            .channel
            .exchange_delete(&self.exchange, ExchangeDeleteOptions::default())
            .await;
        let _ = self.connection.close(200, "test over").await;
    }
}

pub async fn declare_exchange(channel: &Channel, exchange: &str) {
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
        .expect("exchange");
}

/// A TCP proxy in front of the broker: `down` cuts every connection and
/// refuses new ones, `up` accepts again on the same port (a broker restart,
/// as the relay sees it).
pub struct BrokerProxy {
    pub address: SocketAddr,
    broker: String,
    target: String,
    accepting: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl BrokerProxy {
    pub async fn start() -> BrokerProxy {
        let broker = broker_url().await;
        let url = url_of(&broker);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("address");
        let mut proxy = BrokerProxy {
            address,
            broker,
            target: url,
            accepting: None,
            connections: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.accept(listener);
        proxy
    }

    /// The broker URL with the proxy's address in place of the broker's.
    pub fn url(&self) -> String {
        self.broker
            .replacen(&self.target, &self.address.to_string(), 1)
    }

    fn accept(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        let connections = self.connections.clone();
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let forwarding = tokio::spawn(async move {
                    if let Ok(mut broker) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                    }
                });
                connections.lock().expect("lock").push(forwarding);
            }
        }));
    }

    pub fn down(&mut self) {
        if let Some(accepting) = self.accepting.take() {
            accepting.abort();
        }
        for connection in self.connections.lock().expect("lock").drain(..) {
            connection.abort();
        }
    }

    pub async fn up(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        let listener = loop {
            match TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(error) => {
                    assert!(Instant::now() < deadline, "cannot listen again: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.accept(listener);
    }
}

/// `host:port` of an `amqp://` URL (port 5672 when not given).
fn url_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5672")
    }
}
