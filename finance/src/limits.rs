//! Finance's HTTP protections, the same as the orderstream API's
//! (`api/src/limits.rs`, `api/src/server.rs`): a deadline per request, a
//! bound on the requests in flight shed at once with 503 and `Retry-After`
//! (a queue only adds latency to an overloaded server), a body size limit,
//! and (in `server.rs`) a header-read timeout and a bounded graceful
//! shutdown. Finance depends on no orderstream crate, so they are its own.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::http::Problem;

/// How Finance's HTTP treats requests and connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest a request may take from its head being read to its
    /// response head, body upload included; then 503.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request head, on a new
    /// connection or an idle kept-alive one; then the connection is closed.
    pub header_read_timeout: Duration,
    /// Requests handled at once (probes and scrapes apart); more are
    /// answered 503 with `Retry-After` at once.
    pub max_concurrent_requests: usize,
    /// After the shutdown signal, how long requests in flight may still
    /// take; connections still open then are dropped.
    pub shutdown_grace: Duration,
    /// Largest request body, in bytes; a larger one is 413.
    pub body_limit: usize,
}

/// No Finance endpoint takes more than an empty POST: anything large is
/// a mistake or an attack.
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

/// Answered whatever the load: probes and scrapes must see an overloaded
/// Finance as alive, and they are cheap.
const UNLIMITED_PATHS: &[&str] = &["/finance/health", "/finance/ready", "/finance/metrics"];

/// Seconds a shed client is asked to wait.
const RETRY_AFTER_SECONDS: u64 = 1;

/// What the middleware needs: the limits and one permit per request in
/// flight.
#[derive(Clone)]
pub(crate) struct Guard {
    limits: HttpLimits,
    in_flight: Arc<Semaphore>,
}

impl Guard {
    pub(crate) fn new(limits: HttpLimits) -> Guard {
        let permits = limits
            .max_concurrent_requests
            .clamp(1, Semaphore::MAX_PERMITS);
        Guard {
            limits,
            in_flight: Arc::new(Semaphore::new(permits)),
        }
    }
}

pub(crate) async fn limit(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    // A declared length is refused before anything is read; a body without
    // one is bounded where it is read (`DefaultBodyLimit` in the router).
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > guard.limits.body_limit as u64) {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!(
                "the request body is larger than the limit of {} bytes",
                guard.limits.body_limit
            ),
        )
        .into_response();
    }
    let unlimited = UNLIMITED_PATHS.contains(&request.uri().path());
    // Held until the response head is ready.
    let _permit = if unlimited {
        None
    } else {
        match guard.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return overloaded(),
        }
    };
    match tokio::time::timeout(guard.limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_s = guard.limits.request_timeout.as_secs_f64(),
                "finance: request timed out"
            );
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Request timed out",
                format!(
                    "the request took longer than the limit of {} s and was abandoned; a \
                     replay may or may not have taken effect (list the dead letters before \
                     retrying it)",
                    guard.limits.request_timeout.as_secs_f64()
                ),
            )
            .into_response()
        }
    }
}

fn overloaded() -> Response {
    let mut response = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Overloaded",
        "Finance is handling as many requests as it allows; retry after the time in Retry-After",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}
