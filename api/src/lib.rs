//! The HTTP API of orderstream (axum): inventory and order commands and
//! queries, audit of the event log, operations, health and metrics, as
//! specified in `API.md`.
//!
//! It is the only crate that knows HTTP. It turns requests into commands
//! through `commands::CommandExecutor` (each carrying the request's
//! correlation id), serves queries from the read models of `projections`
//! (falling back to the aggregates so that a client reads its own writes),
//! and turns every error into one problem+json shape ([`ApiError`]).
//!
//! Start reading at [`router`]; the middleware is in `observe.rs`, the
//! handlers in `routes/`.

mod correlation;
mod dto;
mod error;
mod extract;
mod idempotency;
mod metrics;
mod observe;
mod openapi;
mod routes;
mod state;
mod trace_context;

use std::future::Future;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

pub use dto::*;
pub use error::{ApiError, Problem, PROBLEM_JSON};
pub use openapi::ApiDoc;
pub use state::{ApiConfig, AppState};

use routes::{audit, inventory, operations, orders, service};

/// Every route of `API.md`, with the middleware: correlation id, tracing,
/// metrics, then `http_hardening`'s (the request timeout and the bound on
/// requests in flight, the 1 MiB body limit, panics as an opaque 500) and
/// problem+json for every error.
pub fn router(state: AppState) -> Router {
    let api = routes(state.clone());
    let console = operator_console::router(
        api.clone(),
        state.store().clone(),
        state.finance_url().map(str::to_owned),
    );
    state
        .hardening()
        .apply(api.nest("/console", console))
        .layer(axum::middleware::from_fn(observe::observe))
}

/// The API's routes with their state, without the middleware (which
/// [`router`] adds once, around them and the console that calls them).
fn routes(state: AppState) -> Router {
    Router::new()
        .route("/inventory/{sku}", get(inventory::stock_level))
        .route("/inventory/{sku}/receipts", post(inventory::receive))
        .route("/inventory/{sku}/adjustments", post(inventory::adjust))
        .route("/inventory/{sku}/history", get(inventory::stock_history))
        .route("/orders", post(orders::place_order))
        .route("/orders/{order_id}", get(orders::get_order))
        .route("/orders/{order_id}/cancel", post(orders::cancel_order))
        .route("/orders/{order_id}/ship", post(orders::ship_order))
        .route(
            "/orders/{order_id}/retry-payment",
            post(orders::retry_payment),
        )
        .route("/orders/{order_id}/history", get(orders::order_history))
        .route("/orders/{order_id}/timeline", get(orders::order_timeline))
        .route("/streams/{stream_id}", get(audit::read_stream))
        .route("/events", get(audit::read_log))
        .route("/subscriptions", get(operations::list_subscriptions))
        .route("/subscriptions/{name}/parked", get(operations::list_parked))
        .route(
            "/subscriptions/{name}/parked/replay",
            post(operations::replay_parked),
        )
        .route(
            "/subscriptions/{name}/parked/{position}/replay",
            post(operations::replay_parked_event),
        )
        .route(
            "/subscriptions/{name}/requests/{id}",
            get(operations::request_status),
        )
        .route(
            "/subscriptions/{name}/reset",
            post(operations::reset_subscription),
        )
        .route(
            "/projections/{name}/rebuild",
            post(operations::rebuild_projection),
        )
        .route("/health", get(service::health))
        .route("/ready", get(service::ready))
        .route("/metrics", get(service::metrics))
        .route("/openapi.json", get(service::openapi))
        .route("/asyncapi.json", get(service::asyncapi))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

/// Serves the API on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish for at most the configured grace period,
/// closes every connection and returns. Expired idempotency keys are
/// deleted meanwhile.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _cleanup = idempotency::start_cleanup(&state);
    let hardening = state.hardening().clone();
    http_hardening::serve(listener, router(state), hardening.limits(), shutdown).await
}

#[cfg(test)]
mod tests {
    //! The router without a database (a lazy pool that is never used):
    //! the paths that answer before any query.

    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use commands::{CommandExecutor, ExecutorOptions};
    use event_store::EventStore;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    fn app(admin_token: Option<&str>) -> Router {
        router(state(ApiConfig {
            admin_token: admin_token.map(str::to_owned),
            ..ApiConfig::default()
        }))
    }

    fn state(config: ApiConfig) -> AppState {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .expect("a lazy pool parses its URL");
        let executor =
            CommandExecutor::new(EventStore::from_pool(pool), ExecutorOptions::default());
        AppState::new(executor, config)
    }

    /// A request whose body never arrives: it holds its handler until the
    /// request timeout.
    fn stalled_post(path: &str) -> Request<Body> {
        let never = futures::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
        post(path, Body::from_stream(never))
    }

    async fn call(app: Router, request: Request<Body>) -> (StatusCode, String, serde_json::Value) {
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(response.headers().contains_key("x-correlation-id"));
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, content_type, body)
    }

    fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .expect("request")
    }

    #[tokio::test]
    async fn health_answers_without_a_database() {
        let (status, _, body) = call(
            app(None),
            Request::get("/health")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
    }

    #[tokio::test]
    async fn invalid_json_is_a_400_problem() {
        let (status, content_type, body) = call(app(None), post("/orders", "{")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type, PROBLEM_JSON);
        assert_eq!(body["status"], 400);
    }

    #[tokio::test]
    async fn an_invalid_order_is_refused_before_any_query() {
        let order = r#"{"customer_id": "c", "currency": "XXX", "lines": [{"sku": "A", "quantity": 1, "unit_price": "1"}]}"#;
        let (status, content_type, _) = call(app(None), post("/orders", order)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(content_type, PROBLEM_JSON);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413() {
        let (status, content_type, _) = call(
            app(None),
            post("/orders", vec![b' '; extract::BODY_LIMIT + 1]),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(content_type, PROBLEM_JSON);
    }

    #[tokio::test]
    async fn admin_endpoints_check_the_token_before_anything_else() {
        let request = || Request::get("/subscriptions");
        let (status, _, body) =
            call(app(None), request().body(Body::empty()).expect("request")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("ORDERSTREAM_ADMIN_TOKEN"));
        let (status, _, _) = call(
            app(Some("s3cret")),
            request().body(Body::empty()).expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let wrong = request()
            .header(header::AUTHORIZATION, "Bearer s3cret-not")
            .body(Body::empty())
            .expect("request");
        let (status, _, _) = call(app(Some("s3cret")), wrong).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn a_request_over_the_timeout_is_a_503_problem() {
        let app = router(state(ApiConfig {
            request_timeout: std::time::Duration::from_millis(200),
            ..ApiConfig::default()
        }));
        let (status, content_type, body) = call(app, stalled_post("/orders")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type, PROBLEM_JSON);
        assert!(body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("longer than the limit of 0.2 s"));
    }

    #[tokio::test]
    async fn requests_over_the_limit_are_shed_with_retry_after() {
        let state = state(ApiConfig {
            max_concurrent_requests: 1,
            ..ApiConfig::default()
        });
        let app = router(state.clone());
        let holder = tokio::spawn(app.clone().oneshot(stalled_post("/orders")));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while state.hardening().available_permits() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the first request never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let response = app
            .clone()
            .oneshot(stalled_post("/orders"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        // Probes are answered whatever the load.
        let (status, _, _) = call(
            app,
            Request::get("/health")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        holder.abort();
    }

    #[tokio::test]
    async fn the_openapi_document_is_generated() {
        let (status, _, body) = call(
            app(None),
            Request::get("/openapi.json")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["paths"]["/orders"]["post"].is_object());
        assert!(body["components"]["securitySchemes"]["admin"].is_object());
        assert!(body["paths"]["/asyncapi.json"]["get"].is_object());
    }

    #[tokio::test]
    async fn the_asyncapi_document_of_the_contracts_is_served() {
        let (status, _, body) = call(
            app(None),
            Request::get("/asyncapi.json")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["asyncapi"], "3.0.0");
        for (name, _) in contracts::CONTRACTS {
            assert!(body["channels"][*name].is_object(), "{name} in {body}");
        }
    }
}
