//! [`CommandExecutor`]: load, decide, append with `Exact(version)`, retry.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aggregates::{fold_from, Aggregate, EncodedEvent};
use event_store::{AppendedEvent, AsOf, EventStore, ExpectedVersion, Snapshot, StoreError};
use rand::Rng;

use crate::cache::StateCache;
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
    /// state; only a written decision is trusted from it.
    #[tracing::instrument(skip(self, command, context), fields(correlation_id = %context.correlation_id))]
    pub async fn execute<A: Aggregate>(
        &self,
        stream_id: &str,
        command: &A::Command,
        context: &CommandContext,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        self.with_retries(Basis::Cached, |basis| {
            self.execute_once(stream_id, command, context, basis)
        })
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
        self.with_retries(Basis::Presumed, |basis| {
            self.execute_once(stream_id, command, context, basis)
        })
        .await
    }

    async fn execute_once<A: Aggregate>(
        &self,
        stream_id: &str,
        command: &A::Command,
        context: &CommandContext,
        mut basis: Basis,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        loop {
            let (loaded, used) = self.state_for_decision::<A>(stream_id, basis).await?;
            // Only an append checks the state decided on; anything else
            // decided on a guess is decided again on the stored state.
            let guessed = used != Basis::Stored;
            basis = Basis::Stored;
            let events = match loaded.state.decide(command) {
                Ok(events) if !events.is_empty() => events,
                _ if guessed => continue,
                Ok(_) => return Ok(Executed::unchanged(loaded)),
                Err(error) => return Err(ExecuteError::Domain(error)),
            };
            let encoded: Vec<EncodedEvent> = events.iter().map(EncodedEvent::of).collect();
            let result = self
                .store
                .append_to_stream(
                    stream_id,
                    ExpectedVersion::Exact(loaded.version),
                    context.new_events(stream_id, &encoded),
                )
                .await?;
            if !result.written {
                if guessed {
                    continue;
                }
                // A repeat of events stored at or before the version
                // loaded, so already folded in.
                return Ok(Executed::unchanged(loaded));
            }
            let version = result
                .stream_version(stream_id)
                .unwrap_or(loaded.version + events.len() as i64);
            let state = fold_from(loaded.state, &events);
            self.cache.put(stream_id, &state, version);
            self.snapshot_if_due(stream_id, loaded.version, version, &state)
                .await;
            return Ok(Executed {
                state,
                version,
                events,
                appended: result.events,
            });
        }
    }

    /// The state to decide on, and where it came from in the end.
    pub(crate) async fn state_for_decision<A: Aggregate>(
        &self,
        stream_id: &str,
        basis: Basis,
    ) -> Result<(Loaded<A>, Basis), ExecuteError<A::Error>> {
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
        let loaded = self.load::<A>(stream_id).await?;
        self.cache.put(stream_id, &loaded.state, loaded.version);
        Ok((loaded, Basis::Stored))
    }

    /// Remembers a state just written, for the next command on its stream.
    pub(crate) fn remember<A: Aggregate>(&self, stream_id: &str, state: &A, version: i64) {
        self.cache.put(stream_id, state, version);
    }

    /// Remembers every state of `decided` (a committed decision batch).
    pub(crate) fn remember_all(&self, decided: &StateCache) {
        self.cache.absorb(decided);
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

    /// Saves a snapshot when the append from `old_version` to `new_version`
    /// crossed a multiple of `snapshot_every`. A failure is logged, not
    /// returned: the command has already succeeded.
    pub(crate) async fn snapshot_if_due<A: Aggregate>(
        &self,
        stream_id: &str,
        old_version: i64,
        new_version: i64,
        state: &A,
    ) {
        let Some(every) = self.options.snapshot_every.filter(|every| *every > 0) else {
            return;
        };
        if new_version / every == old_version / every {
            return;
        }
        let saved = match serde_json::to_value(state) {
            Ok(state) => {
                self.store
                    .save_snapshot(&Snapshot {
                        stream_id: stream_id.to_owned(),
                        stream_version: new_version,
                        schema_version: A::SNAPSHOT_VERSION,
                        state,
                    })
                    .await
            }
            Err(error) => {
                tracing::warn!(%stream_id, %error, "state cannot be serialized for a snapshot");
                return;
            }
        };
        if let Err(error) = saved {
            tracing::warn!(%stream_id, %error, "could not save a snapshot");
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
