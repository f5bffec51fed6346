//! The one loop every command runs: decide on states that may be guesses,
//! and let the append check them.
//!
//! A command's states come from the cache or are presumed (a new stream)
//! when they can, from the store otherwise. Only an append checks a guess:
//! each stream read goes into it at the version read, with its new events
//! or none. So:
//! - a decision that writes, made on a guess, is appended; a stale guess is
//!   a version conflict, and the command is decided again on stored states;
//! - a decision that writes nothing (a refusal, or "already in effect"),
//!   made on a guess, has nothing to check it, so it is decided again on
//!   stored states before it is believed;
//! - an append that turns out to be a repeat of stored events, made on a
//!   guess, is decided again the same way.
//!
//! Each command ([`Decision`]) only reads its states and decides; the
//! executor runs the loop ([`CommandExecutor::run`]) and a
//! [`DecisionBatch`](crate::DecisionBatch) collects decisions to append
//! later, together.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use aggregates::inventory::Inventory;
use aggregates::values::Sku;
use aggregates::{fold_from, stream_id, Aggregate, EncodedEvent};
use async_trait::async_trait;
use event_store::{AppendResult, ExpectedVersion, Snapshot, StreamAppend};

use crate::cache::StateCache;
use crate::executor::Basis;
use crate::{CommandContext, CommandExecutor, ExecuteError, Loaded};

/// Where a decision reads its states, and whether any of them was a guess.
pub(crate) struct States<'a> {
    executor: &'a CommandExecutor,
    /// A batch's own results: exact if the batch's append succeeds.
    decided: Option<&'a StateCache>,
    basis: Basis,
    guessed: bool,
}

impl<'a> States<'a> {
    pub(crate) fn new(
        executor: &'a CommandExecutor,
        decided: Option<&'a StateCache>,
        basis: Basis,
    ) -> Self {
        States {
            executor,
            decided,
            basis,
            guessed: false,
        }
    }

    /// Whether any state handed out so far was a guess (cached or presumed).
    pub(crate) fn guessed(&self) -> bool {
        self.guessed
    }

    pub(crate) fn executor(&self) -> &CommandExecutor {
        self.executor
    }

    /// The state of `stream_id` at this try's basis.
    pub(crate) async fn get<A: Aggregate, E>(
        &mut self,
        stream_id: &str,
    ) -> Result<Loaded<A>, ExecuteError<E>> {
        self.get_at(stream_id, self.basis).await
    }

    /// The state of a stream that is never new: a presumed basis reads it
    /// from the cache or the store.
    pub(crate) async fn get_existing<A: Aggregate, E>(
        &mut self,
        stream_id: &str,
    ) -> Result<Loaded<A>, ExecuteError<E>> {
        let basis = match self.basis {
            Basis::Presumed => Basis::Cached,
            other => other,
        };
        self.get_at(stream_id, basis).await
    }

    /// The stored state of `stream_id` (or this batch's own), whatever
    /// this try's basis: for a guess that cannot be the stream's state.
    pub(crate) async fn get_stored<A: Aggregate, E>(
        &mut self,
        stream_id: &str,
    ) -> Result<Loaded<A>, ExecuteError<E>> {
        self.get_at(stream_id, Basis::Stored).await
    }

    async fn get_at<A: Aggregate, E>(
        &mut self,
        stream_id: &str,
        basis: Basis,
    ) -> Result<Loaded<A>, ExecuteError<E>> {
        if let Some(decided) = self.decided.and_then(|batch| batch.get::<A>(stream_id)) {
            return Ok(decided);
        }
        let (loaded, used) = self
            .executor
            .state_for_decision::<A, E>(stream_id, basis)
            .await?;
        self.guessed |= used != Basis::Stored;
        Ok(loaded)
    }

    /// The inventory of every SKU in `skus`.
    pub(crate) async fn inventories<E>(
        &mut self,
        skus: impl IntoIterator<Item = Sku>,
    ) -> Result<BTreeMap<Sku, Loaded<Inventory>>, ExecuteError<E>> {
        let mut inventories = BTreeMap::new();
        for sku in skus {
            if let Entry::Vacant(slot) = inventories.entry(sku) {
                let loaded = self
                    .get_existing::<Inventory, E>(&stream_id::<Inventory>(slot.key()))
                    .await?;
                slot.insert(loaded);
            }
        }
        Ok(inventories)
    }
}

/// What a decision wants written, and what it leaves.
pub(crate) struct Decided<T> {
    pub(crate) value: T,
    /// Every stream read, expecting the version read, with its new events
    /// (none: the stream is only checked).
    pub(crate) appends: Vec<StreamAppend>,
    /// The state of every stream read, after the decision.
    pub(crate) leaves: StateCache,
    /// Snapshots due once the append is committed.
    pub(crate) snapshots: Vec<Snapshot>,
}

impl<T> Decided<T> {
    pub(crate) fn new(value: T) -> Self {
        Decided {
            value,
            appends: Vec::new(),
            leaves: StateCache::unbounded(),
            snapshots: Vec::new(),
        }
    }

    /// The same writes, worth `value`.
    pub(crate) fn with_value<U>(self, value: U) -> Decided<U> {
        Decided {
            value,
            appends: self.appends,
            leaves: self.leaves,
            snapshots: self.snapshots,
        }
    }

    /// Adds `events` for the stream of `loaded`, decided on it.
    pub(crate) fn write<A: Aggregate>(
        &mut self,
        executor: &CommandExecutor,
        loaded: &Loaded<A>,
        events: &[A::Event],
        context: &CommandContext,
    ) {
        let encoded: Vec<EncodedEvent> = events.iter().map(EncodedEvent::of).collect();
        let version = loaded.version + events.len() as i64;
        let state = fold_from(loaded.state.clone(), events);
        if let Some(snapshot) =
            executor.snapshot_due(&loaded.stream_id, loaded.version, version, &state)
        {
            self.snapshots.push(snapshot);
        }
        self.leaves.put(&loaded.stream_id, &state, version);
        self.appends.push(StreamAppend::new(
            loaded.stream_id.clone(),
            ExpectedVersion::Exact(loaded.version),
            context.new_events(&loaded.stream_id, &encoded),
        ));
    }

    /// Whether any stream gets an event.
    pub(crate) fn writes(&self) -> bool {
        self.appends.iter().any(|append| !append.events.is_empty())
    }
}

/// A command: reads its states and decides, without writing.
#[async_trait]
pub(crate) trait Decision: Sync {
    /// What the decision is worth to its caller once decided.
    type Decided: Send;
    /// What the caller gets back, once the decision is written or found in
    /// effect (`appended` is `None` then).
    type Outcome;
    type Error: Send;

    /// Decides on states read from `states`; a refusal is
    /// `ExecuteError::Domain`.
    async fn decide(
        &self,
        states: &mut States<'_>,
    ) -> Result<Decided<Self::Decided>, ExecuteError<Self::Error>>;

    fn outcome(&self, decided: Self::Decided, appended: Option<AppendResult>) -> Self::Outcome;
}

impl CommandExecutor {
    /// Runs `decision` until it is written or found in effect, starting on
    /// `first`: the loop of the module documentation, with the executor's
    /// retries on version conflicts around it.
    pub(crate) async fn run<D: Decision>(
        &self,
        decision: &D,
        first: Basis,
    ) -> Result<D::Outcome, ExecuteError<D::Error>> {
        self.with_retries(first, |basis| self.run_once(decision, basis))
            .await
    }

    async fn run_once<D: Decision>(
        &self,
        decision: &D,
        mut basis: Basis,
    ) -> Result<D::Outcome, ExecuteError<D::Error>> {
        loop {
            let mut states = States::new(self, None, basis);
            let decided = decision.decide(&mut states).await;
            let guessed = states.guessed();
            basis = Basis::Stored;
            let decided = match decided {
                Ok(decided) if decided.writes() => decided,
                _ if guessed => continue,
                Ok(decided) => return Ok(decision.outcome(decided.value, None)),
                Err(error) => return Err(error),
            };
            let result = self.store().append_to_streams(&decided.appends).await?;
            if !result.written {
                if guessed {
                    continue;
                }
                // A repeat of events stored at or before the versions read,
                // so already folded in.
                return Ok(decision.outcome(decided.value, None));
            }
            self.remember_all(&decided.leaves);
            self.save_snapshots(decided.snapshots).await;
            return Ok(decision.outcome(decided.value, Some(result)));
        }
    }
}
