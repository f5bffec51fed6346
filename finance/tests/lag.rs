//! Consumer lag in seconds on `/finance/metrics`: the age of the message
//! Finance holds (or took last, while more wait), 0 once it has caught up.
//! Alone in its test binary: the gauge is the process's.

mod common;

use std::time::Duration;

use common::*;
use finance::consumer::{self, ConsumerSettings};
use finance::{ledger, ConsumerStatus, FinanceHttp};
use rust_decimal::Decimal;
use test_support::TestDatabase;

const WAIT: Duration = Duration::from_secs(30);
/// How old the test's messages are when published.
const AGE: u64 = 600;

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == series).then(|| value.trim().parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_the_age_of_the_message_in_hand_and_zero_once_caught_up() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let topology = unique_topology();
    let publisher = Publisher::new(&topology).await;
    let status = ConsumerStatus::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(finance::serve(
        listener,
        FinanceHttp {
            pool: db.pool().clone(),
            amqp_url: amqp_url().await,
            topology: topology.clone(),
            admin_token: None,
            status: status.clone(),
            limits: Default::default(),
        },
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    let scrape = || async {
        let text = http
            .get(format!("{base}/finance/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text");
        (
            sample(&text, "finance_consumer_lag_seconds"),
            sample(&text, "finance_consumer_up"),
            text,
        )
    };

    // The inbox is locked, as a stuck database would hold it: the consumer
    // takes the first message and cannot book it.
    let mut lock = db.pool().begin().await.expect("begin");
    sqlx::query("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock the inbox");
    let consumer = tokio::spawn(consumer::run(
        db.pool().clone(),
        ConsumerSettings {
            amqp_url: amqp_url().await,
            topology: topology.clone(),
            prefetch: 4,
            status,
        },
    ));
    let now = chrono::Utc::now().timestamp() as u64;
    for i in 0..3 {
        publisher
            .publish_at(&shipped(&format!("o-{i}"), Decimal::ONE), now - AGE)
            .await;
    }
    wait_until("the lag of the message in hand", WAIT, || async {
        scrape().await.0.is_some_and(|lag| lag >= AGE as f64)
    })
    .await;
    let (lag, up, text) = scrape().await;
    // Its age, not more: a few seconds of test at most.
    assert!(lag.is_some_and(|lag| lag < (AGE + 60) as f64), "{text}");
    assert_eq!(up, Some(1.0), "{text}");

    lock.rollback().await.expect("unlock");
    wait_until("every message booked", WAIT, || async {
        ledger::entry_count(db.pool()).await.expect("count") == 3
    })
    .await;
    wait_until("no lag once caught up", WAIT, || async {
        scrape().await.0 == Some(0.0)
    })
    .await;
    consumer.abort();
    delete_topology(&topology).await;
}
