//! The append-only event store of orderstream, on PostgreSQL.
//!
//! It stores opaque events (a type name, a schema version, JSON data and
//! metadata) in streams, and offers: optimistic appends with an
//! [`ExpectedVersion`], atomic appends to several streams, idempotent appends
//! by event id, reads of a stream (forward, backward, as of a version,
//! position or instant), of a category and of the whole log, a gap-free live
//! [`subscription`](EventStore::subscribe), named checkpoints and snapshots.
//!
//! It is not a domain model: it knows no order, SKU or payment, and never
//! interprets an event's data. The schema lives in `migrations/` at the
//! workspace root ([`MIGRATOR`]).
//!
//! Start reading at [`EventStore`]; the ordering guarantee that makes
//! checkpoints safe under concurrent writers is explained in `log.rs`, and
//! how it survives a restore into another cluster in `log_epoch.rs`.

mod append;
mod checkpoints;
mod correlation;
mod error;
mod event;
mod expected_version;
mod horizon;
mod log;
mod log_epoch;
mod snapshots;
mod store;
mod stream;
mod subscribe;
mod traceparent;
mod wakeups;

pub use append::{AppendResult, AppendedEvent, StreamAppend};
pub use checkpoints::{save as save_checkpoint, CheckpointLayout, CheckpointLease};
pub use correlation::{CorrelationId, InvalidCorrelationId};
pub use error::{FailureClass, StoreError};
pub use event::{EventMetadata, NewEvent, RecordedEvent};
pub use expected_version::ExpectedVersion;
pub use log::{FlowPage, LogCursor, LogFilter, Partition};
pub use log_epoch::LogEpochShift;
pub use snapshots::Snapshot;
pub use store::{EventStore, StoreOptions};
pub use stream::{AsOf, Direction, StreamRead};
pub use subscribe::{SubscribeOptions, Subscription};
pub use traceparent::{InvalidTraceparent, Traceparent, TRACEPARENT};

/// Every migration of the orderstream database (the whole schema, not only
/// the store's tables: one database, one migration history).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");
