//! HTTP API of orderstream (not built yet).
