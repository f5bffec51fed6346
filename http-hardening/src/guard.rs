//! The middleware: a body limit on the declared length, a bound on the
//! requests in flight shed at once with 503 and `Retry-After` rather than
//! queued (a queue only adds latency to an overloaded server), a deadline
//! per request; and around the handlers, panics caught as an opaque 500.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;

use crate::problem::{problem, ProblemTypes};
use crate::HttpLimits;

/// Seconds a shed client is asked to wait.
const RETRY_AFTER_SECONDS: u64 = 1;

/// What differs between the services using the hardening.
#[derive(Debug, Clone)]
pub struct Policy {
    pub problem_types: ProblemTypes,
    /// Answered whatever the load (exact paths): probes and scrapes must
    /// see an overloaded server as alive, and they are cheap.
    pub unlimited_paths: &'static [&'static str],
    /// Ends a timeout's detail: what the client may do about a request
    /// that may or may not have taken effect.
    pub timeout_advice: &'static str,
    /// A counter incremented per refusal, labelled `reason` (`timeout`,
    /// `overloaded`, `too_large`); none if `None`.
    pub rejected_counter: Option<&'static str>,
}

/// The limits and their state (one permit per request in flight). Cheap to
/// clone; clones share the permits.
#[derive(Clone)]
pub struct Hardening {
    inner: Arc<Inner>,
}

struct Inner {
    limits: HttpLimits,
    policy: Policy,
    in_flight: Semaphore,
}

impl Hardening {
    pub fn new(limits: HttpLimits, policy: Policy) -> Hardening {
        let permits = limits
            .max_concurrent_requests
            .clamp(1, Semaphore::MAX_PERMITS);
        Hardening {
            inner: Arc::new(Inner {
                limits,
                policy,
                in_flight: Semaphore::new(permits),
            }),
        }
    }

    pub fn limits(&self) -> &HttpLimits {
        &self.inner.limits
    }

    /// Permits not taken: how many more requests would be let in now.
    pub fn available_permits(&self) -> usize {
        self.inner.in_flight.available_permits()
    }

    /// `router` with the protections around it: outermost the limits
    /// (declared body length, shedding, deadline), then the body limit for
    /// bodies read without a declared length, then panic catching.
    pub fn apply<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let types = self.inner.policy.problem_types;
        router
            .layer(CatchPanicLayer::custom(
                move |_: Box<dyn std::any::Any + Send + 'static>| panicked(types),
            ))
            .layer(DefaultBodyLimit::max(self.inner.limits.body_limit))
            .layer(axum::middleware::from_fn_with_state(self.clone(), limit))
    }

    fn refused(&self, reason: &'static str) {
        if let Some(counter) = self.inner.policy.rejected_counter {
            metrics::counter!(counter, "reason" => reason).increment(1);
        }
    }
}

/// A panic is a bug: logged, answered with an opaque 500.
fn panicked(types: ProblemTypes) -> Response {
    tracing::error!("a request handler panicked");
    problem(
        types,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error",
        "An internal error occurred; it has been logged.",
    )
}

async fn limit(State(hardening): State<Hardening>, request: Request, next: Next) -> Response {
    let Inner { limits, policy, .. } = &*hardening.inner;
    // A declared length is refused before anything is read (authentication
    // included); a body without one is bounded where it is read.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.body_limit as u64) {
        hardening.refused("too_large");
        return problem(
            policy.problem_types,
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!(
                "the request body is larger than the limit of {} bytes",
                limits.body_limit
            ),
        );
    }
    let unlimited = policy.unlimited_paths.contains(&request.uri().path());
    // Held until the response head is ready.
    let _permit = if unlimited {
        None
    } else {
        match hardening.inner.in_flight.try_acquire() {
            Ok(permit) => Some(permit),
            Err(_) => return overloaded(&hardening),
        }
    };
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            hardening.refused("timeout");
            tracing::warn!(
                timeout_s = limits.request_timeout.as_secs_f64(),
                "request timed out"
            );
            problem(
                policy.problem_types,
                StatusCode::SERVICE_UNAVAILABLE,
                "Request timed out",
                format!(
                    "the request took longer than the limit of {} s and was abandoned; {}",
                    limits.request_timeout.as_secs_f64(),
                    policy.timeout_advice
                ),
            )
        }
    }
}

fn overloaded(hardening: &Hardening) -> Response {
    hardening.refused("overloaded");
    let mut response = problem(
        hardening.inner.policy.problem_types,
        StatusCode::SERVICE_UNAVAILABLE,
        "Overloaded",
        "the server is handling as many requests as it allows; retry after the time in \
         Retry-After",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}
