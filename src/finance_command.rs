//! `orderstream finance`: the Finance service, a bounded context of its own
//! (its own database, fed only by the integration events on the broker), and
//! its dead letters. It never opens orderstream's database.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use finance::dead_letters::{self, Replay};
use finance::{FinanceConfig, HttpLimits, Topology};

#[derive(clap::Subcommand)]
pub enum FinanceCommand {
    /// Consume the integration events, book them, and serve the journal,
    /// the trial balance and the dead letters over HTTP.
    Serve(FinanceServeArgs),
    /// Messages that failed every retry.
    DeadLetters {
        #[command(flatten)]
        broker: BrokerArgs,
        #[command(subcommand)]
        command: DeadLettersCommand,
    },
}

/// Where Finance's messages are.
#[derive(clap::Args)]
pub struct BrokerArgs {
    /// The RabbitMQ broker the relay publishes to.
    #[arg(long, env = "ORDERSTREAM_AMQP_URL", hide_env_values = true)]
    amqp_url: String,
    /// The topic exchange of the integration events.
    #[arg(long, env = "ORDERSTREAM_AMQP_EXCHANGE", default_value = finance::topology::DEFAULT_EXCHANGE)]
    exchange: String,
    /// Finance's durable inbox queue. Its dead letters go to the same name
    /// with `.dead` for `.inbox` (`finance.dead`), or `.dead` added.
    #[arg(long, env = "ORDERSTREAM_FINANCE_QUEUE", default_value = finance::topology::DEFAULT_QUEUE)]
    queue: String,
    /// Delays between the retries of a failing message; after the last it
    /// is dead-lettered.
    #[arg(long, env = "ORDERSTREAM_FINANCE_RETRY_DELAYS", default_value = "1s,10s,60s", value_delimiter = ',', value_parser = crate::duration::parse_positive)]
    retry_delays: Vec<Duration>,
}

#[derive(clap::Args)]
pub struct FinanceServeArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Finance's own PostgreSQL database (never orderstream's).
    #[arg(long, env = "FINANCE_DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Address of Finance's HTTP API.
    #[arg(
        long,
        env = "ORDERSTREAM_FINANCE_BIND",
        default_value = "127.0.0.1:8081"
    )]
    bind: SocketAddr,
    /// Bearer token of Finance's dead-letter endpoints; unset closes them.
    #[arg(long, env = "ORDERSTREAM_FINANCE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Unacknowledged messages the consumer holds at once.
    #[arg(long, env = "ORDERSTREAM_FINANCE_PREFETCH", default_value_t = 16)]
    prefetch: u16,
    /// Longest an HTTP request may take, body upload included; then 503.
    #[arg(long, env = "ORDERSTREAM_FINANCE_REQUEST_TIMEOUT", default_value = "30s", value_parser = crate::duration::parse_positive)]
    request_timeout: Duration,
    /// Longest a client may take to send a request head (or stay idle
    /// between requests); then the connection is closed.
    #[arg(long, env = "ORDERSTREAM_FINANCE_HEADER_TIMEOUT", default_value = "10s", value_parser = crate::duration::parse_positive)]
    header_timeout: Duration,
    /// HTTP requests handled at once (health, ready and metrics apart);
    /// more get 503 with Retry-After at once.
    #[arg(long, env = "ORDERSTREAM_FINANCE_MAX_CONCURRENT_REQUESTS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_concurrent_requests: u32,
    /// After SIGTERM or Ctrl-C, how long HTTP requests in flight may still
    /// take; connections still open then are dropped.
    #[arg(long, env = "ORDERSTREAM_FINANCE_SHUTDOWN_GRACE", default_value = "10s", value_parser = crate::duration::parse_positive)]
    shutdown_grace: Duration,
}

#[derive(clap::Subcommand)]
pub enum DeadLettersCommand {
    /// Print the dead letters (JSON lines), oldest first; they stay queued.
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send dead letters back to the inbox, all or one by message id.
    Replay {
        #[arg(
            long,
            conflicts_with = "message_id",
            required_unless_present = "message_id"
        )]
        all: bool,
        message_id: Option<String>,
    },
}

impl BrokerArgs {
    fn topology(&self) -> Topology {
        Topology {
            exchange: self.exchange.clone(),
            queue: self.queue.clone(),
            dead_letter_queue: dead_letter_queue(&self.queue),
            retry_delays: self.retry_delays.clone(),
        }
    }
}

/// `finance.inbox` -> `finance.dead`; any other name gets `.dead` added:
/// never the inbox itself, where a message failing every retry would loop.
fn dead_letter_queue(inbox: &str) -> String {
    match inbox.strip_suffix(".inbox") {
        Some(base) => format!("{base}.dead"),
        None => format!("{inbox}.dead"),
    }
}

pub async fn run(command: FinanceCommand) -> anyhow::Result<()> {
    match command {
        FinanceCommand::Serve(args) => {
            let config = FinanceConfig {
                topology: args.broker.topology(),
                database_url: args.database_url,
                amqp_url: args.broker.amqp_url,
                prefetch: args.prefetch,
                listen: args.bind,
                admin_token: args.admin_token,
                http: HttpLimits {
                    request_timeout: args.request_timeout,
                    header_read_timeout: args.header_timeout,
                    max_concurrent_requests: usize::try_from(args.max_concurrent_requests)
                        .unwrap_or(usize::MAX),
                    shutdown_grace: args.shutdown_grace,
                    ..HttpLimits::default()
                },
            };
            tracing::info!(
                listen = %config.listen,
                exchange = %config.topology.exchange,
                queue = %config.topology.queue,
                "finance: starting"
            );
            finance::run(config, crate::serve::shutdown_signal())
                .await
                .context("finance stopped")
        }
        FinanceCommand::DeadLetters { broker, command } => {
            let topology = broker.topology();
            let connection = finance::topology::connect(&broker.amqp_url)
                .await
                .context("could not connect to the broker (ORDERSTREAM_AMQP_URL)")?;
            let outcome = match command {
                DeadLettersCommand::List { limit } => {
                    let letters = dead_letters::list(&connection, &topology, limit).await?;
                    for letter in letters {
                        println!("{}", serde_json::to_string(&letter)?);
                    }
                    Ok(())
                }
                DeadLettersCommand::Replay { all, message_id } => {
                    let which = match message_id {
                        Some(id) if !all => Replay::MessageId(id),
                        _ => Replay::All,
                    };
                    let replayed = dead_letters::replay(&connection, &topology, &which).await?;
                    println!("replayed {}", replayed.replayed);
                    Ok(())
                }
            };
            let _ = connection.close(200, "done").await;
            outcome
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dead_letter_queue;

    #[test]
    fn the_dead_letter_queue_is_never_the_inbox() {
        assert_eq!(dead_letter_queue("finance.inbox"), "finance.dead");
        assert_eq!(dead_letter_queue("books"), "books.dead");
        assert_eq!(dead_letter_queue("a.inbox.b"), "a.inbox.b.dead");
    }
}
