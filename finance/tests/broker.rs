//! Finance against a real RabbitMQ and a real PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use finance::consumer::{self, ConsumerSettings};
use finance::dead_letters::{self, Replay};
use finance::ledger;
use finance::topology::{self, Topology};
use rust_decimal::Decimal;
use sqlx::PgPool;
use test_support::TestDatabase;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(30);

async fn start_consumer(pool: &PgPool, topology: &Topology) -> JoinHandle<()> {
    tokio::spawn(consumer::run(
        pool.clone(),
        ConsumerSettings {
            amqp_url: amqp_url().await,
            topology: topology.clone(),
            prefetch: 16,
            status: Default::default(),
        },
    ))
}

async fn inbox(pool: &PgPool) -> i64 {
    ledger::inbox_count(pool).await.expect("inbox count")
}

async fn entries(pool: &PgPool) -> i64 {
    ledger::entry_count(pool).await.expect("entry count")
}

fn eur(units: i64) -> Decimal {
    Decimal::new(units, 2)
}

#[tokio::test]
async fn a_redelivered_message_id_is_booked_once() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let topology = unique_topology();
    let publisher = Publisher::new(&topology).await;
    let consumer = start_consumer(db.pool(), &topology).await;

    let ship = shipped("o-1", eur(1250));
    publisher.publish(&ship).await;
    publisher.publish(&ship).await;
    // The single consumer handles the queue in order: once the last message
    // is in the inbox, both copies of the first have been handled.
    let last = captured("o-1", eur(1250));
    publisher.publish(&last).await;
    wait_until("the last message booked", WAIT, || async {
        inbox(db.pool()).await == 2
    })
    .await;

    assert_eq!(entries(db.pool()).await, 2, "the duplicate booked nothing");
    let balance = ledger::trial_balance(db.pool())
        .await
        .expect("trial balance");
    let eur_tb = &balance.currencies[0];
    assert!(eur_tb.balances());
    assert_eq!(eur_tb.total_debits, eur(2500));
    consumer.abort();
    delete_topology(&topology).await;
}

#[tokio::test]
async fn killing_the_consumer_mid_stream_books_every_message_once() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let topology = unique_topology();
    let publisher = Publisher::new(&topology).await;
    let mut expected_revenue = Decimal::ZERO;
    let mut messages = Vec::new();
    for i in 1..=300 {
        let total = eur(100 + i);
        expected_revenue += total;
        messages.push(shipped(&format!("o-{i}"), total));
    }
    for message in &messages[..150] {
        publisher.publish(message).await;
    }
    let consumer = start_consumer(db.pool(), &topology).await;
    wait_until("some messages booked", WAIT, || async {
        inbox(db.pool()).await >= 30
    })
    .await;
    // A crash: the task and its connection go away with deliveries in
    // flight (prefetched, some maybe committed but not acked).
    consumer.abort();
    let _ = consumer.await;
    let booked_at_kill = inbox(db.pool()).await;
    for message in &messages[150..] {
        publisher.publish(message).await;
    }
    // Some already-booked messages again, as a relay redelivering would.
    for message in &messages[..10] {
        publisher.publish(message).await;
    }
    let consumer = start_consumer(db.pool(), &topology).await;
    wait_until("every message booked", WAIT, || async {
        inbox(db.pool()).await == 300
    })
    .await;
    let sentinel = captured("o-1", eur(101));
    publisher.publish(&sentinel).await;
    wait_until("the sentinel booked", WAIT, || async {
        inbox(db.pool()).await == 301
    })
    .await;

    assert!(
        booked_at_kill < 300,
        "the kill happened mid-stream ({booked_at_kill} booked)"
    );
    assert_eq!(entries(db.pool()).await, 301);
    let balance = ledger::trial_balance(db.pool())
        .await
        .expect("trial balance");
    let eur_tb = &balance.currencies[0];
    assert!(eur_tb.balances());
    let revenue = eur_tb
        .accounts
        .iter()
        .find(|a| a.account == "4000")
        .expect("revenue");
    assert_eq!(revenue.credits, expected_revenue);
    consumer.abort();
    delete_topology(&topology).await;
}

#[tokio::test]
async fn finance_down_while_messages_are_published_books_each_once_when_started() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let topology = unique_topology();
    let publisher = Publisher::new(&topology).await;
    // Finance is not running: the durable queue holds everything.
    publisher.publish(&shipped("o-1", eur(1000))).await;
    publisher.publish(&captured("o-1", eur(1000))).await;
    publisher.publish(&shipped("o-2", eur(500))).await;
    publisher.publish(&failed("o-2", eur(500), false)).await;
    publisher.publish(&failed("o-2", eur(500), true)).await;
    publisher.publish(&cancelled("o-3")).await;
    assert_eq!(inbox(db.pool()).await, 0);

    let consumer = start_consumer(db.pool(), &topology).await;
    wait_until("every message handled", WAIT, || async {
        inbox(db.pool()).await == 6
    })
    .await;

    assert_eq!(
        entries(db.pool()).await,
        4,
        "shipped x2, captured, final failure"
    );
    let balance = ledger::trial_balance(db.pool())
        .await
        .expect("trial balance");
    let eur_tb = &balance.currencies[0];
    assert!(eur_tb.balances());
    let account = |code: &str| {
        eur_tb
            .accounts
            .iter()
            .find(|a| a.account == code)
            .map(|a| a.balance)
            .unwrap_or_default()
    };
    assert_eq!(account("1000"), eur(1000), "cash");
    assert_eq!(
        account("1200"),
        Decimal::ZERO,
        "receivables settled or written off"
    );
    assert_eq!(account("4000"), -eur(1500), "revenue (a credit balance)");
    assert_eq!(account("6100"), eur(500), "bad debt");
    consumer.abort();
    delete_topology(&topology).await;
}

#[tokio::test]
async fn a_poison_message_is_retried_with_backoff_dead_lettered_and_replayed_once() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let topology = unique_topology();
    let publisher = Publisher::new(&topology).await;
    // The fault: the database refuses entries for order o-poison.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.order_id = 'o-poison' THEN RAISE EXCEPTION 'injected fault'; END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_poison BEFORE INSERT ON journal_entries
           FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
    )
    .execute(db.pool())
    .await
    .expect("inject the fault");
    let consumer = start_consumer(db.pool(), &topology).await;
    let poison = shipped("o-poison", eur(4200));
    publisher.publish(&poison).await;
    publisher.publish(&shipped("o-healthy", eur(100))).await;

    let connection = topology::connect(&amqp_url().await).await.expect("connect");
    wait_until("the poison message dead-lettered", WAIT, || async {
        dead_letters::count(&connection, &topology)
            .await
            .expect("count")
            == 1
    })
    .await;
    let letters = dead_letters::list(&connection, &topology, 10)
        .await
        .expect("list");
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        letter.message_id.as_deref(),
        Some(poison.message_id.as_str())
    );
    assert_eq!(letter.contract, "order.shipped.v1");
    assert_eq!(letter.attempts, 4, "the first try and three retries");
    assert!(letter
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("injected fault"));
    let gaps: Vec<i64> = letter
        .failed_at
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds())
        .collect();
    assert_eq!(gaps.len(), 3);
    for (gap, delay) in gaps.iter().zip([100, 200, 400]) {
        assert!(
            *gap >= delay,
            "retry waited {gap} ms, less than its {delay} ms delay: {gaps:?}"
        );
    }
    // Listing leaves it in the queue; nothing was booked for it.
    assert_eq!(
        dead_letters::count(&connection, &topology)
            .await
            .expect("count"),
        1
    );
    assert_eq!(entries(db.pool()).await, 1, "only the healthy order");

    // Fix the fault, replay twice: booked once.
    sqlx::query("DROP TRIGGER refuse_poison ON journal_entries")
        .execute(db.pool())
        .await
        .expect("fix the fault");
    let replayed = dead_letters::replay(
        &connection,
        &topology,
        &Replay::MessageId(poison.message_id.clone()),
    )
    .await
    .expect("replay");
    assert_eq!(replayed.replayed, 1);
    let again = dead_letters::replay(&connection, &topology, &Replay::All)
        .await
        .expect("replay");
    assert_eq!(
        again.replayed, 0,
        "the dead-letter queue is empty after a replay"
    );
    wait_until("the replayed message booked", WAIT, || async {
        entries(db.pool()).await == 2
    })
    .await;
    publisher.publish(&poison).await;
    let sentinel = captured("o-poison", eur(4200));
    publisher.publish(&sentinel).await;
    wait_until("the sentinel booked", WAIT, || async {
        entries(db.pool()).await == 3
    })
    .await;
    let poison_entries: i64 =
        sqlx::query_scalar("SELECT count(*) FROM journal_entries WHERE message_id = $1")
            .bind(&poison.message_id)
            .fetch_one(db.pool())
            .await
            .expect("count");
    assert_eq!(poison_entries, 1);
    assert_eq!(
        dead_letters::count(&connection, &topology)
            .await
            .expect("count"),
        0
    );
    consumer.abort();
    delete_topology(&topology).await;
}
