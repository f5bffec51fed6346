//! Logging and tracing set-up, done once at start-up.
//!
//! Logs go to stderr, filtered by `RUST_LOG`. The services (`serve`,
//! `finance serve`) also bridge their spans to OpenTelemetry, with a filter
//! of their own: trace context must travel (request -> events -> reactors
//! -> broker -> Finance) whatever the log level. Spans are exported over
//! OTLP/HTTP (protobuf) only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; the SDK reads the other
//! standard variables (`OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`,
//! `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`).

use std::io::IsTerminal;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// `service.name` of `orderstream serve`.
pub const ORDERSTREAM: &str = "orderstream";
/// `service.name` of `orderstream finance serve`.
pub const FINANCE: &str = "orderstream-finance";

const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// What must be flushed before the process exits.
pub struct Telemetry {
    /// Set only when spans are exported.
    exporting: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered (graceful shutdown); waits for the
    /// exporter, within its own timeout (`OTEL_BSP_EXPORT_TIMEOUT`).
    pub fn shutdown(self) {
        if let Some(provider) = self.exporting {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "could not export the last spans");
            }
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` level (lapin
/// at `error`: it warns with the whole message, body included, of every
/// publish the broker returns; the relay reports those itself, without the
/// body, and parks them). Colours only when stderr is a terminal: escape
/// codes in a file or a log shipper's input are noise. `json` writes one
/// object per line. With `service`, spans are bridged to OpenTelemetry
/// under that `service.name` (see the module documentation).
pub fn init(format: LogFormat, service: Option<&'static str>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,lapin=error"));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_current_span(true)
            .boxed(),
    }
    .with_filter(filter);
    let Some(service) = service else {
        let _ = tracing_subscriber::registry().with(logs).try_init();
        return Ok(Telemetry { exporting: None });
    };
    let endpoint = ENDPOINT_VARS.iter().find_map(|var| {
        std::env::var(var)
            .ok()
            .filter(|value| !value.trim().is_empty())
    });
    let provider = tracer_provider(service, endpoint.is_some())?;
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service))
        .with_tracked_inactivity(false)
        .with_filter(span_filter());
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init();
    match endpoint {
        Some(endpoint) => {
            tracing::info!(
                endpoint = %crate::redact::broker_url(&endpoint),
                service,
                "tracing export on: OTLP/HTTP (protobuf)"
            );
            Ok(Telemetry {
                exporting: Some(provider),
            })
        }
        None => {
            tracing::info!(
                "tracing export off: OTEL_EXPORTER_OTLP_ENDPOINT is not set \
                 (trace context still travels in events and messages)"
            );
            Ok(Telemetry { exporting: None })
        }
    }
}

/// With an exporter: batches to the OTLP endpoint, sampled as
/// `OTEL_TRACES_SAMPLER` says (parent-based, always on, by default).
/// Without one, nothing is recorded for export: spans still get ids, so a
/// caller's trace context goes on to the events, the broker and Finance,
/// but a trace that starts here is not sampled.
fn tracer_provider(service: &'static str, export: bool) -> anyhow::Result<SdkTracerProvider> {
    let resource = match std::env::var("OTEL_SERVICE_NAME") {
        Ok(name) if !name.trim().is_empty() => Resource::builder().build(),
        _ => Resource::builder().with_service_name(service).build(),
    };
    let builder = SdkTracerProvider::builder().with_resource(resource);
    if !export {
        return Ok(builder
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .build());
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .context("OTEL_EXPORTER_OTLP_ENDPOINT: could not set up the OTLP/HTTP exporter")?;
    Ok(builder.with_batch_exporter(exporter).build())
}

/// The spans worth a trace: the services' own at `info`, whatever
/// `RUST_LOG` says. Never the exporter's own HTTP client (each export
/// would be traced and exported in turn), nor the drivers' internals.
fn span_filter() -> Targets {
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("sqlx", LevelFilter::WARN)
        .with_target("lapin", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
        .with_target("opentelemetry_http", LevelFilter::OFF)
        .with_target("reqwest", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("h2", LevelFilter::OFF)
}
