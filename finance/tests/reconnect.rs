//! The consumer's reconnect backoff starts again from its first delay once
//! a connection has consumed: after a long broker outage (backoff grown to
//! seconds) and a healthy connection, a lost connection is taken up again
//! at once. A private RabbitMQ node of the test's own (`rabbitmqctl`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use finance::consumer::{self, ConsumerSettings};
use finance::ConsumerStatus;
use rabbitmq_embedded::Broker;
use test_support::TestDatabase;

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_healthy_connection_a_lost_connection_is_taken_up_again_at_once() {
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

    // A long outage: 8 s of failed reconnects (200 ms doubling) grow the
    // delay to 6.4 s; without a reset the next would be 12.8 s or more.
    broker.rabbitmqctl(&["stop_app"]).await.expect("stop_app");
    wait_until("the consumer to notice", WAIT, || async {
        !status.is_consuming()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    broker.rabbitmqctl(&["start_app"]).await.expect("start_app");
    wait_until("consuming after the outage", WAIT, || async {
        status.is_consuming()
    })
    .await;

    // The broker closes the healthy connection: the consumer reconnects
    // after its first delay (200 ms), the broker being up.
    let before = status.sessions();
    let closed = Instant::now();
    broker
        .rabbitmqctl(&["close_all_connections", "backoff test"])
        .await
        .expect("close_all_connections");
    wait_until("consuming on a new connection", WAIT, || async {
        status.sessions() > before && status.is_consuming()
    })
    .await;
    let took = closed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "reconnecting after a healthy connection took {took:?}: the backoff was not reset"
    );
    consumer.abort();
}
