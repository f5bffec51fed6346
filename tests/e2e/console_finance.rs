//! The console's overview shows the Finance consumer: `serve` with
//! `ORDERSTREAM_FINANCE_URL` pointing at a real `finance serve` (two
//! processes of the real binary, one RabbitMQ), read through the overview
//! the console's live stream sends.

use std::time::Instant;

use event_store::MIGRATOR;
use serde_json::{json, Value};
use test_support::TestDatabase;

use crate::helpers::{ADMIN_TOKEN, PATIENCE};
use crate::served::{FinanceOnBroker, Server};

/// Logs in to the console and returns its session cookie (`name=value`).
async fn console_cookie(client: &reqwest::Client, server: &Server) -> String {
    let answer = client
        .post(server.url("/console/session"))
        .json(&json!({ "token": ADMIN_TOKEN }))
        .send()
        .await
        .expect("log in");
    assert!(answer.status().is_success(), "log in: {}", answer.status());
    answer.headers()["set-cookie"]
        .to_str()
        .expect("an ASCII cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned()
}

/// The `overview` events of the console's live stream, until `done` holds
/// for one (returned) or the deadline passes (panics with the last seen).
async fn overview_where(
    client: &reqwest::Client,
    server: &Server,
    cookie: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    let mut response = client
        .get(server.url("/console/live"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("the live stream");
    assert_eq!(response.status(), 200, "the live stream");
    let mut buffer = String::new();
    let mut last = Value::Null;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no such overview within {PATIENCE:?}; last: {last}"))
            .expect("the live stream reads")
            .expect("the live stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if !event.lines().any(|line| line == "event: overview") {
                continue;
            }
            let data: String = event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            let payload: Value = serde_json::from_str(&data).expect("overview JSON");
            last = payload["overview"].clone();
            if done(&last) {
                return last;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_overview_shows_finance_up_with_no_dead_letters() {
    let client = reqwest::Client::new();
    let FinanceOnBroker {
        broker,
        finance_db,
        exchange,
        queue,
    } = FinanceOnBroker::new("console").await;
    let orders_db = TestDatabase::new(&MIGRATOR)
        .await
        .expect("orderstream's database");
    let finance = Server::start_with(
        &["finance", "serve"],
        &[
            ("FINANCE_DATABASE_URL", finance_db.url()),
            ("ORDERSTREAM_AMQP_URL", broker.url()),
            ("ORDERSTREAM_AMQP_EXCHANGE", exchange.as_str()),
            ("ORDERSTREAM_FINANCE_QUEUE", queue.as_str()),
        ],
        "/finance/ready",
        &client,
        "console-finance",
    )
    .await;
    let finance_url = finance.url("");
    let orderstream = Server::start_with(
        &["serve"],
        &[
            ("DATABASE_URL", orders_db.url()),
            ("ORDERSTREAM_AMQP_URL", broker.url()),
            ("ORDERSTREAM_AMQP_EXCHANGE", exchange.as_str()),
            ("ORDERSTREAM_FINANCE_URL", finance_url.as_str()),
        ],
        "/ready",
        &client,
        "console-orderstream",
    )
    .await;
    let cookie = console_cookie(&client, &orderstream).await;

    let overview = overview_where(&client, &orderstream, &cookie, |overview| {
        overview["finance"]["status"] == "reachable" && overview["finance"]["ready"] == true
    })
    .await;
    let shown = &overview["finance"];
    assert_eq!(shown["url"], finance_url.as_str(), "{shown}");
    assert_eq!(shown["consuming"], true, "{shown}");
    assert_eq!(shown["dead_letters"], 0.0, "{shown}");
    assert_eq!(shown["lag_seconds"], 0.0, "an empty inbox: {shown}");

    // Finance gone: the row says so instead of holding the overview up.
    drop(finance);
    let overview = overview_where(&client, &orderstream, &cookie, |overview| {
        overview["finance"]["status"] == "unreachable"
    })
    .await;
    assert_eq!(overview["finance"]["url"], finance_url.as_str());
    assert!(
        overview["subscriptions"]
            .as_array()
            .is_some_and(|rows| !rows.is_empty()),
        "the subscriptions are still listed: {overview}"
    );
}
