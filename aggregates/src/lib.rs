//! Pure domain of orderstream (placeholder until the domain lands).
