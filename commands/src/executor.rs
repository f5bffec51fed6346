//! [`CommandExecutor`]: load, decide, append with `Exact(version)`, retry.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aggregates::{fold_from, Aggregate};
use async_trait::async_trait;
use event_store::{AppendResult, AppendedEvent, AsOf, EventStore, Snapshot, StoreError};
use rand::Rng;

use crate::cache::StateCache;
use crate::decision::{Decided, Decision, States};
use crate::loading::{load, load_as_of};
use crate::{CommandContext, ExecuteError, Loaded};

#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Attempts (load, decide, append) before a version conflict is given
    /// up as [`ExecuteError::Conflict`].
    pub max_attempts: u32,
    /// Save a snapshot each time a stream crosses a multiple of this many
    /// events; `None` never snapshots (and never reads snapshots).
    pub snapshot_every: Option<i64>,
    /// How many aggregate states to keep in memory between commands
    /// (0: none); see `cache.rs` for why a stale one is harmless.
    pub cached_states: usize,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            max_attempts: 30,
            snapshot_every: Some(100),
            cached_states: 10_000,
        }
    }
}

/// The outcome of a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed<A: Aggregate> {
    /// The aggregate after the command.
    pub state: A,
    pub version: i64,
    /// The events the command appended: empty when it was already in
    /// effect (the aggregate decided nothing, or the same events were
    /// already stored).
    pub events: Vec<A::Event>,
    /// Where those events landed in the log, with their times.
    pub appended: Vec<AppendedEvent>,
}

impl<A: Aggregate> Executed<A> {
    /// The outcome of a command that wrote nothing.
    fn unchanged(loaded: Loaded<A>) -> Self {
        Executed {
            state: loaded.state,
            version: loaded.version,
            events: Vec::new(),
            appended: Vec::new(),
        }
    }
}

/// Executes commands against aggregates stored in the event store.
#[derive(Debug, Clone)]
pub struct CommandExecutor {
    store: EventStore,
    options: ExecutorOptions,
    cache: Arc<StateCache>,
}

/// Where the state a command is decided on comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// The stored stream (latest snapshot plus later events).
    Stored,
    /// The cached state if there is one, else the stored stream.
    Cached,
    /// The empty state at version 0, not read: for a stream the command
    /// creates under a fresh id.
    Presumed,
}

/// Retries back off with jitter, so that writers who collided do not
/// collide again in lockstep.
const RETRY_BASE: Duration = Duration::from_millis(1);
const RETRY_MAX: Duration = Duration::from_millis(40);

impl CommandExecutor {
    pub fn new(store: EventStore, options: ExecutorOptions) -> Self {
        let cache = Arc::new(StateCache::new(options.cached_states));
        CommandExecutor {
            store,
            options,
            cache,
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// The current state of an aggregate.
    pub async fn load<A: Aggregate>(
        &self,
        stream_id: &str,
    ) -> Result<Loaded<A>, ExecuteError<A::Error>> {
        load(
            &self.store,
            stream_id,
            self.options.snapshot_every.is_some(),
        )
        .await
    }

    /// The state of an aggregate as it was at a point in its past.
    pub async fn load_as_of<A: Aggregate>(
        &self,
        stream_id: &str,
        as_of: AsOf,
    ) -> Result<Loaded<A>, ExecuteError<A::Error>> {
        load_as_of(&self.store, stream_id, as_of).await
    }

    /// Decides `command` on the aggregate of `stream_id` and appends the
    /// events expecting the version decided on; on a conflict, reloads and
    /// starts over (up to `max_attempts`). The first try may use a cached
    /// state; only a written decision is trusted from it (`decision.rs`).
    #[tracing::instrument(skip(self, command, context), fields(correlation_id = %context.correlation_id))]
    pub async fn execute<A: Aggregate>(
        &self,
        stream_id: &str,
        command: &A::Command,
        context: &CommandContext,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        self.run(
            &Execute::<A>::new(stream_id, command, context),
            Basis::Cached,
        )
        .await
    }

    /// Like [`execute`](Self::execute) for a command that creates its
    /// stream under an id nobody has used yet (a new order): decides on the
    /// empty state without reading, and appends expecting no stream. If the
    /// stream exists after all, it is loaded and the command decided again,
    /// so the outcome is the same as `execute`'s.
    #[tracing::instrument(skip(self, command, context), fields(correlation_id = %context.correlation_id))]
    pub async fn execute_new<A: Aggregate>(
        &self,
        stream_id: &str,
        command: &A::Command,
        context: &CommandContext,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        self.run(
            &Execute::<A>::new(stream_id, command, context),
            Basis::Presumed,
        )
        .await
    }

    /// The state to decide on, and where it came from in the end.
    pub(crate) async fn state_for_decision<A: Aggregate, E>(
        &self,
        stream_id: &str,
        basis: Basis,
    ) -> Result<(Loaded<A>, Basis), ExecuteError<E>> {
        let guess = match basis {
            Basis::Stored => None,
            Basis::Cached => self.cache.get::<A>(stream_id),
            Basis::Presumed => Some(Loaded {
                stream_id: stream_id.to_owned(),
                state: A::default(),
                version: 0,
            }),
        };
        if let Some(guess) = guess {
            return Ok((guess, basis));
        }
        let loaded = load(
            &self.store,
            stream_id,
            self.options.snapshot_every.is_some(),
        )
        .await?;
        self.cache.put(stream_id, &loaded.state, loaded.version);
        Ok((loaded, Basis::Stored))
    }

    /// Remembers every state of `decided` (a committed decision batch).
    pub(crate) fn remember_all(&self, decided: &StateCache) {
        self.cache.absorb(decided);
    }

    /// Forgets the kept states of `stream_ids`, which a refused append
    /// showed may be stale: the next decision on them reads them.
    pub(crate) fn forget<'s>(&self, stream_ids: impl IntoIterator<Item = &'s str>) {
        for stream_id in stream_ids {
            self.cache.forget(stream_id);
        }
    }

    /// Runs `attempt` until it does not fail with a version conflict, at
    /// most `max_attempts` times. The first try decides on `first`; if that
    /// may be a guess (cached or presumed), a conflict on it is retried at
    /// once on the stored state, without counting as an attempt.
    pub(crate) async fn with_retries<T, E, F, Fut>(
        &self,
        first: Basis,
        mut attempt: F,
    ) -> Result<T, ExecuteError<E>>
    where
        F: FnMut(Basis) -> Fut,
        Fut: Future<Output = Result<T, ExecuteError<E>>>,
    {
        let mut attempts = 0;
        let mut basis = first;
        loop {
            let outcome = attempt(basis).await;
            let guessed = basis != Basis::Stored;
            basis = Basis::Stored;
            match outcome {
                // A stale guess costs neither an attempt nor a wait. Events
                // decided on it can also clash by id with those stored,
                // which the stored state would not have decided.
                Err(ExecuteError::Store(
                    StoreError::WrongExpectedVersion { .. }
                    | StoreError::EventIdConflict { .. }
                    | StoreError::PartialRepeat,
                )) if guessed => continue,
                Err(ExecuteError::Store(StoreError::WrongExpectedVersion {
                    stream_id, ..
                })) => {
                    attempts += 1;
                    if attempts >= self.options.max_attempts {
                        return Err(ExecuteError::Conflict {
                            stream_id,
                            attempts,
                        });
                    }
                    tokio::time::sleep(retry_delay(attempts)).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// The snapshot to save when an append from `old_version` to
    /// `new_version` crosses a multiple of `snapshot_every`.
    pub(crate) fn snapshot_due<A: Aggregate>(
        &self,
        stream_id: &str,
        old_version: i64,
        new_version: i64,
        state: &A,
    ) -> Option<Snapshot> {
        let every = self.options.snapshot_every.filter(|every| *every > 0)?;
        if new_version / every == old_version / every {
            return None;
        }
        match serde_json::to_value(state) {
            Ok(state) => Some(Snapshot {
                stream_id: stream_id.to_owned(),
                stream_version: new_version,
                schema_version: A::SNAPSHOT_VERSION,
                state,
            }),
            Err(error) => {
                tracing::warn!(%stream_id, %error, "state cannot be serialized for a snapshot");
                None
            }
        }
    }

    /// Saves snapshots of committed states. A failure is logged, not
    /// returned: the command has already succeeded.
    pub(crate) async fn save_snapshots(&self, snapshots: Vec<Snapshot>) {
        for snapshot in snapshots {
            if let Err(error) = self.store.save_snapshot(&snapshot).await {
                tracing::warn!(stream_id = %snapshot.stream_id, %error, "could not save a snapshot");
            }
        }
    }
}

/// [`CommandExecutor::execute`]'s command: one aggregate.
pub(crate) struct Execute<'a, A: Aggregate> {
    stream_id: &'a str,
    command: &'a A::Command,
    context: &'a CommandContext,
}

impl<'a, A: Aggregate> Execute<'a, A> {
    pub(crate) fn new(
        stream_id: &'a str,
        command: &'a A::Command,
        context: &'a CommandContext,
    ) -> Self {
        Execute {
            stream_id,
            command,
            context,
        }
    }
}

#[async_trait]
impl<A: Aggregate> Decision for Execute<'_, A> {
    /// The state decided on, and the events decided.
    type Decided = (Loaded<A>, Vec<A::Event>);
    type Outcome = Executed<A>;
    type Error = A::Error;

    async fn decide(
        &self,
        states: &mut States<'_>,
    ) -> Result<Decided<Self::Decided>, ExecuteError<A::Error>> {
        let loaded = states.get::<A, A::Error>(self.stream_id).await?;
        let events = loaded
            .state
            .decide(self.command)
            .map_err(ExecuteError::Domain)?;
        let mut decided = Decided::new(());
        decided.write(states.executor(), &loaded, &events, self.context);
        Ok(decided.with_value((loaded, events)))
    }

    fn outcome(
        &self,
        (loaded, events): Self::Decided,
        appended: Option<AppendResult>,
    ) -> Executed<A> {
        let Some(result) = appended else {
            return Executed::unchanged(loaded);
        };
        let version = result
            .stream_version(self.stream_id)
            .unwrap_or(loaded.version + events.len() as i64);
        Executed {
            state: fold_from(loaded.state, &events),
            version,
            events,
            appended: result.events,
        }
    }
}

fn retry_delay(attempt: u32) -> Duration {
    let ceiling = RETRY_BASE
        .saturating_mul(1 << attempt.min(10))
        .min(RETRY_MAX);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::thread_rng().gen_range(0..=micros))
}
