//! Crashes and poison events.
