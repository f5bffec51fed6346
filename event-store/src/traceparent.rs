//! [`Traceparent`]: the W3C trace context an event was written in, kept in
//! its metadata, so that what the event causes later (a reactor's command,
//! the relay's publish, another service consuming the published message)
//! joins the same trace although it runs in another task, process or hour.
//!
//! Reading and writing the format is OpenTelemetry's
//! `TraceContextPropagator`: whatever it accepts is valid (version 00 and
//! later versions, lowercase hex, ids not all zero), and the value kept is
//! its canonical version-00 form. Spans are `tracing` spans bridged to
//! OpenTelemetry by `tracing-opentelemetry`; where that layer is not
//! installed (library tests, one-shot commands) a span has no context:
//! nothing is recorded from it and nothing adopted by it.

use std::collections::HashMap;
use std::fmt;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header, metadata key and AMQP header name of the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// A valid W3C `traceparent`, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Traceparent(String);

/// Why a value is not a `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a W3C traceparent (version-traceid-parentid-flags in lowercase hex, ids not all zero)"
)]
pub struct InvalidTraceparent;

impl Traceparent {
    /// `value` as a trace context, when it is a valid one.
    pub fn parse(value: &str) -> Result<Traceparent, InvalidTraceparent> {
        let carrier = HashMap::from([(TRACEPARENT.to_owned(), value.to_owned())]);
        let context = TraceContextPropagator::new().extract(&carrier);
        Traceparent::of_context(&context).ok_or(InvalidTraceparent)
    }

    /// The trace context of `span`, or `None` when the OpenTelemetry layer
    /// is not installed (or the span is disabled).
    pub fn of_span(span: &tracing::Span) -> Option<Traceparent> {
        Traceparent::of_context(&span.context())
    }

    /// The trace context of the span the caller runs in.
    pub fn current() -> Option<Traceparent> {
        Traceparent::of_span(&tracing::Span::current())
    }

    /// A valid `traceparent` read from stored metadata (an object with a
    /// `traceparent` string); anything else is no trace context.
    pub fn of_metadata(metadata: &serde_json::Value) -> Option<Traceparent> {
        metadata
            .get(TRACEPARENT)
            .and_then(serde_json::Value::as_str)
            .and_then(|value| Traceparent::parse(value).ok())
    }

    /// Makes `span` a child of this context: call it before the span is
    /// first entered. Without the OpenTelemetry layer it does nothing.
    pub fn make_parent_of(&self, span: &tracing::Span) {
        let carrier = HashMap::from([(TRACEPARENT.to_owned(), self.0.clone())]);
        let context = TraceContextPropagator::new().extract(&carrier);
        // Fails only without the layer or on a span already started: the
        // span then keeps the parent it has, which is all that can be done.
        let _ = span.set_parent(context);
    }

    /// The OpenTelemetry span context this stands for (remote).
    pub fn span_context(&self) -> SpanContext {
        let carrier = HashMap::from([(TRACEPARENT.to_owned(), self.0.clone())]);
        TraceContextPropagator::new()
            .extract(&carrier)
            .span()
            .span_context()
            .clone()
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        self.span_context().trace_id().to_string()
    }

    /// The parent (span) id, 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        self.span_context().span_id().to_string()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn of_context(context: &opentelemetry::Context) -> Option<Traceparent> {
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(context, &mut carrier);
        carrier.remove(TRACEPARENT).map(Traceparent)
    }
}

impl TryFrom<String> for Traceparent {
    type Error = InvalidTraceparent;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Traceparent::parse(&value)
    }
}

impl From<Traceparent> for String {
    fn from(traceparent: Traceparent) -> Self {
        traceparent.0
    }
}

impl fmt::Display for Traceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use serde_json::json;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_kept_with_its_ids() {
        let traceparent = Traceparent::parse(VALID).expect("valid");
        assert_eq!(traceparent.as_str(), VALID);
        assert_eq!(traceparent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(traceparent.span_id(), "00f067aa0ba902b7");
        assert!(traceparent.span_context().is_sampled());
    }

    #[test]
    fn later_versions_and_unknown_flags_are_read_and_written_as_version_00() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-comes-next";
        assert_eq!(Traceparent::parse(later).expect("valid").as_str(), VALID);
    }

    #[test]
    fn malformed_values_are_refused() {
        for invalid in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736ab-00f067aa0ba902b7-01",
            "00-xyz92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(
                Traceparent::parse(invalid),
                Err(InvalidTraceparent),
                "{invalid:?}"
            );
        }
    }

    #[test]
    fn serde_refuses_an_invalid_value() {
        let parsed: Traceparent = serde_json::from_value(json!(VALID)).expect("valid");
        assert_eq!(
            serde_json::to_value(&parsed).expect("serialises"),
            json!(VALID)
        );
        assert!(serde_json::from_value::<Traceparent>(json!("00-nope")).is_err());
    }

    #[test]
    fn metadata_without_a_valid_traceparent_has_none() {
        assert_eq!(
            Traceparent::of_metadata(&json!({ "traceparent": VALID })),
            Traceparent::parse(VALID).ok()
        );
        for metadata in [
            json!({}),
            json!({ "traceparent": 42 }),
            json!({ "traceparent": "00-nope" }),
            json!("not an object"),
        ] {
            assert_eq!(Traceparent::of_metadata(&metadata), None, "{metadata}");
        }
    }

    #[test]
    fn without_the_opentelemetry_layer_a_span_has_no_context() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("untraced");
            Traceparent::parse(VALID)
                .expect("valid")
                .make_parent_of(&span);
            assert_eq!(Traceparent::of_span(&span), None);
        });
    }

    #[test]
    fn a_span_made_a_child_of_a_traceparent_continues_its_trace() {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let parent = Traceparent::parse(VALID).expect("valid");
            let span = tracing::info_span!("child");
            parent.make_parent_of(&span);
            let child = Traceparent::of_span(&span).expect("the span has a context");
            assert_eq!(child.trace_id(), parent.trace_id());
            assert_ne!(child.span_id(), parent.span_id());
            // Inside it, the current context is the span's.
            let current = span.in_scope(Traceparent::current);
            assert_eq!(current, Some(child));
            // A span with no parent starts a trace of its own.
            let root = Traceparent::of_span(&tracing::info_span!("root")).expect("a context");
            assert_ne!(root.trace_id(), parent.trace_id());
        });
    }
}
