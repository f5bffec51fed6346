//! orderstream and Finance integrated over a real RabbitMQ, as two
//! processes of the real binary: `serve` publishes integration events
//! through its relay, `finance serve` books them into its own database.
//! Finance is SIGKILLed part-way and started again while orders keep
//! flowing; afterwards the books hold every shipped, paid and written-off
//! order exactly once, and they balance.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use event_store::MIGRATOR;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use test_support::TestDatabase;

use crate::helpers::{order_body, ADMIN_TOKEN, PATIENCE};
use crate::served::{FinanceOnBroker, Server};

const SKU: &str = "INTEGRATION-A";
const ORDERS: usize = 12;

async fn post(client: &reqwest::Client, server: &Server, path: &str, body: &Value) -> Value {
    let response = client
        .post(server.url(path))
        .json(body)
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {path}: {error}"));
    assert!(
        response.status().is_success(),
        "POST {path}: {}",
        response.status()
    );
    response.json().await.expect("a JSON body")
}

async fn get(client: &reqwest::Client, server: &Server, path: &str) -> Value {
    let response = client
        .get(server.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("a JSON body")
}

/// Order `i` is declined every fourth time, else paid.
fn method(i: usize) -> &'static str {
    if i % 4 == 3 {
        "card_declined"
    } else {
        "card_ok"
    }
}

fn decimal(value: &Value) -> Decimal {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .or_else(|| value.as_f64().and_then(|f| Decimal::try_from(f).ok()))
        .unwrap_or_else(|| panic!("a decimal amount, got {value}"))
}

/// Account code -> (debits, credits) of the USD trial balance.
fn usd_accounts(trial_balance: &Value) -> Option<HashMap<String, (Decimal, Decimal)>> {
    let currencies = trial_balance["currencies"].as_array()?;
    let usd = currencies.iter().find(|c| c["currency"] == "USD")?;
    assert_eq!(
        decimal(&usd["total_debits"]),
        decimal(&usd["total_credits"]),
        "the books balance: {usd}"
    );
    Some(
        usd["accounts"]
            .as_array()?
            .iter()
            .map(|account| {
                (
                    account["account"].as_str().unwrap_or_default().to_owned(),
                    (decimal(&account["debits"]), decimal(&account["credits"])),
                )
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_reach_the_books_once_through_the_broker_even_when_finance_is_killed() {
    let client = reqwest::Client::new();
    let FinanceOnBroker {
        broker,
        finance_db,
        exchange,
        queue,
    } = FinanceOnBroker::new("it").await;
    let orders_db = TestDatabase::new(&MIGRATOR)
        .await
        .expect("orderstream's database");
    let finance_env = [
        ("FINANCE_DATABASE_URL", finance_db.url()),
        ("ORDERSTREAM_AMQP_URL", broker.url()),
        ("ORDERSTREAM_AMQP_EXCHANGE", exchange.as_str()),
        ("ORDERSTREAM_FINANCE_QUEUE", queue.as_str()),
        ("ORDERSTREAM_FINANCE_RETRY_DELAYS", "100ms,200ms,400ms"),
        ("ORDERSTREAM_FINANCE_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let start_finance = |label: &'static str| {
        Server::start_with(
            &["finance", "serve"],
            &finance_env,
            "/finance/ready",
            &client,
            label,
        )
    };
    // Finance first: its queue must be bound before the relay publishes
    // (the relay parks what no queue takes). Ready means bound.
    let mut finance = start_finance("finance-1").await;
    let orderstream = Server::start_with(
        &["serve"],
        &[
            ("DATABASE_URL", orders_db.url()),
            ("ORDERSTREAM_AMQP_URL", broker.url()),
            ("ORDERSTREAM_AMQP_EXCHANGE", exchange.as_str()),
        ],
        "/ready",
        &client,
        "orderstream",
    )
    .await;
    post(
        &client,
        &orderstream,
        &format!("/inventory/{SKU}/receipts"),
        &json!({"quantity": 1000}),
    )
    .await;

    let mut orders = Vec::new();
    for i in 0..ORDERS {
        if i == ORDERS / 2 {
            // Finance dies with messages in flight; orders keep flowing.
            finance.kill();
        }
        let placed = post(
            &client,
            &orderstream,
            "/orders",
            &order_body(&[(SKU, 1 + i as i64 % 3)], method(i)),
        )
        .await;
        orders.push(placed["order_id"].as_str().expect("order_id").to_owned());
    }

    // Every order reaches its final state without Finance.
    let mut expected_revenue = Decimal::ZERO;
    let mut expected_cash = Decimal::ZERO;
    let mut expected_bad_debt = Decimal::ZERO;
    let deadline = Instant::now() + PATIENCE;
    for order_id in &orders {
        loop {
            let order = get(&client, &orderstream, &format!("/orders/{order_id}")).await;
            match order["status"].as_str() {
                Some("paid") => {
                    expected_revenue += decimal(&order["total"]);
                    expected_cash += decimal(&order["total"]);
                    break;
                }
                Some("payment_failed") => {
                    expected_revenue += decimal(&order["total"]);
                    expected_bad_debt += decimal(&order["total"]);
                    break;
                }
                other => assert!(
                    Instant::now() < deadline,
                    "order {order_id} is still {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(expected_bad_debt > Decimal::ZERO && expected_cash > Decimal::ZERO);

    finance = start_finance("finance-2").await;
    let deadline = Instant::now() + PATIENCE;
    let books = loop {
        let trial_balance = get(&client, &finance, "/finance/trial-balance").await;
        if let Some(accounts) = usd_accounts(&trial_balance) {
            let revenue = accounts
                .get("4000")
                .map_or(Decimal::ZERO, |(_, credits)| *credits);
            let cash = accounts
                .get("1000")
                .map_or(Decimal::ZERO, |(debits, _)| *debits);
            let bad_debt = accounts
                .get("6100")
                .map_or(Decimal::ZERO, |(debits, _)| *debits);
            if (revenue, cash, bad_debt) == (expected_revenue, expected_cash, expected_bad_debt) {
                break accounts;
            }
            // Never more than once: a double booking would overshoot.
            assert!(
                revenue <= expected_revenue
                    && cash <= expected_cash
                    && bad_debt <= expected_bad_debt,
                "booked more than happened: {trial_balance}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "the books never caught up: expected revenue {expected_revenue}, cash {expected_cash}, \
             bad debt {expected_bad_debt}; log: {}",
            finance.log().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Receivables: shipped minus paid minus written off.
    let (receivable_debits, receivable_credits) = books.get("1200").copied().unwrap_or_default();
    assert_eq!(
        receivable_debits - receivable_credits,
        Decimal::ZERO,
        "{books:?}"
    );

    // Nothing failed on the way: no dead letters, nothing parked.
    let dead = get(&client, &finance, "/finance/admin/dead-letters").await;
    assert_eq!(
        dead["dead_letters"].as_array().map(Vec::len),
        Some(0),
        "dead letters: {dead}"
    );
    let subscriptions = get(&client, &orderstream, "/subscriptions").await;
    assert!(
        subscriptions
            .as_array()
            .expect("subscriptions")
            .iter()
            .all(|s| s["parked"] == 0),
        "{subscriptions}"
    );
}

/// `orderstream finance <arguments>` (the real binary) with `environment`;
/// its standard output, after asserting that it succeeded.
async fn finance_cli(arguments: &[&str], environment: &[(&str, &str)]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderstream"))
        .arg("finance")
        .args(arguments)
        .envs(environment.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run orderstream finance");
    assert!(
        output.status.success(),
        "orderstream finance {arguments:?}: {}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The dead letters `orderstream finance dead-letters list` prints.
async fn listed_dead_letters(environment: &[(&str, &str)]) -> Vec<Value> {
    finance_cli(&["dead-letters", "list"], environment)
        .await
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON dead letter a line"))
        .collect()
}

async fn entries_of(pool: &sqlx::PgPool, message_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM journal_entries WHERE message_id = $1")
        .bind(message_id)
        .fetch_one(pool)
        .await
        .expect("count entries")
}

/// Publishes an `order.shipped.v1` for `order_id` the way the relay does.
async fn publish_shipped(
    channel: &lapin::Channel,
    exchange: &str,
    message_id: &str,
    order_id: &str,
) {
    let payload = json!({
        "order_id": order_id, "customer_id": "c-1", "currency": "USD", "total": "25.00",
        "lines": [{"sku": SKU, "quantity": 1, "unit_price": "25.00"}],
        "shipped_at": "2026-01-02T03:04:05Z"
    });
    let confirmation = channel
        .basic_publish(
            exchange,
            "order.shipped.v1",
            lapin::options::BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            payload.to_string().as_bytes(),
            lapin::BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(message_id.into())
                .with_type("order.shipped.v1".into()),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(
        matches!(
            confirmation,
            lapin::publisher_confirm::Confirmation::Ack(None)
        ),
        "the broker routed the message: {confirmation:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_a_dead_letter_and_replays_it_once_after_the_fix() {
    let client = reqwest::Client::new();
    let FinanceOnBroker {
        broker,
        finance_db,
        exchange,
        queue,
    } = FinanceOnBroker::new("cli").await;
    let broker_env = [
        ("ORDERSTREAM_AMQP_URL", broker.url()),
        ("ORDERSTREAM_AMQP_EXCHANGE", exchange.as_str()),
        ("ORDERSTREAM_FINANCE_QUEUE", queue.as_str()),
        ("ORDERSTREAM_FINANCE_RETRY_DELAYS", "100ms,200ms,400ms"),
    ];
    let mut finance_env = broker_env.to_vec();
    finance_env.push(("FINANCE_DATABASE_URL", finance_db.url()));
    let finance = Server::start_with(
        &["finance", "serve"],
        &finance_env,
        "/finance/ready",
        &client,
        "finance-cli",
    )
    .await;

    // A fault of Finance's own, for one order: its database refuses the entry.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.order_id = 'o-poison' THEN RAISE EXCEPTION 'injected fault'; END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_poison BEFORE INSERT ON journal_entries
           FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
    )
    .execute(finance_db.pool())
    .await
    .expect("inject the fault");
    let connection = rabbitmq_embedded::connect_amqp(broker.url())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(Default::default())
        .await
        .expect("confirms");
    let poison = uuid::Uuid::new_v4().to_string();
    publish_shipped(&channel, &exchange, &poison, "o-poison").await;

    // Retried three times, then a dead letter the CLI lists, and leaves.
    let deadline = Instant::now() + PATIENCE;
    let letters = loop {
        let letters = listed_dead_letters(&broker_env).await;
        if !letters.is_empty() {
            break letters;
        }
        assert!(
            Instant::now() < deadline,
            "never dead-lettered; log: {}",
            finance.log().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["message_id"], poison.as_str());
    assert_eq!(letter["contract"], "order.shipped.v1");
    assert_eq!(letter["attempts"], 4);
    assert_eq!(letter["failed_at"].as_array().map(Vec::len), Some(4));
    assert!(
        letter["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("injected fault"),
        "{letter}"
    );
    assert_eq!(
        listed_dead_letters(&broker_env).await.len(),
        1,
        "listing removes nothing"
    );
    assert_eq!(entries_of(finance_db.pool(), &poison).await, 0);

    // Fixed, replayed by id: booked once; a second replay finds nothing.
    sqlx::query("DROP TRIGGER refuse_poison ON journal_entries")
        .execute(finance_db.pool())
        .await
        .expect("fix the fault");
    let replayed = finance_cli(&["dead-letters", "replay", &poison], &broker_env).await;
    assert_eq!(replayed.trim(), "replayed 1");
    let deadline = Instant::now() + PATIENCE;
    while entries_of(finance_db.pool(), &poison).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the replayed message was never booked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = finance_cli(&["dead-letters", "replay", "--all"], &broker_env).await;
    assert_eq!(again.trim(), "replayed 0");
    assert!(listed_dead_letters(&broker_env).await.is_empty());

    // The original delivered once more (a relay redelivery): still one
    // entry. The single consumer takes its queue in order, so once the
    // sentinel behind it is booked, the copy has been handled.
    publish_shipped(&channel, &exchange, &poison, "o-poison").await;
    let sentinel = uuid::Uuid::new_v4().to_string();
    publish_shipped(&channel, &exchange, &sentinel, "o-sentinel").await;
    let deadline = Instant::now() + PATIENCE;
    while entries_of(finance_db.pool(), &sentinel).await == 0 {
        assert!(Instant::now() < deadline, "the sentinel was never booked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(entries_of(finance_db.pool(), &poison).await, 1);
    let journal = get(&client, &finance, "/finance/journal").await;
    let booked: Vec<&str> = journal["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["message_id"].as_str())
        .collect();
    assert_eq!(booked, [poison.as_str(), sentinel.as_str()]);
    let _ = connection.close(200, "done").await;
}
