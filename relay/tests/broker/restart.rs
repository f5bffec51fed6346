//! A real broker restart (a private node SIGKILLed and started again on its
//! data) while orders flow: every contract is in the durable queue after
//! the relay catches up, in stream order, duplicates only as repeats of a
//! message id, and nothing is parked.

use std::collections::HashMap;

use aggregates::order::OrderStatus;
use aggregates::values::PaymentMethod;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use projections::operations::subscription_statuses;
use rabbitmq_embedded::{connect_amqp, Broker};
use uuid::Uuid;

use crate::helpers::{declare_exchange, wait_until, TestApp};

/// Declares a durable queue bound to every contract of `exchange`.
async fn durable_queue(url: &str, exchange: &str, queue: &str) {
    let connection = connect_amqp(url).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    declare_exchange(&channel, exchange).await;
    channel
        .queue_declare(
            queue,
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue");
    channel
        .queue_bind(
            queue,
            exchange,
            "#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    let _ = connection.close(200, "declared").await;
}

/// Every message of `queue`, in queue order: (message id, stream id). A
/// crashed node accepts connections before its queues are back, so a
/// missing queue is waited for.
async fn drain(url: &str, queue: &str) -> Vec<(Uuid, String)> {
    let connection = connect_amqp(url).await.expect("connect");
    let mut messages = Vec::new();
    assert!(
        rabbitmq_embedded::wait_for_queue(&connection, queue, std::time::Duration::from_secs(30))
            .await,
        "queue {queue} did not come back after the restart"
    );
    let channel = connection.create_channel().await.expect("channel");
    while let Some(message) = channel
        .basic_get(queue, BasicGetOptions::default())
        .await
        .expect("basic.get")
    {
        let properties = &message.delivery.properties;
        let id = properties
            .message_id()
            .as_ref()
            .and_then(|id| Uuid::parse_str(id.as_str()).ok())
            .expect("a message id");
        let stream = properties
            .headers()
            .as_ref()
            .and_then(|headers| headers.inner().get("stream_id").cloned())
            .map(|value| match value {
                lapin::types::AMQPValue::LongString(text) => text.to_string(),
                other => format!("{other:?}"),
            })
            .expect("a stream id header");
        messages.push((id, stream));
        message
            .delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
    }
    let _ = connection.close(200, "drained").await;
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_and_restarted_mid_load_loses_nothing_and_keeps_stream_order() {
    let mut broker = Broker::start_temporary()
        .await
        .expect("a private RabbitMQ node");
    let url = broker.url();
    let app = TestApp::new().await;
    let queue = format!("restart.{}", Uuid::new_v4().simple());
    durable_queue(&url, &app.exchange, &queue).await;
    app.receive("SKU-1", 1000).await;
    let runtime = app.start(&url);

    let mut orders = Vec::new();
    for i in 0..20 {
        if i == 8 {
            // RabbitMQ writes queue and exchange declarations through a
            // delayed-write log: a crash within a second or two of a
            // declare can lose the declaration itself (not a confirmed
            // message). The test is about messages: flush that log first.
            broker
                .rabbitmqctl(&["eval", "mnesia:sync_log()."])
                .await
                .expect("flush the node's metadata log");
            broker
                .kill_and_restart()
                .await
                .expect("kill and restart the node");
        }
        orders.push(app.place("SKU-1", 1, PaymentMethod::CardOk).await);
    }
    for order_id in &orders {
        wait_until("every order is paid", || async {
            app.status(*order_id).await == Some(OrderStatus::Paid)
        })
        .await;
    }
    let expected = app.expected_messages().await;
    wait_until("the relay caught up", || async {
        subscription_statuses(&app.store)
            .await
            .expect("statuses")
            .iter()
            .any(|status| status.name == relay::NAME && status.lag == 0)
    })
    .await;
    assert_eq!(
        app.relay_parked().await,
        0,
        "a broker restart parks nothing"
    );

    let received = drain(&url, &queue).await;
    let mut first_seen: Vec<(Uuid, String)> = Vec::new();
    let mut counts: HashMap<Uuid, usize> = HashMap::new();
    for (id, stream) in received {
        *counts.entry(id).or_default() += 1;
        if counts[&id] == 1 {
            first_seen.push((id, stream));
        }
    }
    for (id, name, _) in &expected {
        assert!(
            counts.contains_key(id),
            "{name} {id} was lost in the restart"
        );
    }
    assert_eq!(
        counts.len(),
        expected.len(),
        "only the log's contracts were published"
    );
    // Per stream, first arrivals follow the log.
    for stream in expected.iter().map(|(_, _, stream)| stream) {
        let want: Vec<Uuid> = expected
            .iter()
            .filter(|(_, _, s)| s == stream)
            .map(|(id, _, _)| *id)
            .collect();
        let got: Vec<Uuid> = first_seen
            .iter()
            .filter(|(_, s)| s == stream)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(got, want, "stream {stream} out of order");
    }
    eprintln!(
        "{} contracts, {} deliveries after the restart ({} repeats)",
        expected.len(),
        counts.values().sum::<usize>(),
        counts.values().sum::<usize>() - counts.len()
    );
    runtime.shutdown().await;
}
