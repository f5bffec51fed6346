//! `/console/api/...`: the browser's way to the API. The request goes to
//! the API's router with the session's token as its bearer token, so the
//! console can do exactly what that token can do through the API, no more.
//! A request that may change state needs the session's CSRF token too.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, Method};
use axum::response::Response;

use crate::api_client::BODY_LIMIT;
use crate::error::ConsoleError;
use crate::ConsoleState;

/// The number of an operator action, as the live overview counts them.
pub const ACTION_HEADER: HeaderName = HeaderName::from_static("x-console-action");

/// Request headers the API reads, passed on; cookies and the CSRF token
/// stay in the console.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "idempotency-key",
    "x-correlation-id",
];

pub async fn forward(
    State(state): State<ConsoleState>,
    request: Request,
) -> Result<Response, ConsoleError> {
    let (parts, body) = request.into_parts();
    let safe = matches!(parts.method, Method::GET | Method::HEAD);
    let session = if safe {
        state.sessions.of(&parts.headers)?.1
    } else {
        state.sessions.of_state_changing(&parts.headers)?
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|value| value.as_str())
        .unwrap_or("/");
    // Nested under /console, the router sees the path from /api on.
    let target = path_and_query
        .strip_prefix("/console/api")
        .or_else(|| path_and_query.strip_prefix("/api"))
        .filter(|rest| rest.starts_with('/'))
        .ok_or_else(|| ConsoleError::NotFound("no such console path".into()))?;
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ConsoleError::PayloadTooLarge)?;
    let mut builder = axum::http::Request::builder()
        .method(parts.method.clone())
        .uri(target);
    for name in FORWARDED_REQUEST_HEADERS {
        for value in parts.headers.get_all(*name) {
            builder = builder.header(*name, value);
        }
    }
    let inner = builder
        .body(Body::from(body))
        .map_err(|_| ConsoleError::BadRequest(format!("not a valid API path: {target:?}")))?;
    let mut response = state.api.send(inner, Some(&session.token)).await?;
    if !safe && response.status().is_success() {
        // An operator action: the live views look again at once rather
        // than at their next idle refresh. The page waits for an overview
        // that has seen this action before it reads its outcome there.
        let action = state.live.nudge();
        response
            .headers_mut()
            .insert(ACTION_HEADER, header::HeaderValue::from(action));
    }
    Ok(no_store(response))
}

/// Answers about operations must not be cached by the browser.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
