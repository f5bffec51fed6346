//! The handlers, one module per part of `API.md`.

pub mod audit;
pub mod inventory;
pub mod operations;
mod order_queries;
mod order_view;
pub mod orders;
pub(crate) mod paging;
pub mod service;

use std::future::Future;
use std::time::Instant;

use aggregates::Aggregate;
use commands::{CommandContext, ExecuteError, Executed};
use event_store::{RecordedEvent, StreamRead, Traceparent};

use crate::error::ApiError;
use crate::extract::CorrelationId;
use crate::AppState;

/// Every command a request causes carries the request's correlation id
/// and the trace context of the span handling it.
pub(crate) fn context(correlation: CorrelationId) -> CommandContext {
    CommandContext::from_request(correlation.0, "api").with_traceparent(Traceparent::current())
}

/// Executes a command, recording its latency and events in the metrics.
pub(crate) async fn execute<A: Aggregate>(
    state: &AppState,
    name: &'static str,
    stream_id: &str,
    command: &A::Command,
    context: &CommandContext,
) -> Result<Executed<A>, ExecuteError<A::Error>> {
    measured(
        name,
        state.executor().execute::<A>(stream_id, command, context),
    )
    .await
}

/// Awaits a command's execution, recording its latency and events in the
/// metrics.
pub(crate) async fn measured<A: Aggregate>(
    name: &'static str,
    execution: impl Future<Output = Result<Executed<A>, ExecuteError<A::Error>>>,
) -> Result<Executed<A>, ExecuteError<A::Error>> {
    let started = Instant::now();
    let result = execution.await;
    let (outcome, events) = match &result {
        Ok(executed) => ("ok", executed.events.len()),
        Err(ExecuteError::Domain(_)) => ("refused", 0),
        Err(_) => ("error", 0),
    };
    crate::metrics::command_executed(name, outcome, started.elapsed(), events);
    result
}

/// The last event of a stream (at or before `version` when given).
pub(crate) async fn last_event(
    state: &AppState,
    stream_id: &str,
    version: Option<i64>,
) -> Result<Option<RecordedEvent>, ApiError> {
    let read = StreamRead {
        from_version: version,
        ..StreamRead::backward().limit(1)
    };
    Ok(state
        .store()
        .read_stream(stream_id, read)
        .await?
        .into_iter()
        .next())
}

/// Saturating conversion for quantities shown as JSON integers.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// For the 202 bodies of commands carried out later.
pub(crate) fn accepted(
    detail: impl Into<String>,
) -> (axum::http::StatusCode, axum::Json<crate::dto::AcceptedBody>) {
    (
        axum::http::StatusCode::ACCEPTED,
        axum::Json(crate::dto::AcceptedBody {
            accepted: true,
            detail: detail.into(),
        }),
    )
}
