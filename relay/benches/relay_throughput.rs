//! Relay throughput (messages/s confirmed by the broker) against a raw
//! lapin publisher with confirms, in the same run, on the same broker.
//!
//! `ORDERSTREAM_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f \
//!  cargo bench -p relay --bench relay_throughput` (RELAY_BENCH_MESSAGES, default 2000).

use std::time::{Duration, Instant};

use aggregates::order::{Order, OrderCommand, OrderLine, PlaceOrder};
use aggregates::stream_id;
use aggregates::values::{Currency, PaymentMethod, Sku};
use commands::{CommandContext, CommandExecutor, ExecutorOptions};
use event_store::{EventStore, StoreOptions, MIGRATOR};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use pg_embedded::TestDatabase;
use projections::runtime::{RuntimeOptions, SubscriptionRuntime};
use relay::{IntegrationRelay, RelayConfig};
use uuid::Uuid;

#[tokio::main]
async fn main() {
    let url = std::env::var("ORDERSTREAM_TEST_AMQP_URL").unwrap_or_else(|_| {
        panic!("set ORDERSTREAM_TEST_AMQP_URL (install and start rabbitmq-server)")
    });
    let messages: usize = std::env::var("RELAY_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let database = TestDatabase::new(&MIGRATOR).await.expect("database");
    let store = EventStore::connect(database.url(), &StoreOptions::default())
        .await
        .expect("store");
    let executor = CommandExecutor::new(store.clone(), ExecutorOptions::default());
    for _ in 0..messages {
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
    let head = store.head().await.expect("head");

    let exchange = format!("bench.relay.{}", Uuid::new_v4().simple());
    let connection = rabbitmq_embedded::connect_amqp(&url).await.expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .exchange_declare(
            &exchange,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    let queue = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue");
    let queue = queue.name().as_str().to_owned();
    channel
        .queue_bind(
            &queue,
            &exchange,
            "#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");

    // The relay, from an empty checkpoint to the head.
    let started = Instant::now();
    let runtime = SubscriptionRuntime::start_with(
        store.clone(),
        vec![IntegrationRelay::subscriber(
            store.clone(),
            RelayConfig::new(url.clone(), exchange.clone()),
        )],
        RuntimeOptions {
            reactor_concurrency: std::env::var("RELAY_BENCH_CONCURRENCY")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(RuntimeOptions::default().reactor_concurrency),
            ..RuntimeOptions::default()
        },
    );
    loop {
        let checkpoint = store
            .load_checkpoint(relay::NAME)
            .await
            .expect("checkpoint")
            .unwrap_or_default();
        if checkpoint >= head {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let relay_elapsed = started.elapsed();
    runtime.shutdown().await;
    let sample = contracts::integration_events(
        &store.read_log(Default::default(), 1).await.expect("log")[0],
        &[],
    )
    .expect("maps")[0]
        .body();
    channel
        .queue_purge(&queue, QueuePurgeOptions::default())
        .await
        .expect("purge");

    // The raw publisher: same body size, persistent, confirms, all in
    // flight at once, then every confirm awaited.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let started = Instant::now();
    let mut confirms = Vec::with_capacity(messages);
    for _ in 0..messages {
        confirms.push(
            channel
                .basic_publish(
                    &exchange,
                    "order.placed.v1",
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &sample,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .expect("publish"),
        );
    }
    for confirm in confirms {
        confirm.await.expect("confirm");
    }
    let raw_elapsed = started.elapsed();
    let _ = channel
        .exchange_delete(&exchange, ExchangeDeleteOptions::default())
        .await;

    let rate = |elapsed: Duration| messages as f64 / elapsed.as_secs_f64();
    println!(
        "relay: {messages} messages confirmed in {:.2?} ({:.0}/s)",
        relay_elapsed,
        rate(relay_elapsed)
    );
    println!(
        "raw lapin, pipelined confirms: {messages} in {:.2?} ({:.0}/s)",
        raw_elapsed,
        rate(raw_elapsed)
    );
    println!(
        "relay / raw = {:.2}",
        rate(relay_elapsed) / rate(raw_elapsed)
    );
}
