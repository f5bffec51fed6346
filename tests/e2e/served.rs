//! `orderstream serve`, the real binary, as a child process of a test: for
//! tests that kill it, restart it or point it at a restored database.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rabbitmq_embedded::TestBroker;
use test_support::TestDatabase;

use crate::helpers::{ADMIN_TOKEN, PATIENCE};

/// `orderstream serve` as a child process; killed (SIGKILL) and reaped on
/// drop, so a failing assertion never leaks a server.
pub struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    /// Starts the binary on a free port against `database_url` and waits
    /// until `GET /ready` answers 200.
    pub async fn start(database_url: &str, client: &reqwest::Client, label: &str) -> Server {
        Server::start_with(
            &["serve"],
            &[("DATABASE_URL", database_url)],
            "/ready",
            client,
            label,
        )
        .await
    }

    /// Starts `orderstream <arguments>` with `environment` on a free port
    /// (`ORDERSTREAM_BIND` and `ORDERSTREAM_FINANCE_BIND` both name it) and
    /// waits until `ready_path` answers 200.
    pub async fn start_with(
        arguments: &[&str],
        environment: &[(&str, &str)],
        ready_path: &str,
        client: &reqwest::Client,
        label: &str,
    ) -> Server {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "orderstream-serve-{}-{label}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let log_file = std::fs::File::create(&log).expect("create the server log");
        let child = Command::new(env!("CARGO_BIN_EXE_orderstream"))
            .args(arguments)
            .envs(environment.iter().copied())
            .env("ORDERSTREAM_BIND", format!("127.0.0.1:{port}"))
            .env("ORDERSTREAM_FINANCE_BIND", format!("127.0.0.1:{port}"))
            .env("ORDERSTREAM_FULFILMENT", "auto")
            .env("ORDERSTREAM_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn orderstream serve");
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        server.wait_ready(client, ready_path).await;
        server
    }

    async fn wait_ready(&mut self, client: &reqwest::Client, ready_path: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "orderstream exited with {status} before it was ready; log: {}",
                    self.log.display()
                );
            }
            let ready = client.get(self.url(ready_path)).send().await;
            if ready.is_ok_and(|response| response.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "orderstream was not ready within {PATIENCE:?}; log: {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's standard error, kept for a failing test's message.
    pub fn log(&self) -> &std::path::Path {
        &self.log
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no graceful shutdown, no final checkpoint.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now (bound on port 0, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local address").port()
}

/// What a test of `finance serve` on a broker starts from: the shared test
/// broker, Finance's own database, and an exchange and an inbox queue no
/// other test uses (`{label}-events`, `{label}-finance-….inbox`).
pub struct FinanceOnBroker {
    pub broker: &'static TestBroker,
    pub finance_db: TestDatabase,
    pub exchange: String,
    pub queue: String,
}

impl FinanceOnBroker {
    pub async fn new(label: &str) -> FinanceOnBroker {
        let broker = TestBroker::shared()
            .await
            .unwrap_or_else(|error| panic!("this test needs RabbitMQ: {error}"));
        let finance_db = TestDatabase::new(&finance::MIGRATOR)
            .await
            .expect("finance's database");
        FinanceOnBroker {
            broker,
            finance_db,
            exchange: TestBroker::unique_name(&format!("{label}-events")),
            queue: format!(
                "{}.inbox",
                TestBroker::unique_name(&format!("{label}-finance"))
            ),
        }
    }
}
