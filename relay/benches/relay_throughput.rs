//! Relay throughput (messages/s confirmed by the broker) against a raw
//! lapin publisher with confirms, in the same run, on the same broker and
//! the same queue, alternating rounds.
//!
//! ```sh
//! ORDERSTREAM_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f \
//!   cargo bench -p relay --bench relay_throughput
//! ```
//!
//! Without `ORDERSTREAM_TEST_AMQP_URL` it starts a private RabbitMQ node.
//! Environment: `RELAY_BENCH_MESSAGES` (default 20000 `OrderPlaced`
//! events, one message each, each in its own stream), `RELAY_BENCH_ROUNDS`
//! (3: each round one relay run and one raw run), `RELAY_BENCH_STREAMS`
//! (the relay's streams in flight, default `RelayConfig`'s),
//! `RELAY_BENCH_QUEUE` (`durable`, the default: a durable classic queue, as
//! a consumer's inbox is; `transient`: an exclusive non-durable one).
//!
//! The relay runs as it does in `serve`: the subscription runtime with
//! default options, from an empty checkpoint until its checkpoint reaches
//! the log head (start-up, reading, mapping, publishing, confirms and
//! checkpoints all included). The raw publisher is the best a hand-written
//! publisher does with the same guarantees: one confirming channel, the
//! relay's exact bodies and properties (persistent, same headers),
//! `mandatory`, every message in flight at once, then every confirm awaited
//! and checked (mapping and the database not counted).

use std::time::{Duration, Instant};

use aggregates::order::{Order, OrderCommand, OrderLine, PlaceOrder};
use aggregates::stream_id;
use aggregates::values::{Currency, PaymentMethod, Sku};
use commands::{CommandContext, CommandExecutor, ExecutorOptions};
use event_store::{EventStore, LogCursor, RecordedEvent, StoreOptions, MIGRATOR};
use futures::StreamExt;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, ExchangeKind};
use projections::runtime::{RuntimeOptions, SubscriptionRuntime};
use relay::{IntegrationRelay, RelayConfig};
use test_support::TestDatabase;
use uuid::Uuid;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
        Err(_) => default,
    }
}

#[tokio::main]
async fn main() {
    let messages: usize = env_or("RELAY_BENCH_MESSAGES", 20_000);
    let rounds: usize = env_or("RELAY_BENCH_ROUNDS", 3);
    let streams_in_flight: usize = env_or(
        "RELAY_BENCH_STREAMS",
        RelayConfig::DEFAULT_STREAMS_IN_FLIGHT,
    );
    let durable = match std::env::var("RELAY_BENCH_QUEUE").as_deref() {
        Ok("transient") => false,
        Ok("durable") | Err(_) => true,
        Ok(other) => panic!("RELAY_BENCH_QUEUE is durable or transient, got {other}"),
    };
    let broker = rabbitmq_embedded::TestBroker::shared()
        .await
        .unwrap_or_else(|error| panic!("the bench needs RabbitMQ: {error}"));
    let url = broker.url().to_owned();
    let database = TestDatabase::new(&MIGRATOR).await.expect("database");
    let store = EventStore::connect(database.url(), &StoreOptions::default())
        .await
        .expect("store");
    seed(&store, messages).await;
    let head = store.head().await.expect("head");
    let published = relay_messages(&store, messages).await;

    let exchange = format!("bench.relay.{}", Uuid::new_v4().simple());
    let connection = rabbitmq_embedded::connect_amqp(&url).await.expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    let queue = declare(&channel, &exchange, durable).await;
    let raw_channel = connection.create_channel().await.expect("channel");
    raw_channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");

    println!(
        "{messages} messages per run, {} queue, relay streams in flight {streams_in_flight}",
        if durable { "durable" } else { "transient" }
    );
    let mut ratios = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        store
            .reset_checkpoint(relay::NAME, LogCursor::default())
            .await
            .expect("reset the relay's checkpoint");
        let config = RelayConfig {
            streams_in_flight,
            ..RelayConfig::new(url.clone(), exchange.clone())
        };
        let cpu = cpu_time();
        let relay = run_relay(&store, config, head).await;
        let relay_cpu = cpu_time().saturating_sub(cpu);
        purge(&channel, &queue, messages).await;
        let cpu = cpu_time();
        let raw = run_raw(&raw_channel, &exchange, &published).await;
        let raw_cpu = cpu_time().saturating_sub(cpu);
        purge(&channel, &queue, messages).await;
        let window = RuntimeOptions::default().batch_size;
        let windowed = run_raw_in_windows(&raw_channel, &exchange, &published, window).await;
        purge(&channel, &queue, messages).await;
        let rate = |elapsed: Duration| messages as f64 / elapsed.as_secs_f64();
        let ratio = rate(relay) / rate(raw);
        println!(
            "round {round}: relay {:.0} msg/s ({relay:.2?}, {:.0} µs CPU/msg), \
             raw {:.0} msg/s ({raw:.2?}, {:.0} µs CPU/msg), ratio {ratio:.2}",
            rate(relay),
            relay_cpu.as_secs_f64() * 1e6 / messages as f64,
            rate(raw),
            raw_cpu.as_secs_f64() * 1e6 / messages as f64,
        );
        println!(
            "  (diagnostic: raw, confirms awaited every {window} messages: {:.0} msg/s)",
            rate(windowed)
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "relay / raw: median {:.2}, min {:.2}, max {:.2}",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
    let _ = channel
        .queue_delete(&queue, QueueDeleteOptions::default())
        .await;
    let _ = channel
        .exchange_delete(&exchange, ExchangeDeleteOptions::default())
        .await;
    let _ = connection.close(200, "bench over").await;
}

/// `count` orders placed, 16 at a time: one `OrderPlaced` in each stream.
async fn seed(store: &EventStore, count: usize) {
    let executor = CommandExecutor::new(store.clone(), ExecutorOptions::default());
    futures::stream::iter(0..count)
        .for_each_concurrent(16, |_| {
            let executor = executor.clone();
            async move {
                let order_id = Uuid::new_v4();
                let place = OrderCommand::Place(PlaceOrder {
                    order_id,
                    customer_id: "c-1".into(),
                    currency: Currency::Eur,
                    lines: vec![OrderLine {
                        sku: Sku::parse("SKU-1").expect("sku"),
                        quantity: 1,
                        unit_price: rust_decimal::Decimal::new(1250, 2),
                    }],
                    payment_method: PaymentMethod::CardOk,
                });
                executor
                    .execute::<Order>(
                        &stream_id::<Order>(order_id),
                        &place,
                        &CommandContext::from_request(Uuid::new_v4(), "bench"),
                    )
                    .await
                    .expect("place");
            }
        })
        .await;
}

/// What the relay publishes for each event: routing key, body and
/// properties (one message per `OrderPlaced`).
type Published = (&'static str, Vec<u8>, BasicProperties);

async fn relay_messages(store: &EventStore, count: usize) -> Vec<Published> {
    let mut events = Vec::with_capacity(count);
    let mut after = LogCursor::default();
    loop {
        let page = store.read_log(after, 1000).await.expect("read log");
        let Some(last) = page.last() else { break };
        after = last.cursor();
        events.extend(page);
    }
    assert_eq!(events.len(), count, "one event per order");
    events
        .iter()
        .map(|event: &RecordedEvent| {
            let messages = contracts::integration_events(event, &[]).expect("maps");
            assert_eq!(messages.len(), 1, "one message per OrderPlaced");
            let message = &messages[0];
            (
                message.name,
                message.body(),
                relay::properties(event, message, None),
            )
        })
        .collect()
}

async fn declare(channel: &Channel, exchange: &str, durable: bool) -> String {
    channel
        .exchange_declare(
            exchange,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    let options = if durable {
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        }
    } else {
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        }
    };
    let name = format!("{exchange}.queue");
    channel
        .queue_declare(&name, options, FieldTable::default())
        .await
        .expect("queue");
    channel
        .queue_bind(
            &name,
            exchange,
            "#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    name
}

/// Empties the queue, checking that the run before delivered every message.
async fn purge(channel: &Channel, queue: &str, expected: usize) {
    let purged = channel
        .queue_purge(queue, QueuePurgeOptions::default())
        .await
        .expect("purge");
    assert!(
        purged as usize >= expected,
        "the queue held {purged} messages, {expected} expected"
    );
}

/// The relay alone, from an empty checkpoint until it reaches `head`.
async fn run_relay(store: &EventStore, config: RelayConfig, head: LogCursor) -> Duration {
    let started = Instant::now();
    let runtime = SubscriptionRuntime::start_with(
        store.clone(),
        vec![IntegrationRelay::subscriber(store.clone(), config)],
        RuntimeOptions {
            batch_size: env_or("RELAY_BENCH_BATCH", RuntimeOptions::default().batch_size),
            ..RuntimeOptions::default()
        },
    );
    let deadline = started + Duration::from_secs(600);
    let mut first_checkpoint = None;
    loop {
        let checkpoint = store
            .load_checkpoint(relay::NAME)
            .await
            .expect("checkpoint")
            .unwrap_or_default();
        if checkpoint > LogCursor::default() && first_checkpoint.is_none() {
            first_checkpoint = Some(started.elapsed());
        }
        if checkpoint >= head {
            break;
        }
        assert!(Instant::now() < deadline, "the relay never caught up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    runtime.shutdown().await;
    if let Some(first) = first_checkpoint {
        println!("  (relay: its first checkpoint after {first:.2?})");
    }
    elapsed
}

/// Every message published at once on a confirming channel, then every
/// confirm awaited: each must be an ack of a routed message.
async fn run_raw(channel: &Channel, exchange: &str, published: &[Published]) -> Duration {
    run_raw_in_windows(channel, exchange, published, published.len()).await
}

/// As the raw publisher, but awaiting every confirm after each `window`
/// messages: what a publisher that stops at batch boundaries gets (a
/// diagnostic, not the baseline).
async fn run_raw_in_windows(
    channel: &Channel,
    exchange: &str,
    published: &[Published],
    window: usize,
) -> Duration {
    let started = Instant::now();
    for window in published.chunks(window.max(1)) {
        publish_and_confirm(channel, exchange, window).await;
    }
    started.elapsed()
}

async fn publish_and_confirm(channel: &Channel, exchange: &str, published: &[Published]) {
    let mut confirms = Vec::with_capacity(published.len());
    for (routing_key, body, properties) in published {
        confirms.push(
            channel
                .basic_publish(
                    exchange,
                    routing_key,
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    body,
                    properties.clone(),
                )
                .await
                .expect("publish"),
        );
    }
    for confirm in confirms {
        assert!(
            matches!(confirm.await, Ok(Confirmation::Ack(None))),
            "the raw publisher's message was not confirmed"
        );
    }
}

/// CPU time (user and system) of this process so far: what the relay
/// costs, against what the raw publisher costs, beside the broker's and
/// the database's own.
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which ends with the last ')'.
            let fields: Vec<u64> = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|field| field.parse().ok())
                .collect();
            Some(fields.iter().sum::<u64>())
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}
