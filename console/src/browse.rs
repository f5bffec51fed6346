//! Read-only views the API has no endpoint for: finding an order by its
//! id, a correlation id or a customer id, and browsing the log by
//! category, stream, type or correlation id. They read through the store's
//! and the read models' own functions and change nothing.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use event_store::{CorrelationId, LogCursor, RecordedEvent, StreamRead};
use projections::read_models::orders;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ConsoleError;
use crate::ConsoleState;

const MAX_FOUND: i64 = 50;
const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 500;
/// Events looked at for one page filtered by type.
const MAX_SCANNED: usize = 10_000;

#[derive(Deserialize)]
pub struct FindQuery {
    q: String,
}

#[derive(Serialize, PartialEq, Debug)]
pub struct Found {
    order_id: Uuid,
    /// How `q` named it: `order id`, `correlation id` or `customer id`.
    via: &'static str,
    customer_id: Option<String>,
    status: Option<String>,
}

/// Orders named by `q`: its id, a correlation id of its flows, or its
/// customer's id.
pub async fn find(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(query): Query<FindQuery>,
) -> Result<Json<Vec<Found>>, ConsoleError> {
    state.sessions.of(&headers)?;
    let q = query.q.trim();
    let store = &state.store;
    let mut found = Vec::new();
    if let Ok(id) = Uuid::parse_str(q) {
        if store.stream_version(&format!("order-{id}")).await? > 0 {
            found.push(Found {
                order_id: id,
                via: "order id",
                customer_id: None,
                status: None,
            });
        }
    }
    if let Ok(correlation) = CorrelationId::new(q) {
        let events = store
            .read_correlation(&correlation, LogCursor::START, 1000)
            .await?;
        for event in &events {
            let Some(id) = event
                .stream_id
                .strip_prefix("order-")
                .and_then(|id| Uuid::parse_str(id).ok())
            else {
                continue;
            };
            if !found.iter().any(|known: &Found| known.order_id == id) {
                found.push(Found {
                    order_id: id,
                    via: "correlation id",
                    customer_id: None,
                    status: None,
                });
            }
        }
    }
    for summary in orders::orders_of_customer(store.pool(), q, MAX_FOUND)
        .await
        .map_err(event_store::StoreError::from)?
    {
        if !found.iter().any(|known| known.order_id == summary.order_id) {
            found.push(Found {
                order_id: summary.order_id,
                via: "customer id",
                customer_id: Some(summary.customer_id),
                status: Some(summary.status.to_string()),
            });
        }
    }
    found.truncate(MAX_FOUND as usize);
    Ok(Json(found))
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    category: Option<String>,
    stream: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    correlation: Option<String>,
    /// The `next` of a previous page; `latest` for the last events.
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
pub struct LogPage {
    events: Vec<LogEvent>,
    /// Pass as `after` for the next page (events after this page).
    next: String,
}

#[derive(Serialize)]
pub struct LogEvent {
    position: i64,
    stream_id: String,
    version: i64,
    event_id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: i32,
    recorded_at: DateTime<Utc>,
    correlation_id: Option<String>,
    causation_id: Option<Uuid>,
    data: serde_json::Value,
    metadata: serde_json::Value,
}

impl From<RecordedEvent> for LogEvent {
    fn from(event: RecordedEvent) -> Self {
        LogEvent {
            position: event.position,
            stream_id: event.stream_id,
            version: event.stream_version,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            correlation_id: event.correlation_id.map(|id| id.to_string()),
            causation_id: event.causation_id,
            data: event.data,
            metadata: event.metadata,
        }
    }
}

fn filled(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// A page of the log, oldest first, filtered. The cursor is the log's
/// `(transaction_id, position)` as `T_P`, or a stream version for a
/// stream.
pub async fn log(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(query): Query<LogQuery>,
) -> Result<Json<LogPage>, ConsoleError> {
    state.sessions.of(&headers)?;
    let store = &state.store;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let event_type = filled(&query.event_type);
    let wanted = |event: &RecordedEvent| event_type.is_none_or(|wanted| event.event_type == wanted);
    if let Some(stream) = filled(&query.stream) {
        let from: i64 = match filled(&query.after) {
            None => 1,
            Some(after) => after.parse().map_err(|_| {
                ConsoleError::BadRequest(format!("after must be a version, got {after:?}"))
            })?,
        };
        let events = store
            .read_stream(stream, StreamRead::forward_from(from).limit(limit))
            .await?;
        let next = events.last().map_or(from, |last| last.stream_version + 1);
        return Ok(Json(LogPage {
            events: events
                .into_iter()
                .filter(wanted)
                .map(LogEvent::from)
                .collect(),
            next: next.to_string(),
        }));
    }
    let mut cursor = match filled(&query.after) {
        None => LogCursor::START,
        Some("latest") => {
            let head = store.head().await?;
            store.cursor_at((head.position - limit).max(0)).await?
        }
        Some(after) => parse_cursor(after)?,
    };
    let correlation = filled(&query.correlation)
        .map(|text| {
            CorrelationId::new(text)
                .map_err(|error| ConsoleError::BadRequest(format!("not a correlation id: {error}")))
        })
        .transpose()?;
    let mut events = Vec::new();
    let mut scanned = 0;
    // A type filter may skip most of a page: read on, within a bound.
    while (events.len() as i64) < limit && scanned < MAX_SCANNED {
        let batch = match (&correlation, filled(&query.category)) {
            (Some(correlation), _) => store.read_correlation(correlation, cursor, limit).await?,
            (None, Some(category)) => store.read_category(category, cursor, limit).await?,
            (None, None) => store.read_log(cursor, limit).await?,
        };
        let Some(last) = batch.last() else { break };
        cursor = last.cursor();
        scanned += batch.len();
        let full = batch.len() as i64 == limit;
        events.extend(batch.into_iter().filter(wanted));
        if !full {
            break;
        }
    }
    if events.len() as i64 > limit {
        // The next page starts after the last event shown, not read.
        events.truncate(limit as usize);
        if let Some(last) = events.last() {
            cursor = last.cursor();
        }
    }
    Ok(Json(LogPage {
        events: events.into_iter().map(LogEvent::from).collect(),
        next: format!("{}_{}", cursor.transaction_id, cursor.position),
    }))
}

fn parse_cursor(text: &str) -> Result<LogCursor, ConsoleError> {
    text.split_once('_')
        .and_then(|(transaction_id, position)| {
            Some(LogCursor {
                transaction_id: transaction_id.parse().ok()?,
                position: position.parse().ok()?,
            })
        })
        .ok_or_else(|| {
            ConsoleError::BadRequest(format!("after must be the next of a page, got {text:?}"))
        })
}
