//! The page and its static files, embedded in the binary at compile time:
//! `cargo run -- serve` needs nothing else installed, and nothing is
//! fetched from elsewhere (no CDN, no build step).

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ConsoleError;

const INDEX: &str = include_str!("../assets/index.html");

/// `(name, content type, contents)`.
const FILES: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../assets/console.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "bus.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/bus.js"),
    ),
    (
        "ops.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/ops.js"),
    ),
    (
        "order.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/order.js"),
    ),
    (
        "sku.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/sku.js"),
    ),
    (
        "log.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/log.js"),
    ),
];

/// Scripts and styles only from this origin, nothing inline, no framing:
/// an injected string can neither run nor phone home.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The console's one page; it shows the log-in form until a session exists.
pub async fn index() -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    with_security_headers(response)
}

pub async fn not_found() -> ConsoleError {
    ConsoleError::NotFound("no such console page".into())
}

pub async fn asset(Path(file): Path<String>) -> Result<Response, ConsoleError> {
    let (_, content_type, contents) = FILES
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ConsoleError::NotFound(format!("no console asset {file:?}")))?;
    let response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, *content_type),
            // Assets change with the binary; a reload after an upgrade
            // must not keep old scripts.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *contents,
    )
        .into_response();
    Ok(with_security_headers(response))
}
