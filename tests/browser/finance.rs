//! A real `orderstream finance serve` (this build's debug binary) on a
//! database and a RabbitMQ queue of its own, for the overview's Finance row.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rabbitmq_embedded::TestBroker;
use test_support::TestDatabase;

use crate::harness::PATIENCE;

pub struct Finance {
    child: Child,
    pub base: String,
    _db: TestDatabase,
}

impl Finance {
    /// Started, and `GET /finance/ready` answered 200: it consumes.
    pub async fn start(client: &reqwest::Client) -> Finance {
        let broker = TestBroker::shared()
            .await
            .unwrap_or_else(|error| panic!("this test needs RabbitMQ: {error}"));
        let db = TestDatabase::new(&finance::MIGRATOR)
            .await
            .expect("finance's database");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let queue = format!("{}.inbox", TestBroker::unique_name("browser-finance"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_orderstream"))
            .args(["finance", "serve"])
            .env("FINANCE_DATABASE_URL", db.url())
            .env("ORDERSTREAM_AMQP_URL", broker.url())
            .env(
                "ORDERSTREAM_AMQP_EXCHANGE",
                TestBroker::unique_name("browser-events"),
            )
            .env("ORDERSTREAM_FINANCE_QUEUE", &queue)
            .env("ORDERSTREAM_FINANCE_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn orderstream finance serve");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("finance serve exited with {status} before it was ready");
            }
            let ready = client.get(format!("{base}/finance/ready")).send().await;
            if ready.is_ok_and(|answer| answer.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "finance serve was not ready within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Finance {
            child,
            base,
            _db: db,
        }
    }
}

impl Drop for Finance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
