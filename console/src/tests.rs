//! The console's router against a stand-in API (no database): the page,
//! its assets, log-in, the session cookie, the CSRF check and the proxy.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

const TOKEN: &str = "s3cret";

/// Answers like the API's admin endpoints: the token or 403.
fn admin(headers: &HeaderMap) -> Result<(), StatusCode> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    if bearer == Some("Bearer s3cret") {
        Ok(())
    } else {
        Err(StatusCode::FORBIDDEN)
    }
}

fn console() -> Router {
    let api = Router::new()
        .route(
            "/subscriptions",
            get(|headers: HeaderMap| async move {
                match admin(&headers) {
                    Ok(()) => (StatusCode::OK, "[]").into_response(),
                    Err(status) => {
                        error::problem(status, "the bearer token is not the admin token".into())
                    }
                }
            }),
        )
        .route(
            "/projections/{name}/rebuild",
            post(|headers: HeaderMap| async move {
                match admin(&headers) {
                    Ok(()) => StatusCode::ACCEPTED.into_response(),
                    Err(status) => status.into_response(),
                }
            }),
        );
    // Never connected: these paths answer before any query.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("a lazy pool parses its URL");
    Router::new().nest("/console", router(api, EventStore::from_pool(pool), None))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn call(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn request(method: &str, path: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(path)
}

async fn log_in(app: &Router) -> (String, String) {
    let answer = call(
        app,
        request("POST", "/console/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!("{{\"token\": \"{TOKEN}\"}}")))
            .expect("request"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let cookie = answer.headers[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let csrf: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    (cookie, csrf["csrf"].as_str().expect("csrf").to_owned())
}

#[tokio::test]
async fn the_page_and_every_asset_are_embedded_and_locked_down() {
    let app = console();
    let page = call(
        &app,
        request("GET", "/console")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains("<script type=\"module\" src=\"/console/assets/app.js\">"));
    let policy = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp");
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
    for file in [
        "app.js",
        "bus.js",
        "ops.js",
        "order.js",
        "sku.js",
        "log.js",
        "console.css",
    ] {
        let asset = call(
            &app,
            request("GET", &format!("/console/assets/{file}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(asset.status, StatusCode::OK, "{file}");
        assert!(asset.body.len() > 100, "{file} is embedded");
    }
    let missing = call(
        &app,
        request("GET", "/console/assets/nope.js")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
}

#[tokio::test]
async fn without_a_session_nothing_but_the_page_answers() {
    let app = console();
    for path in [
        "/console/api/subscriptions",
        "/console/live",
        "/console/data/log",
        "/console/data/sku/A/series",
        "/console/session",
    ] {
        let answer = call(
            &app,
            request("GET", path).body(Body::empty()).expect("request"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            answer.headers[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn log_in_takes_only_what_the_api_accepts_as_json() {
    let app = console();
    let wrong = call(
        &app,
        request("POST", "/console/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"token\": \"guess\"}"))
            .expect("request"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("not the admin token"), "{}", wrong.body);
    assert!(!wrong.headers.contains_key(header::SET_COOKIE));
    // A form post (what a cross-site page could send) is refused.
    let form = call(
        &app,
        request("POST", "/console/session")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={TOKEN}")))
            .expect("request"),
    )
    .await;
    assert_eq!(form.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_session_reaches_the_api_with_its_token_and_changes_state_only_with_its_csrf_token() {
    let app = console();
    let (cookie, csrf) = log_in(&app).await;
    let read = call(
        &app,
        request("GET", "/console/api/subscriptions")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(
        read.status,
        StatusCode::OK,
        "the API saw the session's token"
    );
    assert_eq!(read.body, "[]");
    let rebuild = |csrf: Option<&str>| {
        let mut builder = request("POST", "/console/api/projections/orders/rebuild")
            .header(header::COOKIE, &cookie);
        if let Some(csrf) = csrf {
            builder = builder.header(CSRF_HEADER, csrf);
        }
        builder.body(Body::empty()).expect("request")
    };
    assert_eq!(
        call(&app, rebuild(None)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, rebuild(Some("forged"))).await.status,
        StatusCode::FORBIDDEN
    );
    let done = call(&app, rebuild(Some(&csrf))).await;
    assert_eq!(done.status, StatusCode::ACCEPTED);
    assert_eq!(done.headers["x-console-action"], "1");
    // Logging out needs the CSRF token too, and ends the session.
    let out = call(
        &app,
        request("DELETE", "/console/session")
            .header(header::COOKIE, &cookie)
            .header(CSRF_HEADER, &csrf)
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = call(
        &app,
        request("GET", "/console/api/subscriptions")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}
