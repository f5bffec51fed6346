//! The request middleware: correlation id in and out, one tracing span per
//! request, HTTP latency metrics, and problem+json for error responses that
//! did not come from a handler (unknown method, panics).

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::correlation::Correlation;
use crate::error::{problem_response, PROBLEM_JSON};
use crate::metrics::{method_label, HTTP_REQUEST_DURATION};

pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let correlation = Correlation::take(&mut request);
    // The route template, never the raw path: labels stay a fixed set.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        %method,
        route = %route,
        correlation_id = %correlation.id,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    crate::trace_context::continue_trace(&span, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    let mut response = problem_for_bare_errors(response);
    let status = response.status();
    let elapsed = started.elapsed();
    span.record("status", status.as_u16());
    span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!("request answered with a server error");
        } else {
            tracing::info!("request done");
        }
    });
    metrics::histogram!(
        HTTP_REQUEST_DURATION,
        "method" => method_label(&method),
        "route" => route,
        "status" => status.as_u16().to_string(),
    )
    .record(elapsed.as_secs_f64());
    correlation.answer(&mut response);
    response
}

/// An error response that is not problem+json yet (axum's own 405, a
/// caught panic) gets a problem body for its status.
fn problem_for_bare_errors(response: Response<Body>) -> Response<Body> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let detail = match status.as_u16() {
        405 => "this method is not allowed on this path".to_owned(),
        500..=599 => "An internal error occurred; it has been logged.".to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut problem = problem_response(status, detail);
    if let Some(allow) = response.headers().get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, allow.clone());
    }
    problem
}
