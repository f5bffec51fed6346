//! The two kinds of subscriber the runtime drives.

use async_trait::async_trait;
use commands::DecisionBatch;
use event_store::{FailureClass, RecordedEvent, StoreError};
use sqlx::PgConnection;

use crate::runtime::FencedCommit;

/// Why a subscriber could not handle an event, and what kind of failure
/// it is: the runtime waits out an unreachable database and retries lost
/// races without counting them, and parks an event only after
/// `max_attempts` failures of the handler itself.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct HandlerError {
    class: FailureClass,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl HandlerError {
    /// A failure of the handler itself: it counts toward parking.
    pub fn new(message: impl std::fmt::Display) -> Self {
        HandlerError {
            class: FailureClass::Permanent,
            source: message.to_string().into(),
        }
    }

    /// A failure of the given class that keeps `source`.
    pub fn with_class(
        class: FailureClass,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        HandlerError {
            class,
            source: source.into(),
        }
    }

    pub fn class(&self) -> FailureClass {
        self.class
    }

    /// Whether this failure counts toward parking the event: only the
    /// handler's own failures do, never an outage or a lost race.
    pub fn counts_toward_parking(&self) -> bool {
        self.class == FailureClass::Permanent
    }
}

impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> Self {
        HandlerError::with_class(error.class(), error)
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

/// Builds a read model from events. `apply` runs inside the transaction
/// that also saves the checkpoint, and must name its tables without a
/// schema: a rebuild points `search_path` at fresh copies of
/// [`Projection::tables`].
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// The subscription name, also the name operators use (`orders`...).
    fn name(&self) -> &'static str;
    /// The tables this projection owns, rebuilt together.
    fn tables(&self) -> &'static [&'static str];
    /// The one stream category it reads (`order` for `order-*`).
    fn category(&self) -> &'static str;
    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError>;

    /// Whether each row this projection writes follows one stream's events
    /// only (no row is written from two streams). A rebuild then applies
    /// the streams over several connections at once, each stream's events
    /// in order; otherwise it applies the category in log order.
    fn rows_per_stream(&self) -> bool {
        false
    }

    /// Applies a batch, in order, as [`Projection::apply`] would one by one.
    /// A projection may override it to write a batch in a few statements
    /// (round trips, not the database, bound a rebuild's speed).
    async fn apply_batch(
        &self,
        connection: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), HandlerError> {
        for event in events {
            self.apply(connection, event).await?;
        }
        Ok(())
    }

    /// A session that applies the batches of one rebuild's fill (see
    /// [`RebuildSession`]). The default applies each batch with
    /// [`Projection::apply_batch`] and keeps nothing between them.
    fn rebuild_session(&self) -> Box<dyn RebuildSession + '_> {
        Box::new(BatchByBatch { projection: self })
    }
}

/// Applies consecutive batches of one rebuild to its fresh tables, and may
/// keep state between them: a rebuild is the one time a projection sees
/// every event of its streams in order with nobody else writing its
/// tables, so it can hold rows in memory rather than read and rewrite them
/// every batch.
///
/// The rebuild calls [`RebuildSession::apply_batch`] once per batch, each
/// in a transaction of its own, with the events of the streams it gives
/// this session in log order (with [`Projection::rows_per_stream`], each
/// session gets its own streams), then [`RebuildSession::finish`] in one
/// more transaction. Until `finish` has committed, the tables may lag the
/// batches applied; a rebuild that fails before then throws them away.
#[async_trait]
pub trait RebuildSession: Send {
    /// Applies `events`, given by value so that their data can be decoded
    /// without a copy.
    async fn apply_batch(
        &mut self,
        connection: &mut PgConnection,
        events: Vec<RecordedEvent>,
    ) -> Result<(), HandlerError>;

    /// Writes whatever the session still holds.
    async fn finish(self: Box<Self>, connection: &mut PgConnection) -> Result<(), HandlerError>;
}

/// The default session: [`Projection::apply_batch`] per batch.
struct BatchByBatch<'a, P: ?Sized> {
    projection: &'a P,
}

#[async_trait]
impl<P: Projection + ?Sized> RebuildSession for BatchByBatch<'_, P> {
    async fn apply_batch(
        &mut self,
        connection: &mut PgConnection,
        events: Vec<RecordedEvent>,
    ) -> Result<(), HandlerError> {
        self.projection.apply_batch(connection, &events).await
    }

    async fn finish(self: Box<Self>, _connection: &mut PgConnection) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// What a reactor decided for a whole batch ([`Reactor::decide_batch`]).
#[derive(Debug)]
pub struct BatchDecisions {
    /// Appended with the batch's checkpoint, in one transaction.
    pub effects: DecisionBatch,
    /// Events whose effect did not complete, by position, each with its
    /// failure (a payment attempt that failed transiently, the failure
    /// recorded in `effects`). The runtime commits `effects` without the
    /// checkpoint, then retries each of these events with [`Reactor::react`]
    /// after a backoff, as it would have after this failure, together with
    /// the events after it in its stream: `effects` must hold nothing for
    /// those.
    pub unfinished: Vec<(i64, HandlerError)>,
}

impl From<DecisionBatch> for BatchDecisions {
    fn from(effects: DecisionBatch) -> Self {
        BatchDecisions {
            effects,
            unfinished: Vec::new(),
        }
    }
}

/// Turns events into commands. Effects go through the command executor
/// with ids derived from the source event, so handling an event twice has
/// the effect of handling it once.
#[async_trait]
pub trait Reactor: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The one stream category it reads, or `None` for several.
    fn category(&self) -> Option<&'static str> {
        None
    }
    async fn react(&self, event: &RecordedEvent) -> Result<(), HandlerError>;

    /// Decides the effects of a whole batch, so the runtime can append
    /// them and advance the checkpoint in one transaction. A reactor whose
    /// batch must have some effects written before it can decide the rest
    /// (a payment's requests, then the gateway, then the outcomes) commits
    /// those with `early`, fenced like the checkpoint. `None` (the
    /// default): its events are handled one by one with [`Reactor::react`]
    /// (a publish). An error, or a batch whose append meets a conflict,
    /// also falls back to `react`, event by event, which retries and parks
    /// as usual; so must everything `early` committed be harmless to do
    /// again.
    async fn decide_batch(
        &self,
        _events: &[RecordedEvent],
        _early: &FencedCommit,
    ) -> Option<Result<BatchDecisions, HandlerError>> {
        None
    }

    /// Streams of a batch handled at once, `None` for
    /// `RuntimeOptions::reactor_concurrency`. A reactor whose effect waits
    /// on something other than the database (the relay waits on broker
    /// confirms) can take far more streams in flight than one that issues
    /// commands, whose appends contend for the same rows and connections.
    fn concurrency(&self) -> Option<usize> {
        None
    }
}
