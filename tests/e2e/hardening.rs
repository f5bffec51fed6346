//! Slow and hostile clients: header-read timeout, request timeout, the
//! bound on requests in flight, a bounded graceful shutdown of the real
//! binary, and metrics labels that clients cannot multiply. Slow clients
//! are raw TCP streams, so that the test controls every byte and pause.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api::{ApiConfig, AppState};
use commands::{CommandExecutor, ExecutorOptions};
use event_store::{EventStore, StoreOptions, MIGRATOR};
use test_support::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::helpers::PATIENCE;
use crate::served::free_port;

/// The API in-process with `config`, on port 0 of a fresh database.
struct Api {
    _database: TestDatabase,
    address: std::net::SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Api {
    async fn start(config: ApiConfig) -> Api {
        let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
        let store = EventStore::connect(database.url(), &StoreOptions::default())
            .await
            .expect("connect");
        let executor = CommandExecutor::new(store, ExecutorOptions::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(api::serve(
            listener,
            AppState::new(executor, config),
            async move {
                let _ = stopped.await;
            },
        ));
        Api {
            _database: database,
            address,
            _stop: stop,
        }
    }
}

/// What a slow client saw by the time its connection closed.
struct Closed {
    after: Duration,
    answer: Vec<u8>,
}

/// Sends `head` one byte every `pause`, as a slow-loris client does, and
/// returns when the server closes the connection; panics after `deadline`.
async fn dribble_until_closed(
    address: std::net::SocketAddr,
    head: &[u8],
    pause: Duration,
    deadline: Duration,
) -> Closed {
    let stream = TcpStream::connect(address).await.expect("connect");
    dribble_on(stream, head, pause, deadline).await
}

/// [`dribble_until_closed`] on a connection the caller opened.
async fn dribble_on(
    mut stream: TcpStream,
    head: &[u8],
    pause: Duration,
    deadline: Duration,
) -> Closed {
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 1024];
    for byte in head.iter().cycle() {
        assert!(
            started.elapsed() < deadline,
            "a slow client was still connected after {deadline:?}"
        );
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        match tokio::time::timeout(pause, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(read)) => answer.extend_from_slice(&buffer[..read]),
            Err(_) => {}
        }
    }
    Closed {
        after: started.elapsed(),
        answer,
    }
}

/// Reads until the server closes the connection (it does after an answer
/// to `Connection: close`): the answer, empty if none came. Panics after
/// `deadline`.
async fn read_answer(stream: &mut TcpStream, deadline: Duration) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 4096];
    let read_all = async {
        // A reset ends the answer as an orderly close does.
        while let Ok(read @ 1..) = stream.read(&mut buffer).await {
            answer.extend_from_slice(&buffer[..read]);
        }
    };
    tokio::time::timeout(deadline, read_all)
        .await
        .expect("the connection closed within the deadline");
    String::from_utf8_lossy(&answer).into_owned()
}

/// A `POST /orders` whose head is complete and whose body never comes.
async fn stalled_post(address: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream
        .write_all(
            b"POST /orders HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .expect("send the head");
    stream
}

const SLOW_HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: ";

#[tokio::test]
async fn slow_header_clients_are_closed_after_the_header_timeout() {
    let api = Api::start(ApiConfig {
        header_read_timeout: Duration::from_secs(1),
        ..ApiConfig::default()
    })
    .await;
    let clients: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(dribble_until_closed(
                api.address,
                SLOW_HEAD,
                Duration::from_millis(200),
                Duration::from_secs(10),
            ))
        })
        .collect();
    let mut latest = Duration::ZERO;
    for client in clients {
        let closed = client.await.expect("client task");
        latest = latest.max(closed.after);
        assert!(
            closed.after >= Duration::from_millis(900),
            "closed before the timeout: {:?}",
            closed.after
        );
        assert!(
            closed.after < Duration::from_secs(5),
            "closed late: {:?}",
            closed.after
        );
        assert!(
            closed.answer.is_empty(),
            "a slow client got an answer: {}",
            String::from_utf8_lossy(&closed.answer)
        );
    }
    eprintln!("20 slow-header clients closed, the last after {latest:?}");
}

#[tokio::test]
async fn idle_kept_alive_connections_are_closed_after_the_header_timeout() {
    let api = Api::start(ApiConfig {
        header_read_timeout: Duration::from_secs(1),
        ..ApiConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(api.address).await.expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("send a request");
    let started = Instant::now();
    let answer = read_answer(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_request_over_the_timeout_gets_a_503_problem() {
    let api = Api::start(ApiConfig {
        request_timeout: Duration::from_secs(1),
        ..ApiConfig::default()
    })
    .await;
    let started = Instant::now();
    let mut stream = stalled_post(api.address).await;
    let answer = read_answer(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("longer than the limit of 1 s"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn requests_over_the_concurrency_limit_get_503_with_retry_after() {
    const LIMIT: usize = 4;
    const EXTRA: usize = 6;
    let api = Api::start(ApiConfig {
        max_concurrent_requests: LIMIT,
        request_timeout: Duration::from_secs(3),
        ..ApiConfig::default()
    })
    .await;
    let started = Instant::now();
    let mut requests = Vec::new();
    for _ in 0..LIMIT + EXTRA {
        requests.push(stalled_post(api.address).await);
    }
    let answers: Vec<(String, Duration)> =
        futures::future::join_all(requests.iter_mut().map(|stream| async {
            let answer = read_answer(stream, Duration::from_secs(20)).await;
            (answer, started.elapsed())
        }))
        .await;
    let shed: Vec<_> = answers
        .iter()
        .filter(|(answer, _)| answer.to_ascii_lowercase().contains("retry-after: 1"))
        .collect();
    assert_eq!(shed.len(), EXTRA, "answers: {answers:#?}");
    for (answer, after) in &shed {
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("as many requests as it allows"), "{answer}");
        assert!(*after < Duration::from_secs(3), "shed late: {after:?}");
    }
    // The requests that were let in ran to their timeout.
    let timed_out = answers
        .iter()
        .filter(|(answer, _)| answer.contains("longer than the limit"))
        .count();
    assert_eq!(timed_out, LIMIT, "answers: {answers:#?}");
    // Their permits are back: a normal request is served.
    let receipt = reqwest::Client::new()
        .post(format!("http://{}/inventory/SKU-1/receipts", api.address))
        .json(&serde_json::json!({"quantity": 5}))
        .send()
        .await
        .expect("request");
    assert_eq!(receipt.status(), 201);
}

/// `orderstream serve` with `env` on top of a test's settings; killed on
/// drop.
struct Binary {
    child: Child,
    address: std::net::SocketAddr,
    log: std::path::PathBuf,
}

impl Binary {
    async fn start(database_url: &str, env: &[(&str, &str)]) -> Binary {
        let address: std::net::SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("an address");
        let log = std::env::temp_dir().join(format!(
            "orderstream-hardening-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let mut command = Command::new(env!("CARGO_BIN_EXE_orderstream"));
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("ORDERSTREAM_BIND", address.to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the server log"));
        for (name, value) in env {
            command.env(name, value);
        }
        let mut binary = Binary {
            child: command.spawn().expect("spawn orderstream serve"),
            address,
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = binary.child.try_wait() {
                panic!("serve exited with {status}; log: {}", binary.log.display());
            }
            let ready = client.get(binary.url("/ready")).send().await;
            if ready.is_ok_and(|response| response.status() == 200) {
                return binary;
            }
            assert!(Instant::now() < deadline, "serve was not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sigterm_with_slow_connections_open_exits_within_the_grace_period() {
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    let grace = Duration::from_secs(2);
    let mut binary = Binary::start(
        database.url(),
        &[
            // Long timeouts: only the grace period can end these clients.
            ("ORDERSTREAM_HEADER_TIMEOUT", "120"),
            ("ORDERSTREAM_REQUEST_TIMEOUT", "120"),
            ("ORDERSTREAM_SHUTDOWN_GRACE", "2"),
        ],
    )
    .await;
    // Every slow client is connected and has sent part of its head before
    // the signal.
    let mut slow_heads = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(binary.address).await.expect("connect");
        stream.write_all(&SLOW_HEAD[..1]).await.expect("first byte");
        slow_heads.push(tokio::spawn(dribble_on(
            stream,
            &SLOW_HEAD[1..],
            Duration::from_millis(500),
            PATIENCE,
        )));
    }
    let mut in_flight = stalled_post(binary.address).await;
    // An idle kept-alive connection too.
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(binary.url("/health"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );
    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &binary.child.id().to_string()])
        .status()
        .expect("run `kill` (install procps)");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = binary.child.try_wait().expect("wait for serve") {
            break status;
        }
        assert!(
            signalled.elapsed() < grace + Duration::from_secs(8),
            "serve still running {:?} after SIGTERM; log: {}",
            signalled.elapsed(),
            binary.log.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exited_after = signalled.elapsed();
    assert!(status.success(), "serve exited with {status}");
    assert!(
        exited_after >= grace - Duration::from_millis(100),
        "exited before the grace period ended: {exited_after:?}"
    );
    eprintln!("serve exited {exited_after:?} after SIGTERM with 21 slow connections open");
    for client in slow_heads {
        client.await.expect("slow client closed");
    }
    let answer = read_answer(&mut in_flight, Duration::from_secs(5)).await;
    assert!(answer.is_empty(), "the stalled request got: {answer}");
}

#[tokio::test]
async fn invented_methods_do_not_grow_the_metrics() {
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    let binary = Binary::start(database.url(), &[]).await;
    let client = reqwest::Client::new();
    let scrape = || async {
        client
            .get(binary.url("/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("metrics text")
    };
    // The first scrape records its own latency; the second shows it.
    let _ = scrape().await;
    let before = scrape().await;
    for index in 0..300 {
        let method = reqwest::Method::from_bytes(format!("INVENTED{index}").as_bytes())
            .expect("a method token");
        let answer = client
            .request(method, binary.url("/orders"))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 405);
    }
    let after = scrape().await;
    eprintln!(
        "/metrics: {} bytes before, {} bytes after 300 invented methods",
        before.len(),
        after.len()
    );
    assert!(!after.contains("INVENTED"), "a raw method became a label");
    assert!(after.contains(r#"method="other""#));
    assert!(
        after.len() < before.len() + 4096,
        "the scrape grew from {} to {} bytes",
        before.len(),
        after.len()
    );
}
