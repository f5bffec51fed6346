//! The span of a reactor handling one event: a child of the trace context
//! the event was written in (its metadata's `traceparent`), so that a
//! reactor's work, and the commands it issues, continue the trace of the
//! request that started the flow, although they run in another task,
//! perhaps much later. An event without one starts a trace of its own.

use event_store::RecordedEvent;

/// One attempt of `subscription` at `event`; instrument the attempt with it.
pub(crate) fn reaction_span(subscription: &str, event: &RecordedEvent) -> tracing::Span {
    let span = tracing::info_span!(
        "react",
        subscription,
        event_type = %event.event_type,
        stream_id = %event.stream_id,
        position = event.position,
    );
    if let Some(traceparent) = event.traceparent() {
        traceparent.make_parent_of(&span);
    }
    span
}
