//! Finance's own database going away: the consumer stops taking deliveries
//! (nothing is retried into the dead-letter queue), and books everything
//! once the database is back. Real RabbitMQ and PostgreSQL; the outage is
//! the test database refusing connections with its sessions terminated.

mod common;

use std::str::FromStr;
use std::time::Duration;

use common::*;
use finance::consumer::{self, ConsumerSettings};
use finance::topology::{self, Topology};
use finance::{dead_letters, ledger, ConsumerStatus};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgConnection, PgPool};
use test_support::TestDatabase;

const WAIT: Duration = Duration::from_secs(30);

/// A session on the cluster's `postgres` database, which stays up while
/// the test's database is taken away.
async fn admin(db: &TestDatabase) -> PgConnection {
    PgConnectOptions::from_str(db.url())
        .expect("the test database URL parses")
        .database("postgres")
        .connect()
        .await
        .expect("admin connection")
}

/// The database refuses new connections and loses the ones it has: to
/// Finance, it is down.
async fn take_down(admin: &mut PgConnection, db: &TestDatabase) {
    sqlx::query(&format!(
        r#"ALTER DATABASE "{}" ALLOW_CONNECTIONS false"#,
        db.name()
    ))
    .execute(&mut *admin)
    .await
    .expect("refuse connections");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(db.name())
        .execute(&mut *admin)
        .await
        .expect("terminate the sessions");
}

async fn bring_back(admin: &mut PgConnection, db: &TestDatabase) {
    sqlx::query(&format!(
        r#"ALTER DATABASE "{}" ALLOW_CONNECTIONS true"#,
        db.name()
    ))
    .execute(&mut *admin)
    .await
    .expect("accept connections");
}

/// Messages ready in the inbox queue (a passive declare creates nothing).
async fn inbox_ready(topology: &Topology) -> u32 {
    let connection = topology::connect(&amqp_url().await).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let queue = channel
        .queue_declare(
            &topology.queue,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the inbox exists");
    queue.message_count()
}

async fn dead_lettered(topology: &Topology) -> usize {
    let connection = topology::connect(&amqp_url().await).await.expect("connect");
    dead_letters::count(&connection, topology)
        .await
        .expect("dead letters counted")
}

async fn entries(pool: &PgPool) -> i64 {
    ledger::entry_count(pool).await.unwrap_or(-1)
}

#[tokio::test]
async fn an_outage_of_the_finance_database_dead_letters_nothing_and_books_everything_after() {
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let mut admin = admin(&db).await;
    let topology = unique_topology();
    let publisher = Publisher::new(&topology).await;
    // Finance's pool: a refused connection fails at once, as in production.
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect(db.url())
        .await
        .expect("finance pool");
    let status = ConsumerStatus::default();
    let consumer = tokio::spawn(consumer::run(
        pool,
        ConsumerSettings {
            amqp_url: amqp_url().await,
            topology: topology.clone(),
            prefetch: 8,
            status: status.clone(),
        },
    ));
    publisher
        .publish(&shipped("o-before", Decimal::new(1000, 2)))
        .await;
    wait_until("the first message booked", WAIT, || async {
        entries(db.pool()).await == 1
    })
    .await;

    take_down(&mut admin, &db).await;
    let during: Vec<_> = (0..5)
        .map(|i| shipped(&format!("o-during-{i}"), Decimal::new(500 + i, 2)))
        .collect();
    for message in &during {
        publisher.publish(message).await;
    }
    wait_until("the consumer to stop consuming", WAIT, || async {
        !status.is_consuming()
    })
    .await;
    // The outage lasts well past the retry delays (100 + 200 + 400 ms): a
    // consumer that kept taking deliveries would have dead-lettered them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !status.is_consuming(),
        "the consumer came back while the database is down"
    );
    assert_eq!(
        dead_lettered(&topology).await,
        0,
        "dead letters during the outage"
    );
    assert_eq!(
        inbox_ready(&topology).await,
        5,
        "every message published during the outage waits in the inbox"
    );

    bring_back(&mut admin, &db).await;
    wait_until("every message booked after the outage", WAIT, || async {
        entries(db.pool()).await == 6
    })
    .await;
    assert!(status.is_consuming());
    assert_eq!(
        dead_lettered(&topology).await,
        0,
        "dead letters after the outage"
    );
    assert_eq!(
        ledger::inbox_count(db.pool()).await.expect("inbox count"),
        6
    );
    consumer.abort();
    delete_topology(&topology).await;
}
