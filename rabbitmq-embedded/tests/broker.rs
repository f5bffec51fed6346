//! A private node starts from the installed rabbitmq-server, takes confirmed
//! publishes and delivers them, keeps a durable queue's persistent messages
//! across a graceful restart and a SIGKILL, isolates tests by vhost, and
//! leaves nothing behind when stopped.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use rabbitmq_embedded::{Broker, TestBroker};

async fn connect(url: &str) -> (Connection, Channel) {
    let connection = rabbitmq_embedded::connect_amqp(url)
        .await
        .expect("connect over AMQP");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("publisher confirms");
    (connection, channel)
}

async fn declare_durable(channel: &Channel, queue: &str) -> u32 {
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
        .expect("declare the queue")
        .message_count()
}

/// Publishes `body` persistently and mandatorily to `queue` through the
/// default exchange; returns once the broker confirmed it (an ack, and no
/// return: it was routed).
async fn publish_confirmed(channel: &Channel, queue: &str, body: &[u8]) {
    let confirmation = channel
        .basic_publish(
            "",
            queue,
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .expect("publish")
        .await
        .expect("confirmation");
    assert!(
        matches!(confirmation, Confirmation::Ack(None)),
        "expected a plain ack, got {confirmation:?}"
    );
}

/// A confirm covers the message, not the queue's declaration: RabbitMQ
/// writes its metadata (Mnesia) through a delayed-write log, so a SIGKILL
/// within a second or two of `queue.declare` can lose the queue itself.
/// Flushing that log first makes the test about messages, as it means to be.
async fn sync_metadata(broker: &Broker) {
    broker
        .rabbitmqctl(&["eval", "mnesia:sync_log()."])
        .await
        .expect("flush the node's metadata log");
}

/// After a crash the node accepts connections before it has recovered
/// every durable queue: wait, with a deadline, until `queue` is back.
async fn wait_for_queue(connection: &Connection, queue: &str) {
    assert!(
        rabbitmq_embedded::wait_for_queue(connection, queue, Duration::from_secs(30)).await,
        "queue {queue} did not come back after the restart"
    );
}

/// Takes every message of `queue` (acking each) in queue order.
async fn drain(channel: &Channel, queue: &str) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    while let Some(message) = channel
        .basic_get(queue, BasicGetOptions::default())
        .await
        .expect("basic.get")
    {
        message
            .delivery
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
        bodies.push(message.delivery.data);
    }
    bodies
}

fn numbered(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|index| format!("message {index}").into_bytes())
        .collect()
}

#[tokio::test]
async fn a_private_node_takes_a_confirmed_publish_and_delivers_it_to_a_consumer() {
    let broker = TestBroker::shared().await.expect("a broker for the tests");
    let url = broker.fresh_vhost().await.expect("a vhost of our own");
    let (connection, channel) = connect(&url).await;
    let queue = TestBroker::unique_name("greetings");
    declare_durable(&channel, &queue).await;
    publish_confirmed(&channel, &queue, b"hello").await;

    let mut consumer = channel
        .basic_consume(
            &queue,
            "test",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a delivery within 10 s")
        .expect("the consumer is open")
        .expect("a delivery, not an error");
    assert_eq!(delivery.data, b"hello");
    delivery.ack(BasicAckOptions::default()).await.expect("ack");
    connection.close(200, "done").await.expect("close");
}

#[tokio::test]
async fn the_shared_node_is_private_not_the_machines_rabbitmq() {
    if std::env::var(rabbitmq_embedded::TEST_URL_ENV).is_ok() {
        // An external broker was asked for: there is no node of ours.
        assert!(!TestBroker::shared().await.expect("broker").is_private());
        return;
    }
    let broker = TestBroker::shared().await.expect("a broker for the tests");
    assert!(broker.is_private());
    assert!(
        !broker.url().contains(":5672/"),
        "the system broker's port: {}",
        broker.url()
    );
}

#[tokio::test]
async fn a_fresh_vhost_sees_nothing_of_another() {
    let broker = TestBroker::shared().await.expect("a broker for the tests");
    if !broker.is_private() {
        return; // An external broker's vhost cannot be multiplied.
    }
    let first = broker.fresh_vhost().await.expect("first vhost");
    let second = broker.fresh_vhost().await.expect("second vhost");
    assert_ne!(first, second);
    let (first_connection, first_channel) = connect(&first).await;
    let (second_connection, second_channel) = connect(&second).await;
    // The same queue name in both: each vhost has its own.
    declare_durable(&first_channel, "orders").await;
    publish_confirmed(&first_channel, "orders", b"only in the first").await;
    assert_eq!(declare_durable(&second_channel, "orders").await, 0);
    assert_eq!(
        drain(&first_channel, "orders").await,
        vec![b"only in the first".to_vec()]
    );
    first_connection.close(200, "done").await.expect("close");
    second_connection.close(200, "done").await.expect("close");
}

#[tokio::test]
async fn a_restart_keeps_a_durable_queues_persistent_messages() {
    let mut broker = Broker::start_temporary().await.expect("start a node");
    let (port, queue) = (broker.port(), "kept");
    {
        let (connection, channel) = connect(&broker.url()).await;
        declare_durable(&channel, queue).await;
        for body in numbered(20) {
            publish_confirmed(&channel, queue, &body).await;
        }
        connection.close(200, "restarting").await.expect("close");
    }
    broker.restart().await.expect("restart");
    assert_eq!(broker.port(), port, "the same port after a restart");
    let (connection, channel) = connect(&broker.url()).await;
    assert_eq!(declare_durable(&channel, queue).await, 20);
    assert_eq!(drain(&channel, queue).await, numbered(20));
    connection.close(200, "done").await.expect("close");
}

#[tokio::test]
async fn a_killed_node_comes_back_with_every_confirmed_persistent_message() {
    let mut broker = Broker::start_temporary().await.expect("start a node");
    let queue = "survives-sigkill";
    // The connection stays open: the node dies under it.
    let (_doomed, channel) = connect(&broker.url()).await;
    declare_durable(&channel, queue).await;
    for body in numbered(20) {
        publish_confirmed(&channel, queue, &body).await;
    }
    sync_metadata(&broker).await;
    broker.kill_and_restart().await.expect("kill and restart");
    let (connection, channel) = connect(&broker.url()).await;
    wait_for_queue(&connection, queue).await;
    assert_eq!(drain(&channel, queue).await, numbered(20));

    // And once more: a node started again can be killed again.
    publish_confirmed(&channel, queue, b"after the first crash").await;
    sync_metadata(&broker).await;
    broker
        .kill_and_restart()
        .await
        .expect("second kill and restart");
    drop(connection);
    let (connection, channel) = connect(&broker.url()).await;
    wait_for_queue(&connection, queue).await;
    assert_eq!(
        drain(&channel, queue).await,
        vec![b"after the first crash".to_vec()]
    );
    connection.close(200, "done").await.expect("close");
}

#[tokio::test]
async fn a_stopped_node_leaves_neither_a_listener_nor_its_directory() {
    let broker = Broker::start_temporary().await.expect("start a node");
    let (dir, port) = (broker.dir().to_path_buf(), broker.port());
    assert!(dir.join("rabbit.log").exists());
    tokio::task::spawn_blocking(move || broker.stop())
        .await
        .expect("stop");
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on {port}"
    );
}

#[tokio::test]
async fn rabbitmqctl_reaches_the_node() {
    let broker = Broker::start_temporary().await.expect("start a node");
    let url = broker.add_vhost("accounts").await.expect("add a vhost");
    assert!(url.ends_with("/accounts"), "{url}");
    let vhosts = broker
        .rabbitmqctl(&["list_vhosts", "--quiet"])
        .await
        .expect("list vhosts");
    assert!(
        vhosts.lines().any(|line| line.trim() == "accounts"),
        "{vhosts}"
    );
    let (connection, _channel) = connect(&url).await;
    connection.close(200, "done").await.expect("close");
}
