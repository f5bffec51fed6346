//! Inventory: receipts and adjustments (commands on the Inventory
//! aggregate), stock now and at an instant, and stock history.

use aggregates::inventory::{Inventory, InventoryCommand, InventoryError};
use aggregates::stream_id;
use aggregates::values::Sku;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Json;
use chrono::{DateTime, Utc};
use event_store::AsOf;
use projections::read_models::current::{read_model_or_aggregate, Current};
use projections::read_models::stock::{self, HistoryKey, HistoryRange, StockView};

use super::paging::{decode, digits, encode, limit, more_follow, next_link, Paged, DEFAULT_LIMIT};

/// Digits of the instant in a history cursor (`HISTORY_AFTER_PATTERN`):
/// microseconds up to the year 2286.
const MAX_MICROS_DIGITS: usize = 16;
use super::{context, execute, last_event, to_i64};
use crate::dto::{
    AdjustmentRequest, AtQuery, HistoryQuery, ReceiptRequest, RequestFor, StockBody,
    StockChangeBody, WarehouseStockBody,
};
use crate::error::{ApiError, Problem};
use crate::extract::{CorrelationId, JsonBody, PathParams, QueryParams};
use crate::openapi::responses::{BadRequest, PayloadTooLarge, Unavailable, Unprocessable};
use crate::AppState;

fn parse_sku(sku: &str) -> Result<Sku, ApiError> {
    Sku::parse(sku).map_err(|error| ApiError::Unprocessable(error.to_string()))
}

fn unknown_sku(sku: &str) -> ApiError {
    ApiError::NotFound(format!("no stock was ever recorded for SKU {sku:?}"))
}

fn inventory_error(error: commands::ExecuteError<InventoryError>) -> ApiError {
    ApiError::from_execute(error, InventoryError::kind)
}

/// The body for an aggregate's state at `position`.
fn body_from_aggregate(sku: &str, inventory: &Inventory, position: i64) -> StockBody {
    let level = inventory.level();
    StockBody {
        sku: sku.to_owned(),
        on_hand: to_i64(level.on_hand),
        reserved: to_i64(level.reserved),
        available: to_i64(level.available),
        warehouses: inventory
            .warehouse_levels()
            .into_iter()
            .map(|(warehouse, level)| WarehouseStockBody {
                warehouse: warehouse.to_string(),
                on_hand: to_i64(level.on_hand),
                reserved: to_i64(level.reserved),
                available: to_i64(level.available),
            })
            .collect(),
        position,
    }
}

fn body_from_view(view: StockView) -> StockBody {
    StockBody {
        sku: view.sku,
        on_hand: view.on_hand,
        reserved: view.reserved,
        available: view.available,
        warehouses: view
            .warehouses
            .into_iter()
            .map(|level| WarehouseStockBody {
                warehouse: level.warehouse,
                on_hand: level.on_hand,
                reserved: level.reserved,
                available: level.available,
            })
            .collect(),
        position: view.position,
    }
}

/// Runs an inventory command and answers with the stock it left.
async fn run(
    state: &AppState,
    name: &'static str,
    sku: &Sku,
    command: InventoryCommand,
    correlation: CorrelationId,
) -> Result<(StatusCode, Json<StockBody>), ApiError> {
    let stream = stream_id::<Inventory>(sku);
    let executed = execute::<Inventory>(state, name, &stream, &command, &context(correlation))
        .await
        .map_err(inventory_error)?;
    let position = last_event(state, &stream, Some(executed.version))
        .await?
        .map_or(0, |event| event.position);
    Ok((
        StatusCode::CREATED,
        Json(body_from_aggregate(sku.as_str(), &executed.state, position)),
    ))
}

/// Receive stock into a warehouse.
#[utoipa::path(
    post, path = "/inventory/{sku}/receipts", tag = "inventory",
    params(("sku" = String, Path, description = "1-64 characters of [A-Za-z0-9._-]")),
    request_body = ReceiptRequest,
    responses(
        (status = 201, description = "The stock after the receipt", body = StockBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(sku = %sku))]
pub async fn receive(
    State(state): State<AppState>,
    correlation: CorrelationId,
    PathParams(sku): PathParams<String>,
    JsonBody(body): JsonBody<ReceiptRequest>,
) -> Result<(StatusCode, Json<StockBody>), ApiError> {
    let sku = parse_sku(&sku)?;
    let command = InventoryCommand::try_from(RequestFor(&sku, &body))?;
    run(&state, "receive_stock", &sku, command, correlation).await
}

/// Correct on-hand stock (damage, counts).
#[utoipa::path(
    post, path = "/inventory/{sku}/adjustments", tag = "inventory",
    params(("sku" = String, Path)),
    request_body = AdjustmentRequest,
    responses(
        (status = 201, description = "The stock after the adjustment", body = StockBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "Zero, or it would make stock negative", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(sku = %sku))]
pub async fn adjust(
    State(state): State<AppState>,
    correlation: CorrelationId,
    PathParams(sku): PathParams<String>,
    JsonBody(body): JsonBody<AdjustmentRequest>,
) -> Result<(StatusCode, Json<StockBody>), ApiError> {
    let sku = parse_sku(&sku)?;
    let command = InventoryCommand::try_from(RequestFor(&sku, &body))?;
    run(&state, "adjust_stock", &sku, command, correlation).await
}

/// The stock of a SKU now, or as it was at `at`.
#[utoipa::path(
    get, path = "/inventory/{sku}", tag = "inventory",
    params(
        ("sku" = String, Path),
        ("at" = Option<String>, Query, description = "RFC 3339 instant: the stock as it was then (zeros before the first event)"),
    ),
    responses(
        (status = 200, body = StockBody),
        (status = 400, response = BadRequest),
        (status = 404, description = "The SKU never had an event", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(sku = %sku))]
pub async fn stock_level(
    State(state): State<AppState>,
    PathParams(sku): PathParams<String>,
    QueryParams(query): QueryParams<AtQuery>,
) -> Result<Json<StockBody>, ApiError> {
    let Ok(parsed) = Sku::parse(sku.as_str()) else {
        return Err(unknown_sku(&sku));
    };
    let pool = state.store().pool();
    let stream = stream_id::<Inventory>(&parsed);
    if let Some(at) = query.at {
        if let Some(view) = stock::stock_level_at(pool, parsed.as_str(), at).await? {
            return Ok(Json(body_from_view(view)));
        }
        // The read model may not have the SKU yet: the stream decides.
        let loaded = state
            .executor()
            .load_as_of::<Inventory>(&stream, AsOf::Instant(at))
            .await
            .map_err(inventory_error)?;
        if state.store().stream_version(&stream).await? == 0 {
            return Err(unknown_sku(&sku));
        }
        let position = last_event(&state, &stream, Some(loaded.version))
            .await?
            .filter(|_| loaded.version > 0)
            .map_or(0, |event| event.position);
        return Ok(Json(body_from_aggregate(
            parsed.as_str(),
            &loaded.state,
            position,
        )));
    }
    // Read your writes: when the read model lags behind the stream, the
    // aggregate answers instead.
    let current = read_model_or_aggregate::<Inventory, _>(
        state.executor(),
        &stream,
        stock::stock_level(pool, parsed.as_str()),
    )
    .await
    .map_err(inventory_error)?;
    match current {
        None => Err(unknown_sku(&sku)),
        Some(Current::ReadModel(view)) => Ok(Json(body_from_view(view))),
        Some(Current::Aggregate(loaded)) => {
            let position = last_event(&state, &stream, Some(loaded.version))
                .await?
                .map_or(0, |event| event.position);
            Ok(Json(body_from_aggregate(
                parsed.as_str(),
                &loaded.state,
                position,
            )))
        }
    }
}

/// The opaque cursor of a history row: its key, the instant in
/// microseconds (PostgreSQL's precision) first.
fn encode_history_key(key: HistoryKey) -> String {
    encode(&[key.at.timestamp_micros(), key.transaction_id, key.position])
}

fn decode_history_key(after: Option<&str>) -> Result<Option<HistoryKey>, ApiError> {
    let Some(token) = after else {
        return Ok(None);
    };
    // The instant may be before 1970 (negative); the log cursor never is.
    let signed = token.strip_prefix('-');
    let (micros, rest) = signed.unwrap_or(token).split_once('_').unzip();
    micros
        .filter(|micros| micros.len() <= MAX_MICROS_DIGITS)
        .and_then(digits)
        .map(|micros| if signed.is_some() { -micros } else { micros })
        .zip(rest.and_then(decode::<2>))
        .and_then(|(micros, [transaction_id, position])| {
            Some(HistoryKey {
                at: DateTime::<Utc>::from_timestamp_micros(micros)?,
                transaction_id,
                position,
            })
        })
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "after must be the cursor of a `Link: rel=\"next\"` URL, got {token:?}"
            ))
        })
}

/// Every change of a SKU's stock, oldest first, a page at a time.
#[utoipa::path(
    get, path = "/inventory/{sku}/history", tag = "inventory",
    params(
        ("sku" = String, Path),
        ("from" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("to" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("after" = Option<String>, Query, description = "the opaque cursor of a `Link: rel=\"next\"` URL"),
        ("limit" = Option<i64>, Query, description = "1-1000, default 1000"),
    ),
    responses(
        (status = 200, body = [StockChangeBody], headers(("Link" = String, description = "rel=\"next\": the next page, when more changes follow"))),
        (status = 400, response = BadRequest),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(sku = %sku))]
pub async fn stock_history(
    State(state): State<AppState>,
    uri: Uri,
    PathParams(sku): PathParams<String>,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Paged<Vec<StockChangeBody>>, ApiError> {
    let Ok(parsed) = Sku::parse(sku.as_str()) else {
        return Err(unknown_sku(&sku));
    };
    let limit = limit(query.limit, DEFAULT_LIMIT)?;
    let range = HistoryRange {
        from: query.from,
        to: query.to,
        after: decode_history_key(query.after.as_deref())?,
        limit: limit + 1,
    };
    let mut changes = stock::stock_history(state.store().pool(), parsed.as_str(), range).await?;
    if changes.is_empty()
        && state
            .store()
            .stream_version(&stream_id::<Inventory>(&parsed))
            .await?
            == 0
    {
        return Err(unknown_sku(&sku));
    }
    let more = more_follow(&mut changes, limit);
    let next = changes
        .last()
        .filter(|_| more)
        .and_then(|last| next_link(&uri, "after", &encode_history_key(last.key())));
    Ok(Paged {
        body: changes
            .into_iter()
            .map(|change| StockChangeBody {
                at: change.at,
                position: change.position,
                on_hand: change.on_hand,
                reserved: change.reserved,
                available: change.available,
                event_type: change.event_type,
            })
            .collect(),
        next,
    })
}
