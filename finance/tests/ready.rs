//! `/finance/ready` follows the consumer: 503 until it has declared its
//! topology and consumes, 503 while the broker is stopped, 200 again once
//! it is back. A node of the test's own (`Broker::start_temporary`): the
//! test stops RabbitMQ on it, which no shared node may see.

mod common;

use std::time::Duration;

use common::*;
use finance::consumer::{self, ConsumerSettings};
use finance::{ledger, ConsumerStatus, FinanceHttp};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use rabbitmq_embedded::Broker;
use rust_decimal::Decimal;
use serde_json::Value;
use test_support::TestDatabase;

const WAIT: Duration = Duration::from_secs(60);

async fn serve(state: FinanceHttp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(finance::serve(listener, state, std::future::pending()));
    format!("http://{address}")
}

/// Status, content type and body of `GET /finance/ready`.
async fn ready(http: &reqwest::Client, base: &str) -> (u16, String, Value) {
    let response = http
        .get(format!("{base}/finance/ready"))
        .send()
        .await
        .expect("GET /finance/ready");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

/// Publishes `message` as the relay does (`mandatory`, confirmed) and says
/// whether the broker routed it to a queue rather than returning it.
async fn routed(url: &str, exchange: &str, message: &Message) -> bool {
    let connection = rabbitmq_embedded::connect_amqp(url).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let confirmation = channel
        .basic_publish(
            exchange,
            message.contract,
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            message.payload.as_bytes(),
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(message.message_id.as_str().into())
                .with_type(message.contract.into()),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    let _ = connection.close(200, "published").await;
    matches!(confirmation, Confirmation::Ack(None))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_while_the_consumer_consumes_and_again_after_a_broker_outage() {
    let broker = Broker::start_temporary()
        .await
        .unwrap_or_else(|error| panic!("this test needs rabbitmq-server: {error}"));
    let url = broker.url();
    let db = TestDatabase::new(&finance::MIGRATOR)
        .await
        .expect("database");
    let topology = unique_topology();
    let status = ConsumerStatus::default();
    let base = serve(FinanceHttp {
        pool: db.pool().clone(),
        amqp_url: url.clone(),
        topology: topology.clone(),
        admin_token: None,
        status: status.clone(),
        limits: Default::default(),
    })
    .await;
    let http = reqwest::Client::new();

    // No consumer yet: not ready, problem+json naming the queue, and the
    // process is alive all the same.
    let (code, content_type, body) = ready(&http, &base).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["status"], 503);
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains(&topology.queue),
        "{body}"
    );
    let health = http
        .get(format!("{base}/finance/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);

    let consumer = tokio::spawn(consumer::run(
        db.pool().clone(),
        ConsumerSettings {
            amqp_url: url.clone(),
            topology: topology.clone(),
            prefetch: 8,
            status,
        },
    ));
    wait_until("ready", WAIT, || async {
        ready(&http, &base).await.0 == 200
    })
    .await;
    // Ready means declared: every queue exists now, and a mandatory publish
    // is routed (the relay would have had it returned before) and booked.
    let connection = rabbitmq_embedded::connect_amqp(&url)
        .await
        .expect("connect");
    let mut queues = vec![topology.queue.clone(), topology.dead_letter_queue.clone()];
    queues.extend(
        topology
            .retry_delays
            .iter()
            .map(|d| topology.retry_queue(*d)),
    );
    for queue in &queues {
        let channel = connection.create_channel().await.expect("channel");
        channel
            .queue_declare(
                queue,
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|error| panic!("{queue} declared once ready: {error}"));
    }
    let _ = connection.close(200, "checked").await;
    assert!(routed(&url, &topology.exchange, &shipped("o-1", Decimal::TEN)).await);
    wait_until("the first message booked", WAIT, || async {
        ledger::entry_count(db.pool()).await.expect("count") == 1
    })
    .await;

    // The broker's application stopped: connections cut, new ones refused.
    broker.rabbitmqctl(&["stop_app"]).await.expect("stop_app");
    wait_until("not ready while the broker is stopped", WAIT, || async {
        let (code, content_type, _) = ready(&http, &base).await;
        code == 503 && content_type == "application/problem+json"
    })
    .await;
    // Stays so: the consumer cannot get back while the broker is down.
    for _ in 0..3 {
        assert_eq!(ready(&http, &base).await.0, 503);
    }

    broker.rabbitmqctl(&["start_app"]).await.expect("start_app");
    wait_until("ready again after the broker is back", WAIT, || async {
        ready(&http, &base).await.0 == 200
    })
    .await;
    assert!(routed(&url, &topology.exchange, &shipped("o-2", Decimal::TEN)).await);
    wait_until("the message after the outage booked", WAIT, || async {
        ledger::entry_count(db.pool()).await.expect("count") == 2
    })
    .await;
    consumer.abort();
}
