//! Fault injection (issue 9): the real binary as one `serve --api-only` and
//! two `serve --workers-only` processes on a private PostgreSQL cluster of
//! this test's own, under a load of orders, while faults are injected one
//! after another: SIGKILL of each worker and of the API process (each
//! restarted), two immediate stops of PostgreSQL (each restarted on the same
//! data), `pg_terminate_backend` of every subscription lock holder, a reset
//! of every subscription to position 0 and a rebuild of every projection.
//! Afterwards every acknowledged order is final and its read model agrees
//! with its stream, stock balances with its events in `stock_levels`, in
//! the stock history and in the API, every paid order was captured exactly
//! once, nothing is parked and no response was a 5xx other than 503.
//!
//! The servers' logs are kept (their directory is printed) when the test
//! fails or `ORDERSTREAM_KEEP_FAULT_LOGS` is set, and removed otherwise.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_store::MIGRATOR;
use pg_embedded::{Cluster, ClusterOptions};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::helpers::{order_body, ADMIN_TOKEN};
use crate::served::free_port;

/// Orders released to the clients per step of the fault sequence: a fault
/// is injected once half of them are acknowledged, with the other half
/// still to place; so there are `QUOTA * (faults + 1)` orders in all.
const QUOTA: usize = 24;
/// A hard cap on the orders of the test, whatever happens.
const MAX_ORDERS: usize = 300;
const CLIENTS: usize = 3;
/// A client's pause between two orders.
const PACE: Duration = Duration::from_millis(100);
/// Orders paid after a fault before the next (the choreography goes on).
const PAID_STEP: i64 = 3;
/// Stock received before the load: plenty of A, enough B and C for some
/// orders only.
const RECEIVED: [(&str, i64); 3] = [("FAULT-A", 1000), ("FAULT-B", 100), ("FAULT-C", 45)];
/// How long a client keeps retrying one order through the faults.
const ORDER_PATIENCE: Duration = Duration::from_secs(90);
/// How long one step of the fault sequence may take to show progress.
const STEP_PATIENCE: Duration = Duration::from_secs(60);
/// How long the system may take to settle once the load has stopped.
const DRAIN_PATIENCE: Duration = Duration::from_secs(120);
const DATABASE: &str = "orderstream_faults";
const SUBSCRIPTION_LOCK_CLASS: i32 = 2;

/// Order `i`: one unit of A; every third order also two of B, every
/// fourth three of C; every tenth is declined, every seventh flaky.
fn order_plan(i: usize) -> (Vec<(&'static str, i64)>, &'static str) {
    let mut lines = vec![("FAULT-A", 1)];
    if i % 3 == 1 {
        lines.push(("FAULT-B", 2));
    }
    if i % 4 == 2 {
        lines.push(("FAULT-C", 3));
    }
    let method = if i % 10 == 3 {
        "card_declined"
    } else if i % 7 == 5 {
        "card_flaky"
    } else {
        "card_ok"
    };
    (lines, method)
}

/// The order status a final event of the order stream stands for.
fn final_status(event_type: &str) -> Option<&'static str> {
    match event_type {
        "OrderPaid" => Some("paid"),
        "OrderRejected" => Some("rejected"),
        "OrderPaymentFailed" => Some("payment_failed"),
        _ => None,
    }
}

/// The directory of the servers' logs: removed when the test passes, kept
/// (with a copy of PostgreSQL's log) when it fails.
struct Logs {
    dir: PathBuf,
    postgres_log: Option<PathBuf>,
}

impl Logs {
    fn new() -> Logs {
        let dir = std::env::temp_dir().join(format!(
            "orderstream-faults-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("create the log directory");
        eprintln!("faults: server logs in {}", dir.display());
        Logs {
            dir,
            postgres_log: None,
        }
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("ORDERSTREAM_KEEP_FAULT_LOGS").is_some() {
            if let Some(log) = &self.postgres_log {
                let _ = std::fs::copy(log, self.dir.join("postgres.log"));
            }
            eprintln!("faults: the server logs are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Api,
    Worker,
}

/// One `orderstream serve` process; SIGKILLed and reaped on drop, so a
/// failing assertion never leaks a server.
struct Process {
    child: Option<Child>,
    role: Role,
    label: String,
    starts: usize,
    log: PathBuf,
}

impl Process {
    fn new(role: Role, label: &str, log_dir: &Path) -> Process {
        Process {
            child: None,
            role,
            label: label.to_owned(),
            starts: 0,
            log: log_dir.join(format!("{label}.log")),
        }
    }

    /// Starts the binary (`--api-only` on `port`, or `--workers-only`),
    /// appending to its log, and waits until it is ready: the API answers
    /// `GET /ready` with 200, a worker has started its subscriptions.
    async fn start(&mut self, database_url: &str, port: u16, http: &Http) {
        assert!(self.child.is_none(), "{} is already running", self.label);
        self.starts += 1;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        {
            use std::io::Write;
            writeln!(log, "==== start #{} of {} ====", self.starts, self.label)
                .expect("write the server log");
        }
        let offset = std::fs::metadata(&self.log).map_or(0, |meta| meta.len());
        let mode = match self.role {
            Role::Api => "--api-only",
            Role::Worker => "--workers-only",
        };
        let child = Command::new(env!("CARGO_BIN_EXE_orderstream"))
            .args(["serve", mode])
            .env("DATABASE_URL", database_url)
            .env("ORDERSTREAM_BIND", format!("127.0.0.1:{port}"))
            .env("ORDERSTREAM_FULFILMENT", "auto")
            .env("ORDERSTREAM_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "info,sqlx=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn orderstream serve");
        self.child = Some(child);
        let deadline = Instant::now() + STEP_PATIENCE;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{} exited with {status} before it was ready; log: {}",
                    self.label,
                    self.log.display()
                );
            }
            let ready = match self.role {
                Role::Api => http
                    .client
                    .get(http.url("/ready"))
                    .send()
                    .await
                    .is_ok_and(|response| response.status() == 200),
                Role::Worker => std::fs::read(&self.log).is_ok_and(|bytes| {
                    let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
                    String::from_utf8_lossy(&bytes[start..]).contains("running subscriptions only")
                }),
            };
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} was not ready within {STEP_PATIENCE:?}; log: {}",
                self.label,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no graceful shutdown, no final checkpoint.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("the process is running");
        child.kill().expect("SIGKILL the server");
        child.wait().expect("reap the server");
        eprintln!("faults: SIGKILLed {}", self.label);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// HTTP to the API process, counting every 5xx answer other than 503.
#[derive(Clone)]
struct Http {
    client: reqwest::Client,
    base: String,
    server_errors: Arc<Mutex<Vec<String>>>,
}

/// Why a request got no usable answer.
enum Failure {
    /// No response at all (the API process is dead or restarting).
    Connection(String),
    /// A response, of this status.
    Status(u16, String),
}

impl Http {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one request; returns the status and the body (JSON, or
    /// `Null`), or the connection error.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Value), String> {
        let mut request = self
            .client
            .request(method.clone(), self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|error| error.to_string())?;
        if status >= 500 && status != 503 {
            self.server_errors
                .lock()
                .expect("server errors")
                .push(format!("{status} {method} {path}: {text}"));
        }
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Repeats a request on connection errors and 503 until it gets
    /// another answer or `patience` runs out.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        patience: Duration,
    ) -> Result<(u16, Value), Failure> {
        let deadline = Instant::now() + patience;
        loop {
            let last = match self.send(method.clone(), path, body, idempotency_key).await {
                Ok((503, body)) => Failure::Status(503, body.to_string()),
                Ok(answer) => return Ok(answer),
                Err(error) => Failure::Connection(error),
            };
            if Instant::now() > deadline {
                return Err(last);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An answer that must have `status`, with retries through faults.
    async fn expect(&self, method: Method, path: &str, body: Option<&Value>, status: u16) -> Value {
        match self
            .call(method.clone(), path, body, None, STEP_PATIENCE)
            .await
        {
            Ok((got, answer)) => {
                assert_eq!(got, status, "{method} {path}: {answer}");
                answer
            }
            Err(Failure::Connection(error)) => panic!("{method} {path}: no answer: {error}"),
            Err(Failure::Status(got, answer)) => panic!("{method} {path}: {got} {answer}"),
        }
    }
}

/// The load: clients placing orders until told to stop or `MAX_ORDERS`
/// are placed; an order counts only once a 201 or 200 came back.
struct Load {
    next: AtomicUsize,
    /// Orders the clients may place so far (see [`QUOTA`]).
    allowed: AtomicUsize,
    stop: AtomicBool,
    acknowledged: Mutex<Vec<(usize, String)>>,
    acknowledged_count: AtomicUsize,
    /// Tries that got no response (the API process was down).
    retries: AtomicUsize,
    /// Tries answered 503 (the database was down).
    unavailable: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Load {
    fn acknowledged(&self) -> usize {
        self.acknowledged_count.load(Ordering::SeqCst)
    }

    /// Places order `i`, retrying with the same Idempotency-Key through
    /// connection errors and 503s.
    async fn place(&self, http: &Http, i: usize) {
        let (lines, method) = order_plan(i);
        let body = order_body(&lines, method);
        let key = format!("faults-order-{i}");
        let deadline = Instant::now() + ORDER_PATIENCE;
        loop {
            let failure = match http
                .send(Method::POST, "/orders", Some(&body), Some(&key))
                .await
            {
                Ok((200 | 201, answer)) => {
                    let Some(order_id) = answer["order_id"].as_str() else {
                        self.fail(format!("order #{i}: no order_id in {answer}"));
                        return;
                    };
                    self.acknowledged
                        .lock()
                        .expect("acknowledged orders")
                        .push((i, order_id.to_owned()));
                    self.acknowledged_count.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok((503, answer)) => {
                    self.unavailable.fetch_add(1, Ordering::SeqCst);
                    format!("503 {answer}")
                }
                Ok((status, answer)) => {
                    self.fail(format!("order #{i}: {status} {answer}"));
                    return;
                }
                Err(error) => {
                    self.retries.fetch_add(1, Ordering::SeqCst);
                    error
                }
            };
            if Instant::now() > deadline {
                self.fail(format!(
                    "order #{i} was not acknowledged within {ORDER_PATIENCE:?}; last: {failure}"
                ));
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn fail(&self, failure: String) {
        eprintln!("faults: {failure}");
        self.failures.lock().expect("failures").push(failure);
    }

    async fn client(self: Arc<Self>, http: Http) {
        while !self.stop.load(Ordering::SeqCst) {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            if i >= MAX_ORDERS {
                return;
            }
            // Order `i` waits for its release by the fault sequence.
            while i >= self.allowed.load(Ordering::SeqCst) {
                if self.stop.load(Ordering::SeqCst) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            self.place(&http, i).await;
            tokio::time::sleep(PACE).await;
        }
    }
}

/// Waits until `condition` holds, for at most `patience`.
async fn wait_for<F, Fut>(what: &str, patience: Duration, logs: &Path, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {patience:?} waiting until {what}; logs: {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Events of one type in the log; -1 while the database cannot answer.
async fn count_of(pool: &PgPool, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

/// Releases [`QUOTA`] more orders to the clients and waits until all but
/// half of them are acknowledged: the next fault then meets orders in
/// flight.
async fn under_load(load: &Load, logs: &Path) {
    let allowed = (load.allowed.fetch_add(QUOTA, Ordering::SeqCst) + QUOTA).min(MAX_ORDERS);
    let target = allowed - QUOTA / 2;
    wait_for(
        &format!("{target} orders are acknowledged"),
        STEP_PATIENCE,
        logs,
        || async { load.acknowledged() >= target },
    )
    .await;
}

/// Orders paid so far, once the database answers.
async fn paid_now(pool: &PgPool, logs: &Path) -> i64 {
    let deadline = Instant::now() + STEP_PATIENCE;
    loop {
        let paid = count_of(pool, "OrderPaid").await;
        if paid >= 0 {
            return paid;
        }
        assert!(
            Instant::now() < deadline,
            "the database did not answer within {STEP_PATIENCE:?}; logs: {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until [`PAID_STEP`] more orders than `before` are paid: the
/// choreography goes on after a fault. Half a [`QUOTA`] of orders still to
/// place always holds that many paid ones (`order_plan`).
async fn more_paid_than(before: i64, pool: &PgPool, logs: &Path) {
    let target = before + PAID_STEP;
    wait_for(
        &format!("{target} orders are paid"),
        STEP_PATIENCE,
        logs,
        || async { count_of(pool, "OrderPaid").await >= target },
    )
    .await;
}

/// The subscriptions as `GET /subscriptions` shows them.
async fn subscriptions(http: &Http) -> Vec<Value> {
    let list = http.expect(Method::GET, "/subscriptions", None, 200).await;
    list.as_array().expect("a list of subscriptions").clone()
}

/// Sessions holding a subscription's advisory lock.
async fn lock_holders(pool: &PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted",
    )
    .bind(SUBSCRIPTION_LOCK_CLASS)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}

async fn connect(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .expect("connect to the private cluster")
}

/// Starts this test's own cluster (PostgreSQL binaries are needed: on
/// Debian/Ubuntu `apt-get install -y postgresql`) and a migrated database.
async fn private_cluster(options: &ClusterOptions) -> (Cluster, String) {
    let cluster =
        tokio::task::block_in_place(|| Cluster::start_temporary(options)).unwrap_or_else(|error| {
            panic!(
                "could not start a private PostgreSQL cluster ({error}); the test needs the \
                 PostgreSQL server binaries: on Debian/Ubuntu apt-get install -y postgresql"
            )
        });
    let admin = connect(&cluster.url("postgres")).await;
    sqlx::query(&format!(r#"CREATE DATABASE "{DATABASE}""#))
        .execute(&admin)
        .await
        .expect("create the database");
    admin.close().await;
    let url = cluster.url(DATABASE);
    let pool = connect(&url).await;
    MIGRATOR.run(&pool).await.expect("migrate the database");
    pool.close().await;
    (cluster, url)
}

/// Stock per SKU, folded from the inventory streams' events.
#[derive(Debug, Default)]
struct StockFromEvents {
    received: i64,
    committed: i64,
    adjusted: i64,
    reserved: i64,
    events: i64,
}

fn allocated(data: &Value) -> i64 {
    data["allocations"]
        .as_array()
        .expect("allocations")
        .iter()
        .map(|allocation| allocation["quantity"].as_i64().expect("quantity"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_killed_processes_database_crashes_fenced_owners_resets_and_rebuilds() {
    let started = Instant::now();
    let mut logs = Logs::new();
    let cluster_options = ClusterOptions {
        // fsync off is safe here: PostgreSQL crashes, the machine does not.
        // Commits stay synchronous, so an acknowledged commit survives.
        unsafe_fast: false,
        settings: vec![
            ("max_connections".into(), "300".into()),
            ("fsync".into(), "off".into()),
        ],
    };
    let (mut cluster, database_url) = private_cluster(&cluster_options).await;
    logs.postgres_log = cluster
        .data_dir()
        .parent()
        .map(|dir| dir.join("postgres.log"));
    let pool = connect(&database_url).await;

    let api_port = free_port();
    let http = Http {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("HTTP client"),
        base: format!("http://127.0.0.1:{api_port}"),
        server_errors: Arc::default(),
    };
    let mut api = Process::new(Role::Api, "api", &logs.dir);
    let mut workers = [
        Process::new(Role::Worker, "worker-1", &logs.dir),
        Process::new(Role::Worker, "worker-2", &logs.dir),
    ];
    api.start(&database_url, api_port, &http).await;
    for worker in &mut workers {
        worker.start(&database_url, free_port(), &http).await;
    }

    for (sku, quantity) in RECEIVED {
        http.expect(
            Method::POST,
            &format!("/inventory/{sku}/receipts"),
            Some(&json!({ "quantity": quantity })),
            201,
        )
        .await;
    }

    let load = Arc::new(Load {
        next: AtomicUsize::new(0),
        allowed: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        acknowledged: Mutex::default(),
        acknowledged_count: AtomicUsize::new(0),
        retries: AtomicUsize::new(0),
        unavailable: AtomicUsize::new(0),
        failures: Mutex::default(),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(load.clone().client(http.clone())))
        .collect();
    let log_dir = logs.dir.clone();
    let logs_at = log_dir.as_path();

    // The choreography flows before the first fault.
    under_load(&load, logs_at).await;
    more_paid_than(0, &pool, logs_at).await;
    eprintln!("faults: load running at {:?}", started.elapsed());

    // 1. SIGKILL each worker in turn (the other takes over), then restart
    // it; then SIGKILL the API and restart it.
    for worker in &mut workers {
        under_load(&load, logs_at).await;
        let paid = paid_now(&pool, logs_at).await;
        worker.kill();
        more_paid_than(paid, &pool, logs_at).await;
        worker.start(&database_url, free_port(), &http).await;
    }
    under_load(&load, logs_at).await;
    let paid = paid_now(&pool, logs_at).await;
    api.kill();
    api.start(&database_url, api_port, &http).await;
    more_paid_than(paid, &pool, logs_at).await;
    eprintln!("faults: processes killed by {:?}", started.elapsed());

    // 2. Two immediate stops of PostgreSQL, each started again.
    for round in 1..=2 {
        under_load(&load, logs_at).await;
        let paid = paid_now(&pool, logs_at).await;
        tokio::task::block_in_place(|| cluster.crash_and_restart(&cluster_options))
            .unwrap_or_else(|error| panic!("crash and restart PostgreSQL: {error}"));
        eprintln!(
            "faults: PostgreSQL crashed and restarted ({round}) at {:?}",
            started.elapsed()
        );
        more_paid_than(paid, &pool, logs_at).await;
    }

    // 3. The lock owners' sessions are terminated under them.
    under_load(&load, logs_at).await;
    let pool_ref = &pool;
    wait_for(
        "the subscriptions have owners",
        STEP_PATIENCE,
        logs_at,
        || async move { !lock_holders(pool_ref).await.is_empty() },
    )
    .await;
    let paid = paid_now(&pool, logs_at).await;
    let terminated: Vec<(i32, bool)> = sqlx::query_as(
        "SELECT pid, pg_terminate_backend(pid) FROM \
           (SELECT DISTINCT pid FROM pg_locks \
             WHERE locktype = 'advisory' AND classid = $1 AND granted) AS holders",
    )
    .bind(SUBSCRIPTION_LOCK_CLASS)
    .fetch_all(&pool)
    .await
    .expect("terminate the lock owners' sessions");
    eprintln!(
        "faults: terminated the sessions holding subscription locks (pid, done) {terminated:?} at {:?}",
        started.elapsed()
    );
    assert!(
        terminated.iter().any(|(_, done)| *done),
        "no lock owner was terminated: {terminated:?}"
    );
    more_paid_than(paid, &pool, logs_at).await;

    // 4. Every subscription reset to position 0.
    under_load(&load, logs_at).await;
    let names: Vec<String> = subscriptions(&http)
        .await
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect();
    assert!(names.len() >= 6, "subscriptions: {names:?}");
    let paid = paid_now(&pool, logs_at).await;
    for name in &names {
        http.expect(
            Method::POST,
            &format!("/subscriptions/{name}/reset"),
            Some(&json!({ "position": 0 })),
            202,
        )
        .await;
    }
    eprintln!("faults: reset {names:?} to 0 at {:?}", started.elapsed());
    more_paid_than(paid, &pool, logs_at).await;

    // 5. Every projection rebuilt.
    under_load(&load, logs_at).await;
    let paid = paid_now(&pool, logs_at).await;
    for name in ["orders", "stock", "payments"] {
        http.expect(
            Method::POST,
            &format!("/projections/{name}/rebuild"),
            None,
            202,
        )
        .await;
    }
    eprintln!("faults: rebuilds asked at {:?}", started.elapsed());
    more_paid_than(paid, &pool, logs_at).await;

    // The load stops; each client finishes the order it has in hand.
    load.stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("a load client");
    }
    let failures = load.failures.lock().expect("failures").clone();
    assert!(failures.is_empty(), "orders failed: {failures:#?}");
    let acknowledged: BTreeMap<usize, String> = load
        .acknowledged
        .lock()
        .expect("acknowledged orders")
        .iter()
        .cloned()
        .collect();
    let retries = load.retries.load(Ordering::SeqCst);
    let unavailable = load.unavailable.load(Ordering::SeqCst);
    eprintln!(
        "faults: load stopped at {:?}: {} orders acknowledged; retried {retries} times \
         after no response, {unavailable} after a 503",
        started.elapsed(),
        acknowledged.len(),
    );
    assert!(
        retries + unavailable > 0,
        "no order had to be retried: the faults met no request in flight"
    );

    // Everything settles: every order final, every subscription caught up.
    let last_events = || async {
        sqlx::query_as::<_, (String, String, i64)>(
            "SELECT DISTINCT ON (stream_id) stream_id, event_type, stream_version FROM events \
              WHERE stream_id LIKE 'order-%' ORDER BY stream_id, stream_version DESC",
        )
        .fetch_all(&pool)
        .await
        .map(|rows| {
            rows.into_iter()
                .map(|(stream, event_type, version)| (stream, (event_type, version)))
                .collect::<HashMap<_, _>>()
        })
        .unwrap_or_default()
    };
    let settled = || async {
        let last = last_events().await;
        let all_final = acknowledged.values().all(|order_id| {
            last.get(&format!("order-{order_id}"))
                .is_some_and(|(event_type, _)| final_status(event_type).is_some())
        });
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM subscription_requests WHERE done_at IS NULL")
                .fetch_one(&pool)
                .await
                .unwrap_or(-1);
        all_final
            && pending == 0
            && subscriptions(&http)
                .await
                .iter()
                .all(|s| s["lag"] == 0 && s["state"] == "running")
    };
    let drained = Instant::now();
    wait_for(
        "every acknowledged order is final, every operator request done and every \
         subscription running with lag 0",
        DRAIN_PATIENCE,
        logs_at,
        settled,
    )
    .await;
    eprintln!(
        "faults: settled {:?} after the load stopped",
        drained.elapsed()
    );

    // Every reset and rebuild was carried out.
    let requests: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT subscription, kind, outcome FROM subscription_requests ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("operator requests");
    assert_eq!(requests.len(), names.len() + 3, "requests: {requests:?}");
    for (subscription, kind, outcome) in &requests {
        let expected = if kind == "reset" {
            "reset to position 0"
        } else {
            "rebuilt"
        };
        assert_eq!(
            outcome.as_deref(),
            Some(expected),
            "{kind} of {subscription}: {requests:?}"
        );
    }

    // Every acknowledged order is final; its read model agrees with its
    // stream's last event; no order was placed that was not acknowledged.
    let last = last_events().await;
    assert_eq!(
        last.len(),
        acknowledged.len(),
        "order streams vs acknowledged orders"
    );
    let mut statuses: BTreeMap<usize, &'static str> = BTreeMap::new();
    for (i, order_id) in &acknowledged {
        let (event_type, version) = &last[&format!("order-{order_id}")];
        let status = final_status(event_type).expect("final");
        let read_model = http
            .expect(Method::GET, &format!("/orders/{order_id}"), None, 200)
            .await;
        assert_eq!(
            read_model["status"], status,
            "order #{i} {order_id}: the stream ends with {event_type}; read model {read_model}"
        );
        assert_eq!(
            read_model["version"], *version,
            "order #{i} {order_id}: read model {read_model}"
        );
        let (_, method) = order_plan(*i);
        if method == "card_declined" {
            assert_ne!(status, "paid", "order #{i}: a declined card never pays");
        } else {
            assert_ne!(status, "payment_failed", "order #{i} ({method})");
        }
        statuses.insert(*i, status);
    }
    let count = |wanted: &str| statuses.values().filter(|s| **s == wanted).count();
    eprintln!(
        "faults: {} paid, {} rejected, {} payment_failed",
        count("paid"),
        count("rejected"),
        count("payment_failed")
    );
    assert!(count("paid") > 0, "some orders are paid");
    assert!(count("rejected") > 0, "some orders are rejected");
    assert!(count("payment_failed") > 0, "some orders fail payment");

    // Stock: on hand = received - shipped, nothing reserved, in the table,
    // the history and the API.
    let inventory_events = sqlx::query_as::<_, (String, String, Value)>(
        "SELECT stream_id, event_type, data FROM events WHERE stream_id LIKE 'inventory-%'",
    )
    .fetch_all(&pool)
    .await
    .expect("inventory events");
    let mut stock: BTreeMap<String, StockFromEvents> = BTreeMap::new();
    for (stream, event_type, data) in inventory_events {
        let sku = stream.trim_start_matches("inventory-").to_owned();
        let entry = stock.entry(sku).or_default();
        entry.events += 1;
        match event_type.as_str() {
            "StockReceived" => entry.received += data["quantity"].as_i64().expect("quantity"),
            "StockAdjusted" => entry.adjusted += data["delta"].as_i64().expect("delta"),
            "StockReserved" => entry.reserved += allocated(&data),
            "StockReleased" => entry.reserved -= allocated(&data),
            "StockCommitted" => {
                entry.reserved -= allocated(&data);
                entry.committed += allocated(&data);
            }
            other => panic!("unknown inventory event {other}"),
        }
    }
    assert_eq!(stock.len(), RECEIVED.len(), "SKUs: {stock:?}");
    for (sku, received) in RECEIVED {
        let events = &stock[sku];
        assert_eq!(events.received, received, "{sku}: {events:?}");
        assert_eq!(events.reserved, 0, "{sku}: open reservations: {events:?}");
        let on_hand = events.received + events.adjusted - events.committed;
        let (level_on_hand, level_reserved): (i64, i64) = sqlx::query_as(
            "SELECT sum(on_hand)::bigint, sum(reserved)::bigint FROM stock_levels WHERE sku = $1",
        )
        .bind(sku)
        .fetch_one(&pool)
        .await
        .expect("stock level");
        assert_eq!(
            (level_on_hand, level_reserved),
            (on_hand, 0),
            "{sku}: stock_levels (on hand, reserved) vs events {events:?}"
        );
        let api_level = http
            .expect(Method::GET, &format!("/inventory/{sku}"), None, 200)
            .await;
        assert_eq!(api_level["on_hand"], on_hand, "{sku}: {api_level}");
        assert_eq!(api_level["reserved"], 0, "{sku}: {api_level}");
        assert_eq!(api_level["available"], on_hand, "{sku}: {api_level}");
        let history_rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM stock_history WHERE sku = $1")
                .bind(sku)
                .fetch_one(&pool)
                .await
                .expect("stock history rows");
        assert_eq!(
            history_rows, events.events,
            "{sku}: one stock_history row per inventory event"
        );
        let (last_on_hand, last_reserved): (i64, i64) = sqlx::query_as(
            "SELECT on_hand, reserved FROM stock_history WHERE sku = $1 \
              ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .bind(sku)
        .fetch_one(&pool)
        .await
        .expect("last stock history row");
        assert_eq!(
            (last_on_hand, last_reserved),
            (on_hand, 0),
            "{sku}: the last stock_history row is the current level"
        );
    }

    // One capture per paid order, none for the others.
    let captured: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT stream_id, count(*) FROM events WHERE event_type = 'PaymentCaptured' \
          GROUP BY stream_id",
    )
    .fetch_all(&pool)
    .await
    .expect("captures")
    .into_iter()
    .collect();
    for (i, order_id) in &acknowledged {
        let captures = captured
            .get(&format!("payment-{order_id}"))
            .copied()
            .unwrap_or(0);
        let expected = i64::from(statuses[i] == "paid");
        assert_eq!(
            captures, expected,
            "order #{i} {order_id} is {} with {captures} captures",
            statuses[i]
        );
    }
    assert_eq!(captured.len(), count("paid"), "captures: {captured:?}");

    // Nothing parked.
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM parked_events")
        .fetch_one(&pool)
        .await
        .expect("parked events");
    let listed = subscriptions(&http).await;
    assert_eq!(parked, 0, "parked events; subscriptions: {listed:?}");
    assert!(
        listed.iter().all(|s| s["parked"] == 0),
        "subscriptions: {listed:?}"
    );

    // No 5xx but 503.
    let server_errors = http.server_errors.lock().expect("server errors").clone();
    assert!(
        server_errors.is_empty(),
        "5xx answers other than 503: {server_errors:#?}"
    );
    eprintln!("faults: passed in {:?}", started.elapsed());

    drop(api);
    drop(workers);
    pool.close().await;
    drop(cluster);
}
