//! Finance's HTTP protections (the orderstream API's): body limit, request
//! timeout, load shedding, header-read timeout, bounded graceful shutdown.
//! A request is held in its handler by a lock the test takes on the
//! journal, as a stuck database would hold it. No broker is needed.

use std::time::{Duration, Instant};

use finance::{FinanceHttp, HttpLimits};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use test_support::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(30);

struct Served {
    base: String,
    address: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

async fn serve(pool: &PgPool, limits: HttpLimits) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let state = FinanceHttp {
        pool: pool.clone(),
        // Never dialled: no test here reads the queues.
        amqp_url: "amqp://guest:guest@127.0.0.1:1/%2f".into(),
        topology: Default::default(),
        admin_token: Some("token".into()),
        status: Default::default(),
        limits,
    };
    let server = tokio::spawn(finance::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Served {
        base: format!("http://{address}"),
        address,
        stop: Some(stop),
        server,
    }
}

/// Holds the journal: a query of it waits until the transaction ends.
async fn lock_journal(pool: &PgPool) -> Transaction<'static, Postgres> {
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE journal_entries IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .expect("lock the journal");
    tx
}

fn assert_problem(response_type: &str, body: &Value, status: u16) {
    assert_eq!(response_type, "application/problem+json", "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

async fn call(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn content_type(headers: &reqwest::header::HeaderMap) -> &str {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_before_anything_else() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let served = serve(
        db.pool(),
        HttpLimits {
            body_limit: 1024,
            ..HttpLimits::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let replay = format!("{}/finance/admin/dead-letters/replay", served.base);
    // Without a token, a small body is refused for want of one...
    let (status, _, _) = call(http.post(&replay).body(vec![b'x'; 1024])).await;
    assert_eq!(status, 401);
    // ...a large one before the token is even looked at.
    let (status, headers, body) = call(http.post(&replay).body(vec![b'x'; 1025])).await;
    assert_eq!(status, 413, "{body}");
    assert_problem(content_type(&headers), &body, 413);
    assert!(body["detail"].as_str().unwrap_or("").contains("1024 bytes"));
    // The default limit is in force when none is set.
    assert_eq!(HttpLimits::default().body_limit, 64 * 1024);
}

#[tokio::test]
async fn a_request_over_the_timeout_is_a_503_problem() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let served = serve(
        db.pool(),
        HttpLimits {
            request_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let lock = lock_journal(db.pool()).await;
    let started = Instant::now();
    let (status, headers, body) = call(http.get(format!("{}/finance/journal", served.base))).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_problem(content_type(&headers), &body, 503);
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("longer than the limit of 0.3 s"),
        "{body}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(10),
        "{took:?}"
    );
    lock.rollback().await.expect("unlock");
    let (status, _, _) = call(http.get(format!("{}/finance/journal", served.base))).await;
    assert_eq!(status, 200, "the journal answers once the lock is gone");
}

#[tokio::test]
async fn requests_over_the_bound_are_shed_at_once_but_probes_are_answered() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let served = serve(
        db.pool(),
        HttpLimits {
            max_concurrent_requests: 1,
            ..HttpLimits::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let lock = lock_journal(db.pool()).await;
    let held = tokio::spawn(http.get(format!("{}/finance/journal", served.base)).send());
    // Until the held request has its permit, an unknown path is a 404;
    // from then on, shed.
    let deadline = Instant::now() + WAIT;
    let (headers, body) = loop {
        let (status, headers, body) =
            call(http.get(format!("{}/finance/no-such-path", served.base))).await;
        if status == 503 {
            break (headers, body);
        }
        assert_eq!(status, 404, "{body}");
        assert!(Instant::now() < deadline, "the held request never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_problem(content_type(&headers), &body, 503);
    assert_eq!(
        headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    for probe in ["/finance/health", "/finance/ready"] {
        let (status, _, body) = call(http.get(format!("{}{probe}", served.base))).await;
        // Ready is 503 here (no consumer), but answered, not shed.
        assert_ne!(body["title"], "Overloaded", "{probe}: {body}");
        assert!(
            status == 200 || probe == "/finance/ready",
            "{probe}: {body}"
        );
    }
    lock.rollback().await.expect("unlock");
    let response = held.await.expect("task").expect("the held request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_client_slow_to_send_its_request_head_is_disconnected() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let served = serve(
        db.pool(),
        HttpLimits {
            header_read_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        },
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(served.address)
        .await
        .expect("connect");
    stream
        .write_all(b"GET /finance/health HTTP/1.1\r\nHost: finance\r\n")
        .await
        .expect("half a head");
    let started = Instant::now();
    let mut rest = Vec::new();
    // Closed by the server (EOF or reset) well before the test gives up.
    let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the connection was still open after {WAIT:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "a half head was answered: {}",
        String::from_utf8_lossy(&rest)
    );
}

#[tokio::test]
async fn a_shutdown_waits_for_requests_in_flight_only_for_the_grace_period() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let mut served = serve(
        db.pool(),
        HttpLimits {
            shutdown_grace: Duration::from_millis(300),
            ..HttpLimits::default()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let lock = lock_journal(db.pool()).await;
    let held = tokio::spawn(http.get(format!("{}/finance/journal", served.base)).send());
    // The held request is in its handler once the journal query waits on
    // the lock.
    let deadline = Instant::now() + WAIT;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .fetch_one(db.pool())
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the held request never queried");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let _ = served.stop.take().map(|stop| stop.send(()));
    let ended = tokio::time::timeout(WAIT, &mut served.server).await;
    assert!(
        ended.is_ok(),
        "the server still ran {WAIT:?} after the shutdown"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    // The held request was dropped (the lock is still held), and nothing
    // listens any more.
    let held = held.await.expect("task");
    assert!(held.is_err(), "{held:?}");
    assert!(tokio::net::TcpStream::connect(served.address)
        .await
        .is_err());
    lock.rollback().await.expect("unlock");
}
