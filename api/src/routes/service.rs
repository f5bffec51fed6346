//! Service endpoints: liveness, readiness, Prometheus metrics, OpenAPI.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use projections::operations;
use utoipa::OpenApi;

use crate::dto::HealthBody;
use crate::error::{ApiError, Problem};
use crate::metrics::{LOG_HEAD, SUBSCRIPTION_LAG, SUBSCRIPTION_PARKED};
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
    // Gauges read from the database at scrape time; a database that cannot
    // be reached leaves them as they were rather than failing the scrape.
    match state.store().head().await {
        Ok(head) => metrics::gauge!(LOG_HEAD).set(head.position as f64),
        Err(error) => tracing::warn!(%error, "metrics: could not read the log head"),
    }
    match operations::subscription_statuses(state.store()).await {
        Ok(statuses) => {
            for status in statuses {
                metrics::gauge!(SUBSCRIPTION_LAG, "subscription" => status.name.clone())
                    .set(status.lag as f64);
                metrics::gauge!(SUBSCRIPTION_PARKED, "subscription" => status.name)
                    .set(status.parked as f64);
            }
        }
        Err(error) => tracing::warn!(%error, "metrics: could not read subscription status"),
    }
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
