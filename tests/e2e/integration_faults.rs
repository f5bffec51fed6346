//! Issue 11's crash workload: a seeded random workload (orders with random
//! lines and payment methods, declined and flaky ones included, some
//! cancelled, stock receipts) against `serve` with its relay on and
//! `finance serve`, both the real binary, while the test SIGKILLs each of
//! them at random points a few times and starts it again.
//!
//! Afterwards, against the log of orderstream's database:
//! - every contract message its events map to was published at least once,
//!   and nothing else, as a queue of the test's own (bound `#`) saw it;
//! - no message_id came with two bodies (a redelivery is the same message);
//! - per stream, first deliveries came in log order;
//! - Finance booked every shipment, capture and final payment failure
//!   exactly once (its journal against orderstream's `/orders`), its trial
//!   balance balances with nothing left receivable, its dead-letter queue
//!   is empty, its inbox holds each distinct message id once, and nothing
//!   is parked in `/subscriptions`.
//!
//! The seed is printed; `ORDERSTREAM_FAULT_SEED=<seed>` replays a run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use event_store::MIGRATOR;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use test_support::TestDatabase;

use crate::helpers::{ADMIN_TOKEN, PATIENCE};
use crate::served::{FinanceOnBroker, Server};

mod books;
mod relay_audit;

use relay_audit::{audit, expected_messages};

const SEED_ENV: &str = "ORDERSTREAM_FAULT_SEED";
/// Requests of the workload, one after another.
const STEPS: usize = 100;
const SERVE_KILLS: usize = 4;
const FINANCE_KILLS: usize = 4;
const SKUS: [&str; 3] = ["CRASH-A", "CRASH-B", "CRASH-C"];
/// Drawn uniformly: mostly paid, some declined, some flaky (which retry).
const METHODS: [&str; 5] = [
    "card_ok",
    "card_ok",
    "card_ok",
    "card_declined",
    "card_flaky",
];
const FINAL: [&str; 4] = ["paid", "payment_failed", "rejected", "cancelled"];

enum Fault {
    KillServe,
    /// Finance stays down for this many steps.
    KillFinance(usize),
}

fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV} must be a number, got {text:?}")),
        Err(_) => rand::random(),
    }
}

/// Which step is followed by which fault.
fn fault_plan(rng: &mut StdRng) -> BTreeMap<usize, Fault> {
    let mut steps: Vec<usize> = (3..STEPS - 3).collect();
    steps.shuffle(rng);
    let mut plan = BTreeMap::new();
    for step in steps.iter().take(SERVE_KILLS) {
        plan.insert(*step, Fault::KillServe);
    }
    for step in steps.iter().skip(SERVE_KILLS).take(FINANCE_KILLS) {
        plan.insert(*step, Fault::KillFinance(rng.gen_range(0..6)));
    }
    plan
}

struct Fleet<'a> {
    client: reqwest::Client,
    serve_env: Vec<(&'a str, &'a str)>,
    finance_env: Vec<(&'a str, &'a str)>,
    serve: Server,
    finance: Option<Server>,
    starts: usize,
}

impl Fleet<'_> {
    async fn start_serve(&mut self) -> Server {
        self.starts += 1;
        let label = format!("crash-serve-{}", self.starts);
        Server::start_with(&["serve"], &self.serve_env, "/ready", &self.client, &label).await
    }

    async fn start_finance(&mut self) -> Server {
        self.starts += 1;
        let label = format!("crash-finance-{}", self.starts);
        Server::start_with(
            &["finance", "serve"],
            &self.finance_env,
            "/finance/ready",
            &self.client,
            &label,
        )
        .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("a request to serve");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.client.post(self.serve.url(path)).json(body))
            .await
    }

    async fn get(&self, server: &Server, path: &str) -> Value {
        let (status, body) = self
            .send(self.client.get(server.url(path)).bearer_auth(ADMIN_TOKEN))
            .await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

/// One random request of the workload.
async fn step(fleet: &Fleet<'_>, rng: &mut StdRng, orders: &mut Vec<String>) {
    let roll: f64 = rng.gen();
    if roll < 0.15 {
        let sku = SKUS.choose(rng).expect("a SKU");
        let quantity = rng.gen_range(5..20);
        let (status, body) = fleet
            .post(
                &format!("/inventory/{sku}/receipts"),
                &json!({"quantity": quantity}),
            )
            .await;
        assert_eq!(status, 201, "receipt: {body}");
    } else if roll < 0.30 && !orders.is_empty() {
        // Too late when it has shipped: 409, and that is part of the test.
        let order = orders.choose(rng).expect("an order");
        let (status, body) = fleet
            .post(
                &format!("/orders/{order}/cancel"),
                &json!({"reason": "changed mind"}),
            )
            .await;
        assert!(status == 200 || status == 409, "cancel: {status} {body}");
    } else {
        let count = rng.gen_range(1..=SKUS.len());
        let lines: Vec<Value> = SKUS
            .choose_multiple(rng, count)
            .map(|sku| {
                json!({"sku": sku, "quantity": rng.gen_range(1..=4),
                       "unit_price": format!("{}.{:02}", rng.gen_range(1..50), rng.gen_range(0..100))})
            })
            .collect();
        let order = json!({"customer_id": "c-crash", "currency": "USD", "lines": lines,
                           "payment_method": METHODS.choose(rng).expect("a method")});
        let (status, body) = fleet.post("/orders", &order).await;
        assert_eq!(status, 201, "place: {body}");
        orders.push(body["order_id"].as_str().expect("order_id").to_owned());
    }
}

/// Waits until `done` holds, with the test's patience.
async fn settle<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match done().await {
            Ok(()) => return,
            Err(state) => assert!(Instant::now() < deadline, "{what} never happened: {state}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_relay_and_finance_lose_nothing_and_book_everything_once() {
    let seed = seed();
    eprintln!("integration_faults: seed {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let FinanceOnBroker {
        broker,
        finance_db,
        exchange,
        queue,
    } = FinanceOnBroker::new("crash").await;
    let orders_db = TestDatabase::new(&MIGRATOR)
        .await
        .expect("orderstream's database");
    let (_audit_connection, seen) = audit(broker.url(), &exchange).await;
    let serve_env = vec![
        ("DATABASE_URL", orders_db.url()),
        ("ORDERSTREAM_AMQP_URL", broker.url()),
        ("ORDERSTREAM_AMQP_EXCHANGE", exchange.as_str()),
    ];
    let finance_env = vec![
        ("FINANCE_DATABASE_URL", finance_db.url()),
        ("ORDERSTREAM_AMQP_URL", broker.url()),
        ("ORDERSTREAM_AMQP_EXCHANGE", exchange.as_str()),
        ("ORDERSTREAM_FINANCE_QUEUE", queue.as_str()),
        ("ORDERSTREAM_FINANCE_RETRY_DELAYS", "100ms,200ms,400ms"),
        ("ORDERSTREAM_FINANCE_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let client = reqwest::Client::new();
    // Finance first: ready means its queue is bound, so it misses nothing.
    let finance = Server::start_with(
        &["finance", "serve"],
        &finance_env,
        "/finance/ready",
        &client,
        "crash-finance-0",
    )
    .await;
    let serve =
        Server::start_with(&["serve"], &serve_env, "/ready", &client, "crash-serve-0").await;
    let mut fleet = Fleet {
        client,
        serve_env,
        finance_env,
        serve,
        finance: Some(finance),
        starts: 0,
    };

    let plan = fault_plan(&mut rng);
    let mut finance_back_at = None;
    let mut orders = Vec::new();
    for sku in SKUS {
        let (status, _) = fleet
            .post(
                &format!("/inventory/{sku}/receipts"),
                &json!({"quantity": 20}),
            )
            .await;
        assert_eq!(status, 201);
    }
    for i in 0..STEPS {
        step(&fleet, &mut rng, &mut orders).await;
        if finance_back_at == Some(i) {
            fleet.finance = Some(fleet.start_finance().await);
            finance_back_at = None;
        }
        let Some(fault) = plan.get(&i) else { continue };
        // Not waiting for an outcome: a random moment of the work the
        // last requests set off, for the kill to land in.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..150))).await;
        match fault {
            Fault::KillServe => {
                fleet.serve.kill();
                fleet.serve = fleet.start_serve().await;
            }
            Fault::KillFinance(down) => {
                if let Some(mut finance) = fleet.finance.take() {
                    finance.kill();
                    finance_back_at = Some(i + down);
                }
                if *down == 0 {
                    fleet.finance = Some(fleet.start_finance().await);
                    finance_back_at = None;
                }
            }
        }
    }
    if fleet.finance.is_none() {
        fleet.finance = Some(fleet.start_finance().await);
    }
    let workload_took = started.elapsed();

    // Settled: every order final, every subscription (the relay among
    // them) at the head of the log.
    let mut statuses: HashMap<String, Value> = HashMap::new();
    let deadline = Instant::now() + PATIENCE;
    for order in &orders {
        loop {
            let body = fleet.get(&fleet.serve, &format!("/orders/{order}")).await;
            let status = body["status"].as_str().unwrap_or_default();
            if FINAL.contains(&status) {
                statuses.insert(order.clone(), body);
                break;
            }
            assert!(Instant::now() < deadline, "order {order} is still {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    settle("every subscription at the head", || async {
        let subscriptions = fleet.get(&fleet.serve, "/subscriptions").await;
        let behind: Vec<&Value> = subscriptions
            .as_array()
            .expect("subscriptions")
            .iter()
            .filter(|s| s["lag"] != 0)
            .collect();
        if behind.is_empty() {
            Ok(())
        } else {
            Err(format!("{behind:?}"))
        }
    })
    .await;
    let (expected, events) = expected_messages(orders_db.url()).await;
    let finance = fleet.finance.as_ref().expect("finance runs");
    settle("every message seen and booked", || async {
        let ids: HashSet<String> = seen
            .lock()
            .expect("audit lock")
            .iter()
            .map(|d| d.message_id.clone())
            .collect();
        let missing = expected.keys().filter(|id| !ids.contains(*id)).count();
        let inbox = finance::ledger::inbox_count(finance_db.pool())
            .await
            .expect("inbox count");
        if missing == 0 && inbox as usize >= expected.len() {
            Ok(())
        } else {
            Err(format!(
                "{missing} of {} not seen on the audit queue; Finance's inbox {inbox}",
                expected.len()
            ))
        }
    })
    .await;

    let seen = std::mem::take(&mut *seen.lock().expect("audit lock"));
    let redeliveries = relay_audit::check_published(&seen, &expected);
    let booked = books::check_books(&fleet.client, finance, &statuses).await;
    let dead = fleet.get(finance, "/finance/admin/dead-letters").await;
    assert_eq!(
        dead["dead_letters"].as_array().map(Vec::len),
        Some(0),
        "{dead}"
    );
    let inbox = finance::ledger::inbox_count(finance_db.pool())
        .await
        .expect("inbox count");
    assert_eq!(
        inbox as usize,
        expected.len(),
        "inbox rows = distinct message ids"
    );
    let subscriptions = fleet.get(&fleet.serve, "/subscriptions").await;
    for subscription in subscriptions.as_array().expect("subscriptions") {
        assert_eq!(subscription["parked"], 0, "{subscription}");
    }
    let count = |status: &str| statuses.values().filter(|b| b["status"] == status).count();
    eprintln!(
        "integration_faults: seed {seed}: {} orders ({} paid, {} payment failed, {} rejected, \
         {} cancelled), {events} events, {} messages owed, {redeliveries} redeliveries, {} \
         journal entries, {} process starts; workload {:.1} s, whole test {:.1} s",
        orders.len(),
        count("paid"),
        count("payment_failed"),
        count("rejected"),
        count("cancelled"),
        expected.len(),
        booked,
        fleet.starts + 2,
        workload_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
