//! Orders, the commands: place (with `Idempotency-Key`), cancel, ship and
//! retry payment. The reads (the order, its history and timeline) are in
//! `order_queries.rs`, re-exported here so that the router and the OpenAPI
//! document name every order endpoint `orders::...`.

use aggregates::order::{Order, OrderCommand, OrderError, PlaceOrder};
use aggregates::stream_id;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use commands::{ExecuteError, Executed};
use uuid::Uuid;

use super::order_view::{body_from_aggregate, current_order, order_body};
use super::{context, execute, measured};
use crate::dto::{CancelRequest, OrderBody, PlaceOrderRequest, RequestFor};
use crate::error::{ApiError, Problem};
use crate::extract::{CorrelationId, JsonBody, OptionalJsonBody, PathParams};
use crate::idempotency::{self, Claim};
use crate::openapi::responses::{BadRequest, PayloadTooLarge, Unavailable, Unprocessable};
use crate::AppState;

pub use super::order_queries::*;

pub(super) fn order_error(error: ExecuteError<OrderError>) -> ApiError {
    ApiError::from_execute(error, OrderError::kind)
}

pub(super) fn unknown_order(id: &str) -> ApiError {
    ApiError::NotFound(format!("no order {id:?}"))
}

pub(super) fn parse_order_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| unknown_order(id))
}

/// Place an order.
#[utoipa::path(
    post, path = "/orders", tag = "orders",
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeats with the same key and body return the same order; another body is 409")),
    request_body = PlaceOrderRequest,
    responses(
        (status = 201, description = "Placed", body = OrderBody, headers(("Location" = String))),
        (status = 200, description = "A repeat of an idempotent request: the order it placed", body = OrderBody),
        (status = 400, response = BadRequest),
        (status = 409, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn place_order(
    State(state): State<AppState>,
    correlation: CorrelationId,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value.to_str().map_err(|_| {
                ApiError::BadRequest("Idempotency-Key must be visible ASCII".into())
            })?;
            idempotency::validate_key(key)?;
            Some(key.to_owned())
        }
    };
    // Checked before the key is claimed: an invalid request does not use
    // up its key. A key then names the order id.
    let mut place = PlaceOrder::try_from(RequestFor(Uuid::new_v4(), &request))?;
    let claim = match &key {
        Some(key) => {
            let hash = idempotency::request_hash(&request)?;
            let ttl = state.idempotency_ttl();
            let claimed = idempotency::claim(state.store().pool(), key, &hash, ttl).await?;
            place.order_id = claimed.order_id;
            Some(claimed.claim)
        }
        None => None,
    };
    let order_id = place.order_id;
    let stream = stream_id::<Order>(order_id);
    let command_context = context(correlation);
    // The id is new (random, or the key's, claimed above), so the
    // order is placed without reading its stream first.
    let placed = measured(
        "place_order",
        state.executor().execute_new::<Order>(
            &stream,
            &OrderCommand::Place(place),
            &command_context,
        ),
    )
    .await;
    let (status, body) = match placed {
        Ok(executed) => (
            StatusCode::CREATED,
            placed_body(&executed, &command_context.correlation_id),
        ),
        // A repeat of an idempotent request: the order exists already.
        Err(ExecuteError::Domain(OrderError::AlreadyPlaced)) if claim.is_some() => {
            (StatusCode::OK, None)
        }
        Err(error) => return Err(order_error(error)),
    };
    tracing::info!(%order_id, repeat = claim == Some(Claim::Repeat), "order placed");
    let body = match body {
        Some(body) => body,
        None => current_order(&state, order_id).await?,
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/orders/{order_id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The body of an order just placed, from the command's own outcome: no
/// read model can have it yet, and reading it back would cost more than
/// placing it.
fn placed_body(
    executed: &Executed<Order>,
    correlation_id: &event_store::CorrelationId,
) -> Option<OrderBody> {
    let placed = executed.state.placed.as_ref()?;
    let recorded_at = executed.appended.last()?.recorded_at;
    Some(order_body(
        placed,
        executed.version,
        Some(correlation_id.clone()),
        recorded_at,
        recorded_at,
    ))
}

/// Runs an order command and answers with the order after it.
async fn order_command(
    state: &AppState,
    name: &'static str,
    id: &str,
    command: OrderCommand,
    correlation: CorrelationId,
) -> Result<OrderBody, ApiError> {
    let order_id = parse_order_id(id)?;
    let stream = stream_id::<Order>(order_id);
    let executed = execute::<Order>(state, name, &stream, &command, &context(correlation))
        .await
        .map_err(order_error)?;
    body_from_aggregate(state, &stream, &executed.state, executed.version, None)
        .await?
        .ok_or_else(|| unknown_order(id))
}

/// Cancel an order (while pending or reserved); releases its reservation.
#[utoipa::path(
    post, path = "/orders/{order_id}/cancel", tag = "orders",
    params(("order_id" = Uuid, Path)),
    request_body(content = Option<CancelRequest>, description = "Optional: `{\"reason\"}`; without one, \"cancelled on request\""),
    responses(
        (status = 200, body = OrderBody),
        (status = 400, response = BadRequest),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already shipped, paid, rejected...", body = Problem, content_type = "application/problem+json"),
        (status = 422, response = Unprocessable),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn cancel_order(
    State(state): State<AppState>,
    correlation: CorrelationId,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<CancelRequest>,
) -> Result<Json<OrderBody>, ApiError> {
    let reason = crate::dto::reason(body.as_ref().and_then(|body| body.reason.as_deref()))?
        .filter(|reason| !reason.trim().is_empty())
        .unwrap_or_else(|| "cancelled on request".to_owned());
    order_command(
        &state,
        "cancel_order",
        &id,
        OrderCommand::Cancel { reason },
        correlation,
    )
    .await
    .map(Json)
}

/// Ship a reserved order (manual fulfilment): the order is shipped and its
/// reservation committed, in one atomic append. Shipping an order already
/// shipped changes nothing and answers the same.
#[utoipa::path(
    post, path = "/orders/{order_id}/ship", tag = "orders",
    params(("order_id" = Uuid, Path)),
    responses(
        (status = 200, body = OrderBody),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not reserved", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn ship_order(
    State(state): State<AppState>,
    correlation: CorrelationId,
    PathParams(id): PathParams<String>,
) -> Result<Json<OrderBody>, ApiError> {
    let order_id = parse_order_id(&id)?;
    let started = std::time::Instant::now();
    let shipped = state
        .executor()
        .ship_order(order_id, &context(correlation))
        .await;
    let (outcome, events) = match &shipped {
        Ok(decision) => (
            "ok",
            decision.streams().iter().map(|s| s.events.len()).sum(),
        ),
        Err(ExecuteError::Domain(_)) => ("refused", 0),
        Err(_) => ("error", 0),
    };
    crate::metrics::command_executed("ship_order", outcome, started.elapsed(), events);
    // Shipping a shipped order is a no-op: it answers 200 with the order,
    // like the first time.
    shipped.map_err(order_error)?;
    current_order(&state, order_id).await.map(Json)
}

/// Ask for another payment attempt of an order whose payment failed.
#[utoipa::path(
    post, path = "/orders/{order_id}/retry-payment", tag = "orders",
    params(("order_id" = Uuid, Path)),
    responses(
        (status = 202, body = OrderBody),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order's payment has not failed", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn retry_payment(
    State(state): State<AppState>,
    correlation: CorrelationId,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<OrderBody>), ApiError> {
    order_command(
        &state,
        "retry_payment",
        &id,
        OrderCommand::RetryPayment,
        correlation,
    )
    .await
    .map(|body| (StatusCode::ACCEPTED, Json(body)))
}
