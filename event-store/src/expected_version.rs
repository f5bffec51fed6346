//! What an append expects of its stream's current version.

use std::fmt;

/// Versions count a stream's events: the first event is version 1 and a
/// stream with no events is at version 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must have no events yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream must be exactly at this version (0 means no events yet).
    Exact(i64),
}

impl ExpectedVersion {
    /// The kind and version as the `append_events` SQL function takes them.
    pub(crate) fn to_sql(self) -> (&'static str, i64) {
        match self {
            ExpectedVersion::Any => ("any", -1),
            ExpectedVersion::NoStream => ("no_stream", 0),
            ExpectedVersion::StreamExists => ("stream_exists", -1),
            ExpectedVersion::Exact(version) => ("exact", version),
        }
    }

    /// Whether a stream at `actual` satisfies this expectation.
    pub fn is_satisfied_by(self, actual: i64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::StreamExists => actual > 0,
            ExpectedVersion::Exact(version) => actual == version,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}
