//! Orders, the reads: an order (now or as of an instant), its history (its
//! stream's events) and its timeline (every event of its flows), the lists
//! paged as every list is (`paging.rs`).

use aggregates::order::Order;
use aggregates::stream_id;
use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use event_store::{AsOf, StreamRead};

use super::order_view::{body_from_aggregate, current_order};
use super::orders::{order_error, parse_order_id, unknown_order};
use super::paging::{
    decode_log_cursor, encode_log_cursor, limit, more_follow, next_link, Paged, DEFAULT_LIMIT,
};
use crate::dto::{AtQuery, EventBody, OrderBody, PageQuery, StreamPageQuery};
use crate::error::{ApiError, Problem};
use crate::extract::{PathParams, QueryParams};
use crate::openapi::responses::{BadRequest, Unavailable};
use crate::AppState;

/// An order, now or as it was at `at`.
#[utoipa::path(
    get, path = "/orders/{order_id}", tag = "orders",
    params(
        ("order_id" = Uuid, Path),
        ("at" = Option<String>, Query, description = "RFC 3339 instant: the order as it was then"),
    ),
    responses(
        (status = 200, body = OrderBody),
        (status = 400, response = BadRequest),
        (status = 404, description = "Unknown order (or not yet placed at `at`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
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
        return current_order(&state, order_id).await.map(Json);
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

/// The order stream's events, oldest first, a page at a time.
#[utoipa::path(
    get, path = "/orders/{order_id}/history", tag = "orders",
    params(
        ("order_id" = Uuid, Path),
        ("from_version" = Option<i64>, Query, description = "first version returned (default 1); the `Link` header carries the next page's"),
        ("limit" = Option<i64>, Query, description = "1-1000, default 1000"),
    ),
    responses(
        (status = 200, body = [EventBody], headers(("Link" = String, description = "rel=\"next\": the next page, when more events follow"))),
        (status = 400, response = BadRequest),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn order_history(
    State(state): State<AppState>,
    uri: Uri,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<StreamPageQuery>,
) -> Result<Paged<Vec<EventBody>>, ApiError> {
    let order_id = parse_order_id(&id)?;
    let limit = limit(query.limit, DEFAULT_LIMIT)?;
    let from_version = match query.from_version {
        None => 1,
        Some(version) if version >= 0 => version.max(1),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "from_version must not be negative".into(),
            ))
        }
    };
    let stream = stream_id::<Order>(order_id);
    let mut events = state
        .store()
        .read_stream(
            &stream,
            StreamRead::forward_from(from_version).limit(limit + 1),
        )
        .await?;
    // An empty page past the end of an existing order is a page, not a 404.
    if events.is_empty() && state.store().stream_version(&stream).await? == 0 {
        return Err(unknown_order(&id));
    }
    let more = more_follow(&mut events, limit);
    let next = events
        .last()
        .filter(|_| more)
        .and_then(|last| next_link(&uri, "from_version", &(last.stream_version + 1).to_string()));
    Ok(Paged {
        body: events.into_iter().map(EventBody::from).collect(),
        next,
    })
}

/// Every event, across all streams, sharing a correlation id with an event
/// of the order, in log order: the whole choreography. Later requests on
/// the order (cancel, ship, retry payment) start flows of their own
/// correlation ids; those are included too, so the timeline tells the
/// order's whole story.
#[utoipa::path(
    get, path = "/orders/{order_id}/timeline", tag = "orders",
    params(
        ("order_id" = Uuid, Path),
        ("after" = Option<String>, Query, description = "the opaque cursor of a `Link: rel=\"next\"` URL"),
        ("limit" = Option<i64>, Query, description = "1-1000, default 1000"),
    ),
    responses(
        (status = 200, body = [EventBody], headers(("Link" = String, description = "rel=\"next\": the next page, when more events follow"))),
        (status = 400, response = BadRequest),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn order_timeline(
    State(state): State<AppState>,
    uri: Uri,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Paged<Vec<EventBody>>, ApiError> {
    let order_id = parse_order_id(&id)?;
    let limit = limit(query.limit, DEFAULT_LIMIT)?;
    let after = decode_log_cursor(query.after.as_deref())?;
    let stream = stream_id::<Order>(order_id);
    let page = state.store().read_flow(&stream, after, limit).await?;
    if page.events.is_empty() && state.store().stream_version(&stream).await? == 0 {
        return Err(unknown_order(&id));
    }
    let next = page
        .next
        .and_then(|cursor| next_link(&uri, "after", &encode_log_cursor(cursor)));
    Ok(Paged {
        body: page.events.into_iter().map(EventBody::from).collect(),
        next,
    })
}
