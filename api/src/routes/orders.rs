//! Orders: place (with `Idempotency-Key`), read (now or as of an instant),
//! cancel, ship, retry payment, and the order's history and timeline.

use std::collections::BTreeMap;
use std::str::FromStr;

use aggregates::order::{Order, OrderCommand, OrderError, OrderLine, PlaceOrder, MAX_LINES};
use aggregates::values::{Currency, PaymentMethod, Sku};
use aggregates::{stream_id, Aggregate};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use commands::{ExecuteError, Executed};
use event_store::{AsOf, LogCursor, RecordedEvent, StreamRead};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::order_view::{body_from_aggregate, current_order, order_body};
use super::{context, execute, measured};
use crate::dto::{AtQuery, CancelRequest, EventBody, OrderBody, PlaceOrderRequest};
use crate::error::{ApiError, Problem};
use crate::extract::{CorrelationId, JsonBody, OptionalJsonBody, PathParams, QueryParams};
use crate::idempotency::{self, Claim};
use crate::AppState;

/// Events read per page when a whole stream or flow is returned.
const PAGE: i64 = 1000;

pub(super) fn order_error(error: ExecuteError<OrderError>) -> ApiError {
    ApiError::from_execute(error, OrderError::kind)
}

pub(super) fn unknown_order(id: &str) -> ApiError {
    ApiError::NotFound(format!("no order {id:?}"))
}

fn parse_order_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| unknown_order(id))
}

/// The request as a domain command, checked by the aggregate's own rules
/// (without I/O), so that nothing is stored for an invalid request.
fn place_command(order_id: Uuid, request: &PlaceOrderRequest) -> Result<PlaceOrder, ApiError> {
    let invalid = ApiError::Unprocessable;
    if request.lines.len() > MAX_LINES {
        return Err(invalid(format!(
            "an order has at most {MAX_LINES} lines, got {}",
            request.lines.len()
        )));
    }
    let currency = Currency::from_str(&request.currency)
        .map_err(|error| invalid(format!("currency: {error}")))?;
    let payment_method = match &request.payment_method {
        None => PaymentMethod::default(),
        Some(method) => PaymentMethod::from_str(method)
            .map_err(|error| invalid(format!("payment_method: {error}")))?,
    };
    let lines = request
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            let sku = Sku::parse(line.sku.as_str())
                .map_err(|error| invalid(format!("lines[{index}].sku: {error}")))?;
            let quantity = u32::try_from(line.quantity)
                .ok()
                .filter(|quantity| *quantity > 0)
                .ok_or_else(|| {
                    invalid(format!(
                        "lines[{index}].quantity must be a positive integer up to {}, got {}",
                        u32::MAX,
                        line.quantity
                    ))
                })?;
            let unit_price = Decimal::from_str_exact(line.unit_price.trim()).map_err(|_| {
                invalid(format!(
                    "lines[{index}].unit_price must be a decimal string such as \"9.99\", got {:?}",
                    line.unit_price
                ))
            })?;
            Ok(OrderLine {
                sku,
                quantity,
                unit_price,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let place = PlaceOrder {
        order_id,
        customer_id: request.customer_id.clone(),
        currency,
        lines,
        payment_method,
    };
    Order::default()
        .decide(&OrderCommand::Place(place.clone()))
        .map_err(|error| ApiError::from_domain(error.kind(), error.to_string()))?;
    Ok(place)
}

/// Place an order.
#[utoipa::path(
    post, path = "/orders", tag = "orders",
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeats with the same key and body return the same order; another body is 409")),
    request_body = PlaceOrderRequest,
    responses(
        (status = 201, description = "Placed", body = OrderBody, headers(("Location" = String))),
        (status = 200, description = "A repeat of an idempotent request: the order it placed", body = OrderBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
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
    let mut place = place_command(Uuid::new_v4(), &request)?;
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
        None => current_order(&state, order_id, None).await?,
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

/// An order, now or as it was at `at`.
#[utoipa::path(
    get, path = "/orders/{order_id}", tag = "orders",
    params(
        ("order_id" = Uuid, Path),
        ("at" = Option<String>, Query, description = "RFC 3339 instant: the order as it was then"),
    ),
    responses(
        (status = 200, body = OrderBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown order (or not yet placed at `at`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn get_order(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<AtQuery>,
) -> Result<Json<OrderBody>, ApiError> {
    let order_id = parse_order_id(&id)?;
    let Some(at) = query.at else {
        return current_order(&state, order_id, None).await.map(Json);
    };
    let stream = stream_id::<Order>(order_id);
    let as_of = AsOf::Instant(at);
    let loaded = state
        .executor()
        .load_as_of::<Order>(&stream, as_of)
        .await
        .map_err(order_error)?;
    body_from_aggregate(&state, &stream, &loaded.state, loaded.version, Some(as_of))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("order {id} did not exist at {at}")))
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
    request_body(content = CancelRequest, description = "Optional"),
    responses(
        (status = 200, body = OrderBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already shipped, paid, rejected...", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn cancel_order(
    State(state): State<AppState>,
    correlation: CorrelationId,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<CancelRequest>,
) -> Result<Json<OrderBody>, ApiError> {
    let reason = body
        .and_then(|body| body.reason)
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
    current_order(&state, order_id, None).await.map(Json)
}

/// Ask for another payment attempt of an order whose payment failed.
#[utoipa::path(
    post, path = "/orders/{order_id}/retry-payment", tag = "orders",
    params(("order_id" = Uuid, Path)),
    responses(
        (status = 202, body = OrderBody),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order's payment has not failed", body = Problem, content_type = "application/problem+json"),
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

/// Reads a whole stream, page by page.
async fn whole_stream(state: &AppState, stream: &str) -> Result<Vec<RecordedEvent>, ApiError> {
    let mut events = Vec::new();
    loop {
        let next = events.len() as i64 + 1;
        let page = state
            .store()
            .read_stream(stream, StreamRead::forward_from(next).limit(PAGE))
            .await?;
        let full = page.len() as i64 == PAGE;
        events.extend(page);
        if !full {
            return Ok(events);
        }
    }
}

/// The order stream's events, oldest first.
#[utoipa::path(
    get, path = "/orders/{order_id}/history", tag = "orders",
    params(("order_id" = Uuid, Path)),
    responses(
        (status = 200, body = [EventBody]),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn order_history(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<EventBody>>, ApiError> {
    let order_id = parse_order_id(&id)?;
    let events = whole_stream(&state, &stream_id::<Order>(order_id)).await?;
    if events.is_empty() {
        return Err(unknown_order(&id));
    }
    Ok(Json(events.into_iter().map(EventBody::from).collect()))
}

/// Every event, across all streams, sharing the order's correlation id, in
/// global order: the whole choreography. Later requests on the order
/// (cancel, ship, retry payment) start flows of their own correlation ids;
/// those are included too, so the timeline tells the order's whole story.
#[utoipa::path(
    get, path = "/orders/{order_id}/timeline", tag = "orders",
    params(("order_id" = Uuid, Path)),
    responses(
        (status = 200, body = [EventBody]),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn order_timeline(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<EventBody>>, ApiError> {
    let order_id = parse_order_id(&id)?;
    let order_events = whole_stream(&state, &stream_id::<Order>(order_id)).await?;
    if order_events.is_empty() {
        return Err(unknown_order(&id));
    }
    let mut correlations: Vec<&event_store::CorrelationId> = Vec::new();
    for correlation in order_events
        .iter()
        .filter_map(|event| event.correlation_id.as_ref())
    {
        if !correlations.contains(&correlation) {
            correlations.push(correlation);
        }
    }
    let mut events: BTreeMap<LogCursor, RecordedEvent> = BTreeMap::new();
    for correlation_id in correlations {
        let mut after = LogCursor::START;
        loop {
            let page = state
                .store()
                .read_correlation(correlation_id, after, PAGE)
                .await?;
            let full = page.len() as i64 == PAGE;
            if let Some(last) = page.last() {
                after = last.cursor();
            }
            events.extend(page.into_iter().map(|event| (event.cursor(), event)));
            if !full {
                break;
            }
        }
    }
    // The log only shows settled transactions: an order event that is not
    // visible there yet is still part of the order's story.
    for event in order_events {
        events.entry(event.cursor()).or_insert(event);
    }
    Ok(Json(events.into_values().map(EventBody::from).collect()))
}
