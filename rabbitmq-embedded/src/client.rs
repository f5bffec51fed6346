//! Talking to a node: a connection on tokio, and waiting for a queue.

use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::Connection;

/// An AMQP connection with tokio as lapin's executor and reactor (the
/// workspace builds lapin without its own runtime).
pub async fn connect_amqp(url: &str) -> Result<Connection, lapin::Error> {
    let properties = lapin::ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    Connection::connect(url, properties).await
}

/// Waits until `queue` exists, for at most `patience`: a consumer that
/// declares its queues after it starts, or a node recovering its durable
/// queues after a crash (it accepts connections before it is done).
/// Whether the queue was seen.
pub async fn wait_for_queue(connection: &Connection, queue: &str, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        // A failed passive declare closes its channel: a new one each try.
        if let Ok(channel) = connection.create_channel().await {
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            if channel
                .queue_declare(queue, passive, FieldTable::default())
                .await
                .is_ok()
            {
                let _ = channel.close(200, "queue seen").await;
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
