//! End-to-end latency of the integration (issue 11): from `OrderShipped`
//! committed in orderstream's log to the journal entry committed in
//! Finance's own database, at a steady open-loop order rate.
//!
//! In one process: orderstream's subscription runtime (the standard
//! subscriptions with automatic fulfilment, and the integration relay),
//! Finance (`finance::run`, its own database and queues), a private
//! PostgreSQL cluster with durable settings holding both databases, and
//! RabbitMQ (`ORDERSTREAM_TEST_AMQP_URL`, or a private node). Orders (one
//! line of one of 20 SKUs, `card_ok`) are placed through the command
//! executor on a fixed schedule; the choreography reserves, ships and
//! captures each; the relay publishes `order.shipped.v1`; Finance books
//! Dr Receivables / Cr Revenue.
//!
//! Both ends are commit timestamps (`track_commit_timestamp = on`,
//! `pg_xact_commit_timestamp(xmin)` of the `OrderShipped` row and of the
//! journal entry's row): one clock, and the moment each became visible.
//! The relay's share is `OrderShipped` committed to `order.shipped.v1`
//! delivered to a consumer of the bench's own (bound beside Finance's);
//! Finance's share is the rest (its queue, its transaction).
//!
//! ```sh
//! ORDERSTREAM_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f \
//!   cargo bench --bench integration_latency
//! ```
//!
//! Environment: `BENCH_RATE` (orders/s, default 100), `BENCH_SECONDS`
//! (default 20), `BENCH_FINANCE=off` (no Finance: the bench's queue
//! takes every contract, and only the relay's share is measured), `BENCH_SKUS` (default 20: each SKU's inventory stream
//! takes every 20th order's reservation and commit), `BENCH_RELAY_STREAMS` (the relay's streams in flight,
//! default `RelayConfig`'s; 8 is how it ran before), `DATABASE_URL` (another server instead of the private
//! cluster; without `track_commit_timestamp` the ends are the rows'
//! `recorded_at`, which are taken before the commit).

// This bench's own helpers, beside it rather than in the shared `support`.
#[path = "integration_latency/measure.rs"]
mod measure;
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aggregates::inventory::{Inventory, InventoryCommand};
use aggregates::order::{Order, OrderCommand, OrderLine, PlaceOrder};
use aggregates::stream_id;
use aggregates::values::{Currency, PaymentMethod, Sku, Warehouse};
use chrono::{DateTime, Utc};
use commands::{CommandContext, CommandExecutor, ExecutorOptions};
use event_store::{EventStore, StoreOptions};
use finance::{FinanceConfig, Topology};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, ExchangeKind};
use pg_embedded::ClusterOptions;
use projections::runtime::{
    standard_subscribers, RuntimeHandle, RuntimeOptions, SubscriptionRuntime,
};
use relay::{IntegrationRelay, RelayConfig};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use measure::{
    booking_rate, commit_rate, commit_times, report, sample_backlog, sample_relay_lag,
    wait_until_booked, wait_until_delivered,
};
use support::{bench_server_with, env_number, with_database, with_migrated_database, BenchResult};

const WARM_UP_ORDERS: usize = 20;
const SHIPPED: &str = "order.shipped.v1";
const PATIENCE: Duration = Duration::from_secs(120);

/// When each order's `order.shipped.v1` reached the bench's consumer.
type Deliveries = Arc<Mutex<HashMap<Uuid, DateTime<Utc>>>>;

fn main() -> BenchResult<()> {
    let rate: u64 = env_number("BENCH_RATE", 100)?;
    let seconds: u64 = env_number("BENCH_SECONDS", 20)?;
    // Started before the runtime: starting a cluster blocks. Durable
    // settings, and commit timestamps for the latencies.
    let mut options = ClusterOptions::default();
    options
        .settings
        .push(("track_commit_timestamp".into(), "on".into()));
    let (admin_url, cluster) = bench_server_with(&options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(with_database(&admin_url, |url, _| async {
        with_migrated_database(&admin_url, &finance::MIGRATOR, |finance_url, _| async move {
            run(&url, &finance_url, rate.max(1), seconds.max(1)).await
        })
        .await
    }));
    drop(runtime);
    if let Some(cluster) = cluster {
        cluster.stop();
    }
    outcome
}

/// The whole measurement: set-up, a warm-up, the measured open loop, the
/// report, and the broker's names removed.
async fn run(orders_url: &str, finance_url: &str, rate: u64, seconds: u64) -> BenchResult<()> {
    let broker = rabbitmq_embedded::TestBroker::shared().await?;
    let amqp_url = broker.url().to_owned();
    let exchange = format!("bench.integration.{}", Uuid::new_v4().simple());
    let topology = Topology {
        exchange: exchange.clone(),
        queue: format!("{exchange}.finance.inbox"),
        dead_letter_queue: format!("{exchange}.finance.dead"),
        ..Topology::default()
    };

    // `BENCH_FINANCE=off`: the relay's share alone, without Finance's load
    // on the machine and its backlog on the broker.
    let with_finance = std::env::var("BENCH_FINANCE").as_deref() != Ok("off");
    // Finance first: its queue must be bound before the relay publishes.
    let (stop_finance, finance_stopped) = tokio::sync::oneshot::channel::<()>();
    let finance = if with_finance {
        Some(start_finance(
            finance_url,
            &amqp_url,
            &topology,
            finance_stopped,
        )?)
    } else {
        None
    };
    let connection = rabbitmq_embedded::connect_amqp(&amqp_url).await?;
    if with_finance
        && !rabbitmq_embedded::wait_for_queue(&connection, &topology.dead_letter_queue, PATIENCE)
            .await
    {
        return Err("Finance never declared its queues".into());
    }
    let channel = connection.create_channel().await?;
    // Without Finance the bench's queue takes every contract (`mandatory`).
    let binding = if with_finance { SHIPPED } else { "#" };
    let deliveries = watch_shipments(&channel, &exchange, binding).await?;

    let store = EventStore::connect(orders_url, &StoreOptions::default()).await?;
    let executor = CommandExecutor::new(store.clone(), ExecutorOptions::default());
    let skus: usize = env_number("BENCH_SKUS", 20)?;
    stock(&executor, skus).await?;
    let subscriptions = start_subscriptions(&executor, &amqp_url, &exchange)?;
    let finance_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(finance_url)
        .await?;
    if with_finance {
        print_ceilings(&finance_pool).await?;
    }

    let done = Done {
        with_finance,
        finance_pool: finance_pool.clone(),
        deliveries: deliveries.clone(),
    };
    // Warm-up: connections opened, caches filled, nothing measured.
    let warm_up = place_open_loop(&executor, skus, 50, WARM_UP_ORDERS).await;
    done.wait_for(warm_up.len()).await?;
    let load = Load {
        rate,
        seconds,
        skus,
    };
    let measured = measure(
        &executor,
        &done,
        load,
        warm_up.len(),
        &connection,
        &topology,
    )
    .await?;
    report_run(&store, &finance_pool, &done, &measured).await?;

    subscriptions.shutdown().await;
    let _ = stop_finance.send(());
    if let Some(finance) = finance {
        let _ = finance.await;
    }
    remove_names(&channel, &topology).await;
    let _ = connection.close(200, "bench over").await;
    Ok(())
}

/// Finance in this process, on its own database, consuming `topology`;
/// it stops when `stopped` resolves.
fn start_finance(
    finance_url: &str,
    amqp_url: &str,
    topology: &Topology,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> BenchResult<tokio::task::JoinHandle<Result<(), finance::RunError>>> {
    Ok(tokio::spawn(finance::run(
        FinanceConfig {
            database_url: finance_url.to_owned(),
            amqp_url: amqp_url.to_owned(),
            topology: topology.clone(),
            prefetch: 16,
            listen: "127.0.0.1:0".parse()?,
            admin_token: None,
            http: finance::HttpLimits::default(),
        },
        async move {
            let _ = stopped.await;
        },
    )))
}

/// Stock for the whole run in each of `skus` SKUs.
async fn stock(executor: &CommandExecutor, skus: usize) -> BenchResult<()> {
    for sku in 0..skus {
        let receive = InventoryCommand::Receive {
            sku: Sku::parse(format!("BENCH-{sku}"))?,
            warehouse: Warehouse::parse("main")?,
            quantity: 10_000_000,
        };
        executor
            .execute::<Inventory>(
                &stream_id::<Inventory>(&format!("BENCH-{sku}")),
                &receive,
                &context(),
            )
            .await?;
    }
    Ok(())
}

/// The choreography's subscriptions and the relay, publishing to
/// `exchange`, as `serve` runs them.
fn start_subscriptions(
    executor: &CommandExecutor,
    amqp_url: &str,
    exchange: &str,
) -> BenchResult<RuntimeHandle> {
    let store = executor.store().clone();
    let options = RuntimeOptions::default();
    let mut subscribers = standard_subscribers(executor, &options);
    subscribers.push(IntegrationRelay::subscriber(
        store.clone(),
        RelayConfig {
            streams_in_flight: env_number(
                "BENCH_RELAY_STREAMS",
                RelayConfig::DEFAULT_STREAMS_IN_FLIGHT,
            )?,
            ..RelayConfig::new(amqp_url.to_owned(), exchange.to_owned())
        },
    ));
    Ok(SubscriptionRuntime::start_with(store, subscribers, options))
}

/// What this server allows Finance at most, measured before the load.
async fn print_ceilings(finance_pool: &PgPool) -> BenchResult<()> {
    println!(
        "one connection's durable commits on this server: {:.0}/s (Finance commits once per message)",
        commit_rate(finance_pool).await?
    );
    println!(
        "Finance's booking path alone (no broker), one message after another: {:.0}/s",
        booking_rate(finance_pool).await?
    );
    Ok(())
}

/// When orders are through: booked by Finance, or (without it) delivered
/// to the bench's queue.
struct Done {
    with_finance: bool,
    finance_pool: PgPool,
    deliveries: Deliveries,
}

impl Done {
    async fn wait_for(&self, orders: usize) -> BenchResult<()> {
        if self.with_finance {
            wait_until_booked(&self.finance_pool, orders).await
        } else {
            wait_until_delivered(&self.deliveries, orders).await
        }
    }
}

/// The measured load: `rate` orders/s for `seconds` over `skus` SKUs.
#[derive(Clone, Copy)]
struct Load {
    rate: u64,
    seconds: u64,
    skus: usize,
}

/// What the measured load left to report.
struct Measured {
    placed: Vec<Uuid>,
    /// When the first measured order was placed.
    from: DateTime<Utc>,
    placing: Duration,
    drained: Duration,
    max_backlog: u32,
}

/// The open loop, with the Finance inbox's backlog and the relay's lag
/// sampled until every order is through; `earlier` orders (the warm-up's)
/// are through already.
async fn measure(
    executor: &CommandExecutor,
    done: &Done,
    load: Load,
    earlier: usize,
    connection: &lapin::Connection,
    topology: &Topology,
) -> BenchResult<Measured> {
    let Load {
        rate,
        seconds,
        skus,
    } = load;
    let total = usize::try_from(rate * seconds)?;
    println!("open loop: {rate} orders/s for {seconds} s ({total} orders)");
    let backlog = Arc::new(AtomicU32::new(0));
    let sampling = if done.with_finance {
        Some(tokio::spawn(sample_backlog(
            connection.create_channel().await?,
            topology.queue.clone(),
            backlog.clone(),
        )))
    } else {
        None
    };
    let relay_lag = Arc::new(AtomicI64::new(0));
    let sampling_lag = tokio::spawn(sample_relay_lag(
        executor.store().clone(),
        relay_lag.clone(),
    ));
    let started = Instant::now();
    let from = Utc::now();
    let placed = place_open_loop(executor, skus, rate, total).await;
    let placing = started.elapsed();
    done.wait_for(earlier + placed.len()).await?;
    let drained = started.elapsed();
    if let Some(sampling) = sampling {
        sampling.abort();
    }
    sampling_lag.abort();
    println!(
        "largest relay lag sampled: {} log positions behind the head",
        relay_lag.load(Ordering::Relaxed)
    );
    Ok(Measured {
        placed,
        from,
        placing,
        drained,
        max_backlog: backlog.load(Ordering::Relaxed),
    })
}

/// Commit times read from both databases, what Finance got through, and
/// the latencies.
async fn report_run(
    store: &EventStore,
    finance_pool: &PgPool,
    done: &Done,
    measured: &Measured,
) -> BenchResult<()> {
    let shipped = commit_times(
        store.pool(),
        "SELECT substr(stream_id, 7)::uuid, {ts} FROM events WHERE event_type = 'OrderShipped'",
    )
    .await?;
    let booked = commit_times(
        finance_pool,
        "SELECT order_id::uuid, {ts} FROM journal_entries WHERE contract = 'order.shipped.v1'",
    )
    .await?;
    let booked = done.with_finance.then_some(&booked);
    // What Finance got through: every message it handled (booked or
    // ignored) from the first to the last of the measured load.
    if done.with_finance {
        let (handled, span): (i64, f64) = sqlx::query_as(
        "SELECT count(*), coalesce(extract(epoch FROM max(processed_at) - min(processed_at))::float8, 0) \
           FROM inbox WHERE processed_at >= $1",
    )
    .bind(measured.from)
    .fetch_one(finance_pool)
    .await?;
        println!(
            "Finance handled {handled} messages ({:.1} per order) at {:.0} messages/s",
            handled as f64 / measured.placed.len().max(1) as f64,
            handled as f64 / span.max(0.001)
        );
    }
    let delivered = done
        .deliveries
        .lock()
        .map_err(|_| "the consumer panicked")?
        .clone();
    report(
        &measured.placed,
        &shipped,
        booked,
        &delivered,
        measured.placing,
        measured.drained,
        measured.max_backlog,
    )
}

/// Removes Finance's queues and the bench's exchange from the broker.
async fn remove_names(channel: &Channel, topology: &Topology) {
    for queue in [&topology.queue, &topology.dead_letter_queue]
        .into_iter()
        .cloned()
        .chain(
            topology
                .retry_delays
                .iter()
                .map(|delay| topology.retry_queue(*delay)),
        )
    {
        let _ = channel
            .queue_delete(&queue, QueueDeleteOptions::default())
            .await;
    }
    let _ = channel
        .exchange_delete(&topology.exchange, ExchangeDeleteOptions::default())
        .await;
}

fn context() -> CommandContext {
    CommandContext::from_request(Uuid::new_v4(), "bench")
}

/// `total` orders at `rate` per second, each placed when its time comes
/// whether or not earlier ones are done; the ids of those accepted.
async fn place_open_loop(
    executor: &CommandExecutor,
    skus: usize,
    rate: u64,
    total: usize,
) -> Vec<Uuid> {
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut placing = Vec::with_capacity(total);
    for index in 0..total {
        tokio::time::sleep_until(start + every.mul_f64(index as f64)).await;
        let executor = executor.clone();
        placing.push(tokio::spawn(async move {
            let order_id = Uuid::new_v4();
            let place = OrderCommand::Place(PlaceOrder {
                order_id,
                customer_id: format!("customer-{}", index % 97),
                currency: Currency::Usd,
                lines: vec![OrderLine {
                    sku: Sku::parse(format!("BENCH-{}", index % skus.max(1))).ok()?,
                    quantity: 1,
                    unit_price: rust_decimal::Decimal::new(1990, 2),
                }],
                payment_method: PaymentMethod::CardOk,
            });
            executor
                .execute::<Order>(&stream_id::<Order>(order_id), &place, &context())
                .await
                .ok()
                .map(|_| order_id)
        }));
    }
    let mut placed = Vec::with_capacity(total);
    for task in placing {
        if let Ok(Some(order_id)) = task.await {
            placed.push(order_id);
        }
    }
    placed
}

/// A queue of the bench's own beside Finance's, bound with `binding`:
/// when each order's `order.shipped.v1` left the broker.
async fn watch_shipments(
    channel: &Channel,
    exchange: &str,
    binding: &str,
) -> BenchResult<Deliveries> {
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
        .await?;
    let queue = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let queue = queue.name().as_str().to_owned();
    channel
        .queue_bind(
            &queue,
            exchange,
            binding,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            &queue,
            "bench",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let deliveries: Deliveries = Arc::default();
    let sink = deliveries.clone();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let at = Utc::now();
            let shipped = delivery.routing_key.as_str() == SHIPPED;
            let order_id = serde_json::from_slice::<serde_json::Value>(&delivery.data)
                .ok()
                .and_then(|body| body["order_id"].as_str().and_then(|id| id.parse().ok()));
            if let (true, Some(order_id), Ok(mut sink)) = (shipped, order_id, sink.lock()) {
                sink.entry(order_id).or_insert(at);
            }
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
    });
    Ok(deliveries)
}
