//! A private RabbitMQ node for orderstream's tests and development, started
//! from the machine's installed `rabbitmq-server`, the way `pg-embedded`
//! starts PostgreSQL.
//!
//! This is not a RabbitMQ distribution: it finds the server script
//! (`ORDERSTREAM_RABBITMQ_SERVER`, else Debian's
//! `/usr/lib/rabbitmq/bin/rabbitmq-server`, else
//! `/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin`, else `rabbitmq-server` on
//! `PATH`) and runs it with everything in a fresh temporary directory: data,
//! log, configuration, Erlang cookie, a unique node name, free AMQP,
//! distribution and epmd ports on 127.0.0.1, and no plugins. The machine's
//! own RabbitMQ (if any) is neither used nor disturbed. As root it runs the
//! node as the `rabbitmq` OS user (the package's), else as a system user it
//! creates, `orderstream-rabbitmq`.
//!
//! Start reading at [`Broker`] (a running node: restart it, kill it) and
//! [`TestBroker`] (the one broker the tests of a process share, with a
//! fresh vhost per test).

mod broker;
mod client;
mod error;
mod install;
mod node;
mod test_broker;
mod watchdog;

pub use broker::Broker;
pub use client::{connect_amqp, wait_for_queue};
pub use error::BrokerError;
pub use install::SERVER_ENV;
pub use test_broker::{TestBroker, TEST_URL_ENV};
