//! Subscription runtime, read models and choreography reactors (not built yet).
