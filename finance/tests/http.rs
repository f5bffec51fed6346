//! Finance's HTTP: the journal (keyset pages), the trial balance, and the
//! dead letters behind the admin token.

mod common;

use std::time::Duration;

use common::*;
use finance::consumer::{self, ConsumerSettings};
use finance::{ledger, FinanceHttp};
use rust_decimal::Decimal;
use serde_json::Value;
use test_support::TestDatabase;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "s3cret-admin";

async fn serve(state: FinanceHttp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(finance::serve(listener, state, std::future::pending()));
    format!("http://{address}")
}

/// The value of one sample in a Prometheus text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn journal_trial_balance_and_dead_letters_over_http() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let topology = unique_topology();
    let publisher = Publisher::new(&topology).await;
    // Served first: building the router installs the metrics recorder,
    // which then counts every message the consumer handles.
    let base = serve(FinanceHttp {
        pool: db.pool().clone(),
        amqp_url: amqp_url().await,
        topology: topology.clone(),
        admin_token: Some(TOKEN.into()),
        status: Default::default(),
        limits: Default::default(),
    })
    .await;
    let consumer = tokio::spawn(consumer::run(
        db.pool().clone(),
        ConsumerSettings {
            amqp_url: amqp_url().await,
            topology: topology.clone(),
            prefetch: 8,
            status: Default::default(),
        },
    ));
    for i in 1..=5 {
        publisher
            .publish(&shipped(&format!("o-{i}"), Decimal::new(i * 100, 2)))
            .await;
    }
    let mut poison = shipped("o-bad", Decimal::ONE);
    poison.payload = "not json".into();
    publisher.publish(&poison).await;
    let http = reqwest::Client::new();
    let dead_letters = || async {
        http.get(format!("{base}/finance/admin/dead-letters"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("list")
            .json::<Value>()
            .await
            .expect("json")
    };
    wait_until("the malformed message dead-lettered", WAIT, || async {
        dead_letters().await["dead_letters"]
            .as_array()
            .map(Vec::len)
            == Some(1)
    })
    .await;
    assert_eq!(ledger::entry_count(db.pool()).await.expect("count"), 5);

    // The metrics: the dead letter is in the queue's depth (read from the
    // broker at the scrape) and in the counters.
    let metrics = http
        .get(format!("{base}/finance/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    assert_eq!(sample(&text, "finance_dead_letters"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "finance_broker_up"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "finance_inbox_ready_messages"),
        Some(0.0),
        "{text}"
    );
    let outcome = |name: &str| {
        sample(
            &text,
            &format!(r#"finance_messages_total{{outcome="{name}"}}"#),
        )
    };
    assert_eq!(outcome("booked"), Some(5.0), "{text}");
    assert_eq!(outcome("dead_lettered"), Some(1.0), "{text}");
    assert_eq!(
        outcome("retried"),
        Some(topology.retry_delays.len() as f64),
        "{text}"
    );

    // The journal in pages of two, by keyset.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = http
            .get(format!("{base}/finance/journal?after={after}&limit=2"))
            .send()
            .await
            .expect("journal")
            .json()
            .await
            .expect("json");
        for entry in page["entries"].as_array().expect("entries") {
            assert_eq!(entry["lines"].as_array().map(Vec::len), Some(2));
            seen.push(entry["order_id"].as_str().expect("order id").to_owned());
        }
        match page["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(seen, ["o-1", "o-2", "o-3", "o-4", "o-5"]);
    let bad_limit = http
        .get(format!("{base}/finance/journal?limit=0"))
        .send()
        .await
        .expect("journal");
    assert_eq!(bad_limit.status(), 400);
    assert_eq!(
        bad_limit.headers()["content-type"]
            .to_str()
            .expect("content type"),
        "application/problem+json"
    );

    let tb: Value = http
        .get(format!("{base}/finance/trial-balance"))
        .send()
        .await
        .expect("trial balance")
        .json()
        .await
        .expect("json");
    let eur = &tb["currencies"][0];
    assert_eq!(eur["currency"], "EUR");
    assert_eq!(eur["total_debits"], eur["total_credits"]);
    assert_eq!(eur["total_debits"], "15.00");

    // Admin endpoints need the token.
    let anonymous = http
        .get(format!("{base}/finance/admin/dead-letters"))
        .send()
        .await
        .expect("list");
    assert_eq!(anonymous.status(), 401);
    let wrong = http
        .post(format!("{base}/finance/admin/dead-letters/replay"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("replay");
    assert_eq!(wrong.status(), 401);
    let missing = http
        .post(format!(
            "{base}/finance/admin/dead-letters/no-such-id/replay"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("replay");
    assert_eq!(missing.status(), 404);

    let listed = dead_letters().await;
    let letter = &listed["dead_letters"][0];
    assert_eq!(letter["message_id"], poison.message_id.as_str());
    assert_eq!(letter["payload"], "not json");
    assert_eq!(letter["attempts"], 4);
    let replayed: Value = http
        .post(format!(
            "{base}/finance/admin/dead-letters/{}/replay",
            poison.message_id
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("replay")
        .json()
        .await
        .expect("json");
    assert_eq!(replayed["replayed"], 1);
    // Still malformed: it goes round the retries again and back to the
    // dead-letter queue, booking nothing.
    wait_until(
        "the replayed malformed message dead-lettered again",
        WAIT,
        || async {
            dead_letters().await["dead_letters"]
                .as_array()
                .map(Vec::len)
                == Some(1)
        },
    )
    .await;
    assert_eq!(ledger::entry_count(db.pool()).await.expect("count"), 5);
    consumer.abort();
    delete_topology(&topology).await;
}
