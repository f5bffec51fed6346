//! [`CommandExecutor`]: load, decide, append with `Exact(version)`, retry.

use std::future::Future;
use std::time::Duration;

use aggregates::{fold_from, Aggregate, EncodedEvent};
use event_store::{AsOf, EventStore, ExpectedVersion, Snapshot, StoreError};
use rand::Rng;

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
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            max_attempts: 30,
            snapshot_every: Some(100),
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
}

/// Executes commands against aggregates stored in the event store.
#[derive(Debug, Clone)]
pub struct CommandExecutor {
    store: EventStore,
    options: ExecutorOptions,
}

/// Retries back off with jitter, so that writers who collided do not
/// collide again in lockstep.
const RETRY_BASE: Duration = Duration::from_millis(1);
const RETRY_MAX: Duration = Duration::from_millis(40);

impl CommandExecutor {
    pub fn new(store: EventStore, options: ExecutorOptions) -> Self {
        CommandExecutor { store, options }
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

    /// Loads the aggregate of `stream_id`, decides `command` and appends
    /// the events expecting the version it loaded; on a conflict, starts
    /// over (up to `max_attempts`).
    #[tracing::instrument(skip(self, command, context), fields(correlation_id = %context.correlation_id))]
    pub async fn execute<A: Aggregate>(
        &self,
        stream_id: &str,
        command: &A::Command,
        context: &CommandContext,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        self.with_retries(|| async move {
            let loaded = self.load::<A>(stream_id).await?;
            let events = loaded.state.decide(command).map_err(ExecuteError::Domain)?;
            if events.is_empty() {
                return Ok(Executed {
                    state: loaded.state,
                    version: loaded.version,
                    events,
                });
            }
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
                // A repeat of events already stored, so already folded in.
                return Ok(Executed {
                    state: loaded.state,
                    version: loaded.version,
                    events: Vec::new(),
                });
            }
            let version = result
                .stream_version(stream_id)
                .unwrap_or(loaded.version + events.len() as i64);
            let state = fold_from(loaded.state, &events);
            self.snapshot_if_due(stream_id, loaded.version, version, &state)
                .await;
            Ok(Executed {
                state,
                version,
                events,
            })
        })
        .await
    }

    /// Runs `attempt` until it does not fail with a version conflict, at
    /// most `max_attempts` times.
    pub(crate) async fn with_retries<T, E, F, Fut>(
        &self,
        mut attempt: F,
    ) -> Result<T, ExecuteError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ExecuteError<E>>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match attempt().await {
                Err(ExecuteError::Store(StoreError::WrongExpectedVersion {
                    stream_id, ..
                })) => {
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
