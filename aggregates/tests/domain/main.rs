//! Integration tests of the pure domain: given / when / then scenarios,
//! event encoding and property tests. One binary, so the suite links once.

// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod allocation;
mod codec;
mod helpers;
mod inventory;
mod limits;
mod order;
mod payment;
mod properties;
mod reservation;
mod shipment;
