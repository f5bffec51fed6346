//! The subscription runtime, read models and choreography against a real
//! PostgreSQL: each test gets a fresh database.

mod batches;
mod choreography;
mod consumer_groups;
mod contention;
mod failures;
mod helpers;
mod operations;
mod ownership;
mod payments;
