//! Deciding several commands now and appending them later, together, in a
//! transaction the caller owns: a reactor's whole batch with its
//! checkpoint, one commit instead of one per effect.
//!
//! Each command is decided on the state the batch has left its stream in,
//! else on the cached state, else on the stored one, exactly as
//! [`CommandExecutor::execute`] would; and every stream decided on is in
//! the append with the version its decision started from, even when the
//! decision wrote nothing to it. So a stale guess anywhere fails the whole
//! append as a version conflict, and nothing of the batch is written: the
//! caller then falls back to executing the commands one by one, which
//! re-reads what it must. Event ids come from each command's context, as
//! they would one by one, so either way of executing has the same effect,
//! once.

use std::collections::HashMap;

use aggregates::{fold_from, Aggregate, DomainEvent, EncodedEvent};
use event_store::{AppendResult, ExpectedVersion, StoreError, StreamAppend};
use sqlx::PgConnection;

use crate::cache::StateCache;
use crate::executor::Basis;
use crate::{CommandContext, CommandExecutor, ExecuteError};

/// Streams one batch may decide on before it is refused (a batch is a
/// subscription's read batch: far below this).
const MAX_STREAMS: usize = 10_000;

/// Commands decided, not yet appended: see the module documentation.
#[derive(Debug)]
pub struct DecisionBatch {
    executor: CommandExecutor,
    /// Each stream's state as the batch leaves it.
    decided: StateCache,
    /// One append per stream, in the order streams were first decided on.
    appends: Vec<StreamAppend>,
    append_of: HashMap<String, usize>,
}

impl CommandExecutor {
    /// An empty batch of decisions on this executor's store and cache.
    pub fn decision_batch(&self) -> DecisionBatch {
        DecisionBatch {
            executor: self.clone(),
            decided: StateCache::new(MAX_STREAMS),
            appends: Vec::new(),
            append_of: HashMap::new(),
        }
    }
}

impl DecisionBatch {
    /// Decides `command` on the aggregate of `stream_id` and adds its events
    /// to the batch. A refusal is an error (the batch as a whole cannot be
    /// trusted to go on; the caller executes the commands one by one).
    pub async fn decide<A: Aggregate>(
        &mut self,
        stream_id: &str,
        command: &A::Command,
        context: &CommandContext,
    ) -> Result<(), ExecuteError<A::Error>> {
        if self.append_of.len() >= MAX_STREAMS && !self.append_of.contains_key(stream_id) {
            return Err(ExecuteError::Store(StoreError::InvalidRequest(format!(
                "a decision batch spans at most {MAX_STREAMS} streams"
            ))));
        }
        // A state this batch decided is exact if the batch's append
        // succeeds, and the append fails otherwise: decide on it as it is.
        if let Some(decided) = self.decided.get::<A>(stream_id) {
            let events = decided
                .state
                .decide(command)
                .map_err(ExecuteError::Domain)?;
            let version = decided.version + events.len() as i64;
            self.add(stream_id, decided.version, &events, context);
            self.decided
                .put(stream_id, &fold_from(decided.state, &events), version);
            return Ok(());
        }
        let mut basis = Basis::Cached;
        loop {
            let (loaded, used) = self
                .executor
                .state_for_decision::<A>(stream_id, basis)
                .await?;
            basis = Basis::Stored;
            let events = match loaded.state.decide(command) {
                Ok(events) => events,
                // A refusal on a guess is decided again on the stored state.
                Err(_) if used != Basis::Stored => continue,
                Err(error) => return Err(ExecuteError::Domain(error)),
            };
            let version = loaded.version + events.len() as i64;
            self.add(stream_id, loaded.version, &events, context);
            self.decided
                .put(stream_id, &fold_from(loaded.state, &events), version);
            return Ok(());
        }
    }

    /// Adds `events` decided on `stream_id` at `version` (none: the stream
    /// is still checked at that version).
    fn add<E: DomainEvent>(
        &mut self,
        stream_id: &str,
        version: i64,
        events: &[E],
        context: &CommandContext,
    ) {
        let encoded: Vec<EncodedEvent> = events.iter().map(EncodedEvent::of).collect();
        let new_events = context.new_events(stream_id, &encoded);
        match self.append_of.get(stream_id) {
            Some(&index) => self.appends[index].events.extend(new_events),
            None => {
                self.append_of
                    .insert(stream_id.to_owned(), self.appends.len());
                self.appends.push(StreamAppend::new(
                    stream_id,
                    ExpectedVersion::Exact(version),
                    new_events,
                ));
            }
        }
    }

    /// Whether no command was decided.
    pub fn is_empty(&self) -> bool {
        self.appends.is_empty()
    }

    /// Appends every decision in `connection`'s transaction, as its first
    /// write (see [`event_store::EventStore::append_in_transaction`]).
    pub async fn append_in(
        &self,
        connection: &mut PgConnection,
    ) -> Result<AppendResult, StoreError> {
        if self.appends.is_empty() {
            return Ok(AppendResult {
                written: false,
                events: Vec::new(),
            });
        }
        self.executor
            .store()
            .append_in_transaction(connection, &self.appends)
            .await
    }

    /// After the transaction committed: later commands start from the
    /// states the batch left, and readers are woken.
    pub fn committed(self) {
        self.executor.remember_all(&self.decided);
        self.executor.store().wake_readers();
    }

    /// After the transaction failed or rolled back: readers that waited
    /// on it are woken (it may have had an id), nothing is remembered.
    pub fn abandoned(self) {
        self.executor.store().wake_readers();
    }
}
