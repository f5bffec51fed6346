//! Audit and replay: one stream (from a version, either direction, as of
//! an instant) and the global log after a position.

use axum::extract::State;
use axum::Json;
use event_store::{AsOf, Direction, StreamRead};

use crate::dto::{EventBody, LogBody, LogQuery, StreamBody, StreamQuery};
use crate::error::{ApiError, Problem};
use crate::extract::{PathParams, QueryParams};
use crate::AppState;

const DEFAULT_STREAM_LIMIT: i64 = 100;
const DEFAULT_LOG_LIMIT: i64 = 1000;
/// Most events one request returns.
const MAX_LIMIT: i64 = 1000;

fn limit(requested: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match requested {
        None => Ok(default),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        ))),
    }
}

/// A stream's events.
#[utoipa::path(
    get, path = "/streams/{stream_id}", tag = "audit",
    params(
        ("stream_id" = String, Path, description = "e.g. order-<uuid>, inventory-SKU-1"),
        ("from_version" = Option<i64>, Query, description = "forward: first version returned; backward: highest"),
        ("limit" = Option<i64>, Query, description = "1-1000, default 100"),
        ("direction" = Option<String>, Query, description = "forward (default) or backward"),
        ("as_of" = Option<String>, Query, description = "RFC 3339 instant: only events recorded by then"),
    ),
    responses(
        (status = 200, body = StreamBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such stream (at that instant)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all, fields(stream_id = %stream_id))]
pub async fn read_stream(
    State(state): State<AppState>,
    PathParams(stream_id): PathParams<String>,
    QueryParams(query): QueryParams<StreamQuery>,
) -> Result<Json<StreamBody>, ApiError> {
    let direction = match query.direction.as_deref() {
        None | Some("forward") => Direction::Forward,
        Some("backward") => Direction::Backward,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "direction must be forward or backward, got {other:?}"
            )))
        }
    };
    if query.from_version.is_some_and(|version| version < 0) {
        return Err(ApiError::BadRequest(
            "from_version must not be negative".into(),
        ));
    }
    // No stream id holds a NUL (PostgreSQL text cannot).
    if stream_id.contains('\0') {
        return Err(ApiError::NotFound(format!("no stream {stream_id:?}")));
    }
    let as_of = query.as_of.map(AsOf::Instant);
    let read = StreamRead {
        from_version: query.from_version,
        direction,
        limit: limit(query.limit, DEFAULT_STREAM_LIMIT)?,
        as_of,
    };
    let store = state.store();
    let version = match as_of {
        Some(as_of) => store.stream_version_as_of(&stream_id, as_of).await?,
        None => store.stream_version(&stream_id).await?,
    };
    if version == 0 {
        return Err(ApiError::NotFound(match query.as_of {
            Some(at) => format!("stream {stream_id:?} had no events at {at}"),
            None => format!("no stream {stream_id:?}"),
        }));
    }
    let events = store.read_stream(&stream_id, read).await?;
    Ok(Json(StreamBody {
        stream_id,
        version,
        events: events.into_iter().map(EventBody::from).collect(),
    }))
}

/// The global log after a position: gap-free and in order, so paging with
/// `next` never skips or repeats an event.
#[utoipa::path(
    get, path = "/events", tag = "audit",
    params(
        ("after" = Option<i64>, Query, description = "global position; 0 (default) is the start"),
        ("limit" = Option<i64>, Query, description = "1-1000, default 1000"),
    ),
    responses(
        (status = 200, body = LogBody),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn read_log(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<LogQuery>,
) -> Result<Json<LogBody>, ApiError> {
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::BadRequest("after must not be negative".into()));
    }
    let limit = limit(query.limit, DEFAULT_LOG_LIMIT)?;
    let cursor = state.store().cursor_at(after).await?;
    let events = state.store().read_log(cursor, limit).await?;
    let next = events.last().map_or(after, |event| event.position);
    Ok(Json(LogBody {
        events: events.into_iter().map(EventBody::from).collect(),
        next,
    }))
}
