//! The test server: a fresh database, the API on port 0, and (when a test
//! needs the choreography) the subscription runtime in-process; plus HTTP
//! helpers and waiting on conditions with a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use api::{ApiConfig, AppState};
use commands::{CommandExecutor, ExecutorOptions};
use event_store::{EventStore, StoreOptions, MIGRATOR};
use projections::runtime::{Fulfilment, RuntimeHandle, RuntimeOptions, SubscriptionRuntime};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use test_support::TestDatabase;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for an outcome of the choreography.
pub const PATIENCE: Duration = Duration::from_secs(60);
pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct TestServer {
    /// Keeps the database alive as long as the server.
    _database: TestDatabase,
    pub store: EventStore,
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    runtime: Option<RuntimeHandle>,
}

/// An HTTP answer, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Answer {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts a problem+json error with this status.
    #[track_caller]
    pub fn expect_problem(self, status: u16) -> Answer {
        let answer = self.expect(status);
        assert_eq!(answer.content_type(), "application/problem+json");
        assert_eq!(answer.body["status"], json!(status));
        assert!(answer.body["title"].is_string(), "{}", answer.text);
        assert!(answer.body["detail"].is_string(), "{}", answer.text);
        assert!(answer.body["type"].is_string(), "{}", answer.text);
        answer
    }
}

#[derive(Default)]
pub struct Options {
    /// Start the subscription runtime with this fulfilment mode.
    pub runtime: Option<Fulfilment>,
    pub admin_token: Option<String>,
    /// The API's `Idempotency-Key` TTL, when not the default.
    pub idempotency_ttl: Option<Duration>,
}

impl Options {
    pub fn auto() -> Self {
        Options {
            runtime: Some(Fulfilment::Auto),
            admin_token: Some(ADMIN_TOKEN.into()),
            idempotency_ttl: None,
        }
    }

    pub fn manual() -> Self {
        Options {
            runtime: Some(Fulfilment::Manual),
            admin_token: Some(ADMIN_TOKEN.into()),
            idempotency_ttl: None,
        }
    }

    pub fn api_only() -> Self {
        Options {
            runtime: None,
            admin_token: Some(ADMIN_TOKEN.into()),
            idempotency_ttl: None,
        }
    }
}

/// Options that make the runtime quick in tests: short pauses between tries.
pub fn fast_runtime(fulfilment: Fulfilment) -> RuntimeOptions {
    RuntimeOptions {
        fulfilment,
        retry_base: Duration::from_millis(5),
        retry_max: Duration::from_millis(50),
        ownership_interval: Duration::from_millis(200),
        ..RuntimeOptions::default()
    }
}

impl TestServer {
    pub async fn start(options: Options) -> TestServer {
        let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
        let url = database.url().to_owned();
        TestServer::start_on(database, &url, options).await
    }

    /// A server on `database` that connects with `url`: another role's, to
    /// run the service as that role.
    pub async fn start_on(database: TestDatabase, url: &str, options: Options) -> TestServer {
        let store = EventStore::connect(
            url,
            &StoreOptions {
                max_connections: 30,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("connect");
        let executor = CommandExecutor::new(store.clone(), ExecutorOptions::default());
        let runtime = options
            .runtime
            .map(|mode| SubscriptionRuntime::start(executor.clone(), fast_runtime(mode)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let state = AppState::new(
            executor,
            ApiConfig {
                admin_token: options.admin_token,
                idempotency_ttl: options
                    .idempotency_ttl
                    .unwrap_or(ApiConfig::default().idempotency_ttl),
                ..ApiConfig::default()
            },
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(api::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        TestServer {
            _database: database,
            store,
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
            runtime,
        }
    }

    /// The database this server runs on, for the command line (the
    /// owner's URL, also when the server connects as another role).
    pub fn database_url(&self) -> &str {
        self._database.url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// POST with a raw body (any bytes, any content type).
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Answer {
        self.send(
            self.client
                .post(self.url(path))
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    pub async fn receive(&self, sku: &str, quantity: i64) -> Answer {
        self.post(
            &format!("/inventory/{sku}/receipts"),
            &json!({"quantity": quantity}),
        )
        .await
        .expect(201)
    }

    /// Places an order and returns its id.
    pub async fn place(&self, lines: &[(&str, i64)], method: &str) -> String {
        let answer = self.post("/orders", &order_body(lines, method)).await;
        let answer = answer.expect(201);
        answer.body["order_id"]
            .as_str()
            .expect("order_id")
            .to_owned()
    }

    pub async fn order(&self, order_id: &str) -> Value {
        self.get(&format!("/orders/{order_id}"))
            .await
            .expect(200)
            .body
    }

    /// Polls `GET /orders/{id}` until its status is `status`.
    pub async fn wait_for_status(&self, order_id: &str, status: &str) -> Value {
        let mut last = Value::Null;
        let deadline = Instant::now() + PATIENCE;
        loop {
            let order = self.order(order_id).await;
            if order["status"] == status {
                return order;
            }
            if Instant::now() > deadline {
                panic!("order {order_id} never became {status}; last seen: {last}");
            }
            last = order;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(self.store.pool())
            .await
            .expect("count events")
    }

    pub async fn count_events_of_type(&self, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
            .bind(event_type)
            .fetch_one(self.store.pool())
            .await
            .expect("count events")
    }

    /// Stops the HTTP server (graceful) and the runtime.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown().await;
        }
    }
}

pub fn order_body(lines: &[(&str, i64)], method: &str) -> Value {
    json!({
        "customer_id": "c-42",
        "currency": "USD",
        "lines": lines
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity, "unit_price": "9.99"}))
            .collect::<Vec<_>>(),
        "payment_method": method,
    })
}

/// [`test_support::wait_until`] with these tests' [`PATIENCE`].
pub async fn wait_until<Fut>(what: &str, condition: impl FnMut() -> Fut)
where
    Fut: Future<Output = bool>,
{
    test_support::wait_until(PATIENCE, what, condition).await;
}
