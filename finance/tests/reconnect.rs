//! The consumer's reconnect backoff starts again from its first delay once
//! a connection has consumed: after a long broker outage (backoff grown to
//! seconds) and a healthy connection, a short outage costs a short wait.
//! A private RabbitMQ node of the test's own (`rabbitmqctl stop_app` and
//! `start_app`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use finance::consumer::{self, ConsumerSettings};
use finance::ConsumerStatus;
use pg_embedded::TestDatabase;
use rabbitmq_embedded::Broker;

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_healthy_connection_a_short_broker_outage_is_reconnected_quickly() {
    let broker = Broker::start_temporary()
        .await
        .unwrap_or_else(|error| panic!("this test needs rabbitmq-server: {error}"));
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let status = ConsumerStatus::default();
    let consumer = tokio::spawn(consumer::run(
        db.pool().clone(),
        ConsumerSettings {
            amqp_url: broker.url(),
            topology: unique_topology(),
            prefetch: 8,
            status: status.clone(),
        },
    ));
    wait_until("consuming", WAIT, || async { status.is_consuming() }).await;

    // A long outage: 8 s of failed reconnects grow the delay to 6.4 s and
    // beyond (200 ms doubling), 12.8 s next, 25.6 s after that.
    broker.rabbitmqctl(&["stop_app"]).await.expect("stop_app");
    wait_until("the consumer to notice", WAIT, || async {
        !status.is_consuming()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    broker.rabbitmqctl(&["start_app"]).await.expect("start_app");
    wait_until("consuming after the long outage", WAIT, || async {
        status.is_consuming()
    })
    .await;

    // A short outage after a connection that consumed.
    broker.rabbitmqctl(&["stop_app"]).await.expect("stop_app");
    wait_until("the consumer to notice", WAIT, || async {
        !status.is_consuming()
    })
    .await;
    broker.rabbitmqctl(&["start_app"]).await.expect("start_app");
    let back = Instant::now();
    wait_until("consuming after the short outage", WAIT, || async {
        status.is_consuming()
    })
    .await;
    let took = back.elapsed();
    // The short outage's own doublings stay within a few seconds; a delay
    // kept from the long outage would be 12.8 s or more.
    assert!(
        took < Duration::from_secs(10),
        "reconnecting after a short outage took {took:?}: the backoff was not reset"
    );
    consumer.abort();
}
