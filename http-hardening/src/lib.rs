//! The HTTP protections orderstream's API and Finance share: the HTTP/1
//! connection loop with a header-read timeout and a graceful shutdown
//! bounded by a grace period ([`serve`]), and around a router
//! ([`Hardening::apply`]) a deadline per request, a bound on the requests
//! in flight shed at once with 503 and `Retry-After`, a body size limit,
//! panics caught as an opaque 500, every refusal as problem+json.
//!
//! This is infrastructure, not domain: it knows HTTP and nothing of
//! orders, events or the ledger, and depends on no orderstream crate, so
//! that Finance (which must depend on no orderstream *domain* crate) can
//! use it as the API does. Keep it that way.

mod guard;
mod problem;
mod server;

use std::time::Duration;

pub use guard::{Hardening, Policy};
pub use problem::{problem, ProblemTypes, PROBLEM_JSON};
pub use server::serve;

/// How a service treats requests and connections. The defaults are
/// conservative (a 64 KiB body); a service that takes more says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest a request may take from its head being read to its
    /// response head, body upload included; then 503.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request head, on a new
    /// connection or an idle kept-alive one; then the connection is closed.
    pub header_read_timeout: Duration,
    /// Requests handled at once (the policy's unlimited paths apart); more
    /// are answered 503 with `Retry-After` at once.
    pub max_concurrent_requests: usize,
    /// After the shutdown signal, how long requests in flight may still
    /// take; connections still open then are dropped.
    pub shutdown_grace: Duration,
    /// Largest request body, in bytes; a larger one is 413.
    pub body_limit: usize,
}

/// The default body limit: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_concurrent_requests: 64,
            shutdown_grace: Duration::from_secs(10),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}
