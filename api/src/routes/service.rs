//! Service endpoints: liveness, readiness, Prometheus metrics, OpenAPI,
//! and the AsyncAPI document of the integration events.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use utoipa::OpenApi;

use crate::dto::HealthBody;
use crate::error::{ApiError, Problem};
use crate::AppState;

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "service", responses((status = 200, body = HealthBody)))]
pub async fn health() -> Json<HealthBody> {
    Json(HealthBody {
        status: "ok".into(),
    })
}

/// The database is reachable and every migration is applied.
#[utoipa::path(
    get, path = "/ready", tag = "service",
    responses(
        (status = 200, body = HealthBody),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<HealthBody>, ApiError> {
    let missing = state
        .store()
        .pending_migrations()
        .await
        .map_err(|error| ApiError::Unavailable(error.into()))?;
    if !missing.is_empty() {
        return Err(ApiError::Unavailable(
            format!("migrations not applied: {missing:?}").into(),
        ));
    }
    Ok(Json(HealthBody {
        status: "ready".into(),
    }))
}

/// Prometheus text: HTTP and command latency, events appended, log head,
/// subscription lag and parked events.
#[utoipa::path(
    get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    crate::metrics::refresh_database_gauges(state.store()).await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(),
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "service", responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json")))]
pub async fn openapi() -> impl IntoResponse {
    Json(crate::openapi::ApiDoc::openapi())
}

/// The AsyncAPI 3.0.0 document of the integration events orderstream
/// publishes to RabbitMQ (channels, message headers and payload schemas).
#[utoipa::path(get, path = "/asyncapi.json", tag = "service", responses((status = 200, description = "AsyncAPI 3.0.0 document", content_type = "application/json")))]
pub async fn asyncapi() -> impl IntoResponse {
    Json(contracts::asyncapi_document(env!("CARGO_PKG_VERSION")))
}
