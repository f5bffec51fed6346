//! Audit and replay: one stream (from a version, either direction, as of
//! an instant) and the global log after a position.

use axum::extract::State;
use axum::http::Uri;
use event_store::{AsOf, Direction, LogCursor, StreamRead};

use super::paging::{
    self, decode_log_cursor, digits, encode_log_cursor, limit, more_follow, next_link, Paged,
};
use crate::dto::{EventBody, LogBody, LogQuery, StreamBody, StreamQuery};
use crate::error::{ApiError, Problem};
use crate::extract::{PathParams, QueryParams};
use crate::openapi::responses::{BadRequest, Unavailable};
use crate::AppState;

const DEFAULT_STREAM_LIMIT: i64 = 100;

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
        (status = 200, body = StreamBody, headers(("Link" = String, description = "rel=\"next\": the next page, when more events follow"))),
        (status = 400, response = BadRequest),
        (status = 404, description = "No such stream (at that instant)", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(stream_id = %stream_id))]
pub async fn read_stream(
    State(state): State<AppState>,
    uri: Uri,
    PathParams(stream_id): PathParams<String>,
    QueryParams(query): QueryParams<StreamQuery>,
) -> Result<Paged<StreamBody>, ApiError> {
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
    let limit = limit(query.limit, DEFAULT_STREAM_LIMIT)?;
    let read = StreamRead {
        from_version: query.from_version,
        direction,
        // One more than asked: whether a next page exists.
        limit: limit + 1,
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
    let mut events = store.read_stream(&stream_id, read).await?;
    let more = more_follow(&mut events, limit);
    let next_from_version = events.last().filter(|_| more).map(|last| match direction {
        Direction::Forward => last.stream_version + 1,
        Direction::Backward => last.stream_version - 1,
    });
    let next =
        next_from_version.and_then(|from| next_link(&uri, "from_version", &from.to_string()));
    Ok(Paged {
        body: StreamBody {
            stream_id,
            version,
            events: events.into_iter().map(EventBody::from).collect(),
            next_from_version,
        },
        next,
    })
}

/// Where a read of the log starts, as `after` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogAfter {
    /// A bare position (0: the start), from an event or a write response.
    Position(i64),
    /// The `next` of an earlier page: exactly where that page ended.
    Cursor(LogCursor),
}

impl LogAfter {
    fn parse(after: Option<&str>) -> Result<Self, ApiError> {
        let Some(after) = after else {
            return Ok(LogAfter::Position(0));
        };
        if let Some(position) = digits(after) {
            return Ok(LogAfter::Position(position));
        }
        decode_log_cursor(Some(after))
            .map(LogAfter::Cursor)
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "after must be a position (0: the start) or the `next` of a page, got {after:?}"
                ))
            })
    }

    /// What this `after` is passed back as when the page is empty.
    fn next_when_empty(self) -> String {
        match self {
            // Resolved again on the next request, which is as safe.
            LogAfter::Position(position) => position.to_string(),
            LogAfter::Cursor(cursor) => encode_log_cursor(cursor),
        }
    }
}

/// The global log after `after`: gap-free and in log order, so paging with
/// `next` never skips or repeats an event. `after` is a position or the
/// `next` of a page (see `LogAfter`, and `EventStore::cursor_at` for what a
/// position means).
#[utoipa::path(
    get, path = "/events", tag = "audit",
    params(
        ("after" = Option<String>, Query, description = "0 (default): the start; a position P (of an event or a write response): every event after the one at P in the log and every event with a greater position; the opaque `next` of a page: the events after that page"),
        ("limit" = Option<i64>, Query, description = "1-1000, default 1000"),
    ),
    responses(
        (status = 200, body = LogBody, headers(("Link" = String, description = "rel=\"next\": the next page, when more events are visible now"))),
        (status = 400, response = BadRequest),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn read_log(
    State(state): State<AppState>,
    uri: Uri,
    QueryParams(query): QueryParams<LogQuery>,
) -> Result<Paged<LogBody>, ApiError> {
    let after = LogAfter::parse(query.after.as_deref())?;
    let limit = limit(query.limit, paging::DEFAULT_LIMIT)?;
    let cursor = match after {
        // Not simply the cursor of the event at P: a concurrent
        // transaction's event may hold a greater position yet sort before it.
        LogAfter::Position(position) => state.store().cursor_at(position).await?,
        LogAfter::Cursor(cursor) => cursor,
    };
    let mut events = state.store().read_log(cursor, limit + 1).await?;
    let more = more_follow(&mut events, limit);
    let next = events.last().map_or_else(
        || after.next_when_empty(),
        |last| encode_log_cursor(last.cursor()),
    );
    let link = if more {
        next_link(&uri, "after", &next)
    } else {
        None
    };
    Ok(Paged {
        body: LogBody {
            events: events.into_iter().map(EventBody::from).collect(),
            next,
        },
        next: link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_is_a_position_or_the_next_of_a_page() {
        assert_eq!(LogAfter::parse(None).ok(), Some(LogAfter::Position(0)));
        assert_eq!(
            LogAfter::parse(Some("17")).ok(),
            Some(LogAfter::Position(17))
        );
        let cursor = LogCursor {
            transaction_id: 900,
            position: 12,
        };
        let next = LogAfter::Cursor(cursor).next_when_empty();
        assert_eq!(
            LogAfter::parse(Some(&next)).ok(),
            Some(LogAfter::Cursor(cursor))
        );
        for wrong in ["-1", "x", "1_2_3", "1_-2", "", "1.5"] {
            assert!(LogAfter::parse(Some(wrong)).is_err(), "{wrong:?} accepted");
        }
    }
}
