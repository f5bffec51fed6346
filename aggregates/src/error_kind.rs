//! `ErrorKind`: how a caller should treat a domain error (maps to HTTP 404 / 409 / 422).

/// Coarse class of a domain error, so the API maps errors without matching
/// every variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The aggregate does not exist yet (HTTP 404).
    NotFound,
    /// The command is well-formed but conflicts with the current state (HTTP 409).
    Conflict,
    /// The command itself is invalid whatever the state (HTTP 422).
    Invalid,
}
