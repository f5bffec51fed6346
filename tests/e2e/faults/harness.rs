//! The fault tests' harness: a private PostgreSQL cluster, the real
//! binary as API and worker processes (SIGKILLed and reaped on drop), HTTP
//! that counts unexpected 5xx answers, and a load of orders released step
//! by step, so a fault always meets orders in flight.

use std::collections::BTreeMap;
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
use tokio::task::JoinHandle;

use crate::helpers::{order_body, ADMIN_TOKEN};
use crate::served::free_port;

/// Orders released to the clients per step of the fault sequence: a fault
/// is injected once half of them are acknowledged, with the other half
/// still to place; so there are `QUOTA * (faults + 1)` orders in all.
pub(super) const QUOTA: usize = 24;
/// A hard cap on the orders of the test, whatever happens.
pub(super) const MAX_ORDERS: usize = 300;
pub(super) const CLIENTS: usize = 3;
/// A client's pause between two orders.
pub(super) const PACE: Duration = Duration::from_millis(100);
/// Orders paid after a fault before the next (the choreography goes on).
pub(super) const PAID_STEP: i64 = 3;
/// Stock received before the load: plenty of A, enough B and C for some
/// orders only.
pub(super) const RECEIVED: [(&str, i64); 3] =
    [("FAULT-A", 1000), ("FAULT-B", 100), ("FAULT-C", 45)];
/// How long a client keeps retrying one order through the faults.
pub(super) const ORDER_PATIENCE: Duration = Duration::from_secs(90);
/// How long one step of the fault sequence may take to show progress.
pub(super) const STEP_PATIENCE: Duration = Duration::from_secs(60);
/// How long the system may take to settle once the load has stopped.
pub(super) const DRAIN_PATIENCE: Duration = Duration::from_secs(120);
pub(super) const DATABASE: &str = "orderstream_faults";
pub(super) const SUBSCRIPTION_LOCK_CLASS: i32 = 2;

/// Order `i`: one unit of A; every third order also two of B, every
/// fourth three of C; every tenth is declined, every seventh flaky.
pub(super) fn order_plan(i: usize) -> (Vec<(&'static str, i64)>, &'static str) {
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
pub(super) fn final_status(event_type: &str) -> Option<&'static str> {
    match event_type {
        "OrderPaid" => Some("paid"),
        "OrderRejected" => Some("rejected"),
        "OrderPaymentFailed" => Some("payment_failed"),
        _ => None,
    }
}

/// The directory of the servers' logs: removed when the test passes, kept
/// (with a copy of PostgreSQL's log) when it fails.
pub(super) struct Logs {
    pub(super) dir: PathBuf,
    pub(super) postgres_log: Option<PathBuf>,
}

impl Logs {
    pub(super) fn new() -> Logs {
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
pub(super) enum Role {
    Api,
    Worker,
}

/// One `orderstream serve` process; SIGKILLed and reaped on drop, so a
/// failing assertion never leaks a server.
pub(super) struct Process {
    child: Option<Child>,
    role: Role,
    label: String,
    starts: usize,
    log: PathBuf,
    /// `ORDERSTREAM_REACTOR_PARTITIONS` of every start.
    reactor_partitions: u32,
}

impl Process {
    pub(super) fn new(role: Role, label: &str, log_dir: &Path, reactor_partitions: u32) -> Process {
        Process {
            child: None,
            role,
            label: label.to_owned(),
            starts: 0,
            log: log_dir.join(format!("{label}.log")),
            reactor_partitions,
        }
    }

    /// The running process's pid (the runtime's owner ids start with it).
    pub(super) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the binary (`--api-only` on `port`, or `--workers-only`),
    /// appending to its log, and waits until it is ready: the API answers
    /// `GET /ready` with 200, a worker has started its subscriptions.
    pub(super) async fn start(&mut self, database_url: &str, port: u16, http: &Http) {
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
            .env(
                "ORDERSTREAM_REACTOR_PARTITIONS",
                self.reactor_partitions.to_string(),
            )
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
    pub(super) fn kill(&mut self) {
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
pub(super) struct Http {
    pub(super) client: reqwest::Client,
    pub(super) base: String,
    pub(super) server_errors: Arc<Mutex<Vec<String>>>,
}

/// Why a request got no usable answer.
pub(super) enum Failure {
    /// No response at all (the API process is dead or restarting).
    Connection(String),
    /// A response, of this status.
    Status(u16, String),
}

impl Http {
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one request; returns the status and the body (JSON, or
    /// `Null`), or the connection error.
    pub(super) async fn send(
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
    pub(super) async fn call(
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
    pub(super) async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        status: u16,
    ) -> Value {
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
pub(super) struct Load {
    pub(super) next: AtomicUsize,
    /// Orders the clients may place so far (see [`QUOTA`]).
    pub(super) allowed: AtomicUsize,
    pub(super) stop: AtomicBool,
    pub(super) acknowledged: Mutex<Vec<(usize, String)>>,
    pub(super) acknowledged_count: AtomicUsize,
    /// Tries that got no response (the API process was down).
    pub(super) retries: AtomicUsize,
    /// Tries answered 503 (the database was down).
    pub(super) unavailable: AtomicUsize,
    pub(super) failures: Mutex<Vec<String>>,
}

impl Load {
    pub(super) fn acknowledged(&self) -> usize {
        self.acknowledged_count.load(Ordering::SeqCst)
    }

    /// Places order `i`, retrying with the same Idempotency-Key through
    /// connection errors and 503s.
    pub(super) async fn place(&self, http: &Http, i: usize) {
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

    pub(super) fn fail(&self, failure: String) {
        eprintln!("faults: {failure}");
        self.failures.lock().expect("failures").push(failure);
    }

    pub(super) async fn client(self: Arc<Self>, http: Http) {
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
pub(super) async fn wait_for<F, Fut>(what: &str, patience: Duration, logs: &Path, mut condition: F)
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
pub(super) async fn count_of(pool: &PgPool, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

/// Releases [`QUOTA`] more orders to the clients and waits until all but
/// half of them are acknowledged: the next fault then meets orders in
/// flight.
pub(super) async fn under_load(load: &Load, logs: &Path) {
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
pub(super) async fn paid_now(pool: &PgPool, logs: &Path) -> i64 {
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
pub(super) async fn more_paid_than(before: i64, pool: &PgPool, logs: &Path) {
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
pub(super) async fn subscriptions(http: &Http) -> Vec<Value> {
    let list = http.expect(Method::GET, "/subscriptions", None, 200).await;
    list.as_array().expect("a list of subscriptions").clone()
}

/// Sessions holding a subscription's advisory lock.
pub(super) async fn lock_holders(pool: &PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND granted",
    )
    .bind(SUBSCRIPTION_LOCK_CLASS)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}

pub(super) async fn connect(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .expect("connect to the private cluster")
}

/// Starts this test's own cluster (PostgreSQL binaries are needed: on
/// Debian/Ubuntu `apt-get install -y postgresql`) and a migrated database.
pub(super) async fn private_cluster(options: &ClusterOptions) -> (Cluster, String) {
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

/// A running system under load: the cluster, one API process, two worker
/// processes and the load's clients, with the stock received.
pub(super) struct System {
    pub(super) started: Instant,
    pub(super) logs: Logs,
    pub(super) cluster: Cluster,
    pub(super) cluster_options: ClusterOptions,
    pub(super) database_url: String,
    pub(super) pool: PgPool,
    pub(super) http: Http,
    pub(super) api: Process,
    pub(super) api_port: u16,
    pub(super) workers: [Process; 2],
    pub(super) load: Arc<Load>,
    clients: Vec<JoinHandle<()>>,
}

impl System {
    /// Starts everything, each worker splitting its reactors
    /// `reactor_partitions` ways, and waits until orders get paid.
    pub(super) async fn start(reactor_partitions: u32) -> System {
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
        let (cluster, database_url) = private_cluster(&cluster_options).await;
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
        let mut api = Process::new(Role::Api, "api", &logs.dir, reactor_partitions);
        let mut workers = [
            Process::new(Role::Worker, "worker-1", &logs.dir, reactor_partitions),
            Process::new(Role::Worker, "worker-2", &logs.dir, reactor_partitions),
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
        let system = System {
            started,
            logs,
            cluster,
            cluster_options,
            database_url,
            pool,
            http,
            api,
            api_port,
            workers,
            load,
            clients,
        };
        // The choreography flows before the first fault.
        system.under_load().await;
        more_paid_than(0, &system.pool, &system.logs.dir).await;
        eprintln!("faults: load running at {:?}", system.started.elapsed());
        system
    }

    /// Releases more orders and waits until half of them are acknowledged.
    pub(super) async fn under_load(&self) {
        under_load(&self.load, &self.logs.dir).await;
    }

    /// Orders paid so far.
    pub(super) async fn paid_now(&self) -> i64 {
        paid_now(&self.pool, &self.logs.dir).await
    }

    /// Waits until more orders than `before` are paid.
    pub(super) async fn more_paid_than(&self, before: i64) {
        more_paid_than(before, &self.pool, &self.logs.dir).await;
    }

    /// Stops the load once each client has finished the order in hand;
    /// returns the acknowledged orders by number. `faulted`: some order
    /// must have been retried (a fault met requests in flight).
    pub(super) async fn stop_load(&mut self, faulted: bool) -> BTreeMap<usize, String> {
        let load = &self.load;
        load.stop.store(true, Ordering::SeqCst);
        for client in self.clients.drain(..) {
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
            self.started.elapsed(),
            acknowledged.len(),
        );
        assert!(
            !faulted || retries + unavailable > 0,
            "no order had to be retried: the faults met no request in flight"
        );
        acknowledged
    }
}
