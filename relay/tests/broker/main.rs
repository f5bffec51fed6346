//! The relay against a real RabbitMQ (`ORDERSTREAM_TEST_AMQP_URL`) and a
//! real PostgreSQL: each test has its own database and exchange.

mod failures;
mod helpers;
mod ordering;
mod publishing;
mod restart;
