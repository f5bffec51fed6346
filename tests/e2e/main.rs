//! End-to-end tests through HTTP: the API on port 0 against a fresh
//! database per test, with the subscription runtime in-process when a test
//! needs the choreography.

mod audit;
mod choreography;
mod console_finance;
mod correlation;
mod crash_recovery;
mod deployment;
mod errors;
mod faults;
mod hardening;
mod helpers;
mod idempotency;
mod integration;
mod integration_faults;
mod inventory;
mod least_privilege;
mod numbers;
mod operations;
mod orders;
mod otlp_receiver;
mod paging;
mod properties;
mod quick_tour;
mod restore;
mod served;
mod service;
mod shipping;
mod tracing;
