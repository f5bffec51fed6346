//! Logging and tracing set-up, done once at start-up.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Logs to stderr; `RUST_LOG` overrides the default `info` level (lapin
/// at `error`: it warns with the whole message, body included, of every
/// publish the broker returns; the relay reports those itself, without the
/// body, and parks them). Colours
/// only when stderr is a terminal: escape codes in a file or a log
/// shipper's input are noise. `json` writes one object per line.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,lapin=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(true)
            .try_init(),
    };
}
