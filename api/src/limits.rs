//! Back-pressure: a bound on the requests in flight, shed at once with 503
//! and `Retry-After` rather than queued (a queue only adds latency to an
//! overloaded server), and a deadline per request.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::problem_response;
use crate::metrics::REQUESTS_REJECTED;
use crate::AppState;

/// Answered whatever the load: probes and scrapes must see an overloaded
/// server as alive, and they are cheap.
const UNLIMITED_PATHS: &[&str] = &[
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/asyncapi.json",
];

/// Seconds a shed client is asked to wait.
const RETRY_AFTER_SECONDS: u64 = 1;

pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = state.limits();
    let unlimited = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|path| UNLIMITED_PATHS.contains(&path.as_str()));
    // Held until the response head is ready.
    let _permit = if unlimited {
        None
    } else {
        match limits.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return overloaded(),
        }
    };
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!(REQUESTS_REJECTED, "reason" => "timeout").increment(1);
            tracing::warn!(
                timeout_s = limits.request_timeout.as_secs_f64(),
                "request timed out"
            );
            problem_response(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the request took longer than the limit of {} s and was abandoned; a \
                     command may or may not have taken effect (retry with the same \
                     Idempotency-Key, or read before retrying)",
                    limits.request_timeout.as_secs_f64()
                ),
            )
        }
    }
}

fn overloaded() -> Response {
    metrics::counter!(REQUESTS_REJECTED, "reason" => "overloaded").increment(1);
    let mut response = problem_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is handling as many requests as it allows; retry after the time in \
         Retry-After"
            .into(),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}
