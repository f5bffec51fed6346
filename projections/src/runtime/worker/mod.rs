//! One subscription's worker: take ownership, then catch up and follow the
//! log, handling each event with retries, parking what keeps failing, and
//! carrying out operator requests between batches (`operator_requests.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use event_store::{
    EventStore, LogCursor, LogFilter, RecordedEvent, StoreError, SubscribeOptions, Subscription,
};
use futures::{FutureExt, StreamExt};
use sqlx::PgConnection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::operator_requests::wait_for_rebuild;
use super::ownership::Ownership;
use super::retry::backoff;
use super::{parking, status, RuntimeOptions, Subscriber};
use crate::{HandlerError, Projection, Reactor};

mod operator_requests;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RuntimeError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("lost ownership of the subscription")]
    LostOwnership,
    #[error("stopped by the crash hook before saving a checkpoint")]
    InjectedCrash,
    #[error("rebuild failed: {0}")]
    Rebuild(String),
    #[error("the log subscription ended")]
    SubscriptionEnded,
}

/// Runs one subscription until `stopped` turns true.
pub(crate) async fn run(
    store: EventStore,
    subscriber: Subscriber,
    options: RuntimeOptions,
    owner: String,
    mut stopped: watch::Receiver<bool>,
) {
    let name = subscriber.name();
    let mut failures = 0;
    // A dropped `RuntimeHandle` stops the runtime too (`has_changed` errs).
    while !*stopped.borrow() && stopped.has_changed().is_ok() {
        let ownership = match Ownership::try_acquire(&store, name).await {
            Ok(Some(ownership)) => ownership,
            Ok(None) => {
                pause(&mut stopped, options.ownership_interval).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(subscription = name, %error, "cannot try to take ownership");
                pause(&mut stopped, options.ownership_interval).await;
                continue;
            }
        };
        tracing::info!(subscription = name, %owner, "took ownership");
        let mut worker = Worker {
            store: store.clone(),
            subscriber: subscriber.clone(),
            options: options.clone(),
            owner: owner.clone(),
            ownership,
            cursor: LogCursor::START,
            blocked: HashMap::new(),
            rebuild: None,
        };
        let outcome = worker.run(&mut stopped).await;
        worker.ownership.release().await;
        match outcome {
            Ok(()) => {
                let _ = status::report(store.pool(), name, None, status::STOPPED).await;
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(subscription = name, %error, "worker stopped; will take over again");
                pause(
                    &mut stopped,
                    backoff(failures, options.retry_base, options.retry_max),
                )
                .await;
            }
        }
    }
}

/// Waits `delay`, or less if the runtime is stopping.
async fn pause(stopped: &mut watch::Receiver<bool>, delay: Duration) {
    tokio::select! {
        _ = stopped.changed() => {}
        _ = tokio::time::sleep(delay) => {}
    }
}

type RebuildTask = JoinHandle<Result<(PgConnection, LogCursor), RuntimeError>>;

struct Worker {
    store: EventStore,
    subscriber: Subscriber,
    options: RuntimeOptions,
    owner: String,
    ownership: Ownership,
    cursor: LogCursor,
    /// Streams with parked events, each with its failing head's position.
    blocked: HashMap<String, i64>,
    /// A rebuild filling fresh tables in the background, with its request id.
    rebuild: Option<(i64, RebuildTask)>,
}

impl Worker {
    fn name(&self) -> &'static str {
        self.subscriber.name()
    }

    async fn run(&mut self, stopped: &mut watch::Receiver<bool>) -> Result<(), RuntimeError> {
        self.cursor = self
            .store
            .load_checkpoint(self.name())
            .await?
            .unwrap_or(LogCursor::START);
        self.blocked = parking::blocked_streams(self.store.pool(), self.name()).await?;
        let mut state = self.report_progress().await?;
        let mut subscription = self.subscribe();
        let mut ownership_check = tokio::time::interval(self.options.ownership_interval);
        let mut request_check = tokio::time::interval(self.options.request_interval);
        loop {
            tokio::select! {
                biased;
                _ = stopped.changed() => return Ok(()),
                _ = ownership_check.tick() => {
                    if !self.ownership.still_held().await {
                        return Err(RuntimeError::LostOwnership);
                    }
                    state = self.report_progress().await?;
                }
                _ = request_check.tick() => {
                    if self.carry_out_requests().await? {
                        subscription = self.subscribe();
                    }
                }
                finished = wait_for_rebuild(&mut self.rebuild) => {
                    if self.finish_rebuild(finished).await? {
                        subscription = self.subscribe();
                    }
                }
                next = subscription.next() => {
                    let Some(first) = next else {
                        return Err(RuntimeError::SubscriptionEnded);
                    };
                    let mut batch = vec![first];
                    while batch.len() < self.options.batch_size {
                        match subscription.next().now_or_never() {
                            Some(Some(event)) => batch.push(event),
                            _ => break,
                        }
                    }
                    self.handle_batch(batch).await?;
                    if state != status::RUNNING {
                        state = self.report_progress().await?;
                    }
                }
            }
        }
    }

    fn filter(&self) -> LogFilter {
        match &self.subscriber {
            Subscriber::Projection(projection) => {
                LogFilter::Category(projection.category().to_owned())
            }
            Subscriber::Reactor(reactor) => reactor.category().map_or(LogFilter::All, |category| {
                LogFilter::Category(category.to_owned())
            }),
        }
    }

    fn subscribe(&self) -> Subscription {
        self.store.subscribe(
            self.cursor,
            SubscribeOptions {
                filter: self.filter(),
                batch_size: i64::try_from(self.options.batch_size).unwrap_or(500),
                ..SubscribeOptions::default()
            },
        )
    }

    /// Reports the state (catching up, running or rebuilding) with a
    /// heartbeat; returns it.
    async fn report_progress(&self) -> Result<&'static str, RuntimeError> {
        let state = if self.rebuild.is_some() {
            status::REBUILDING
        } else if self
            .store
            .has_events_after(self.cursor, &self.filter())
            .await?
        {
            status::CATCHING_UP
        } else {
            status::RUNNING
        };
        status::report(self.store.pool(), self.name(), Some(&self.owner), state).await?;
        Ok(state)
    }

    async fn handle_batch(&mut self, batch: Vec<RecordedEvent>) -> Result<(), RuntimeError> {
        let Some(last) = batch.last().map(RecordedEvent::cursor) else {
            return Ok(());
        };
        match self.subscriber.clone() {
            Subscriber::Projection(projection) => {
                if !self
                    .project_batch(projection.as_ref(), &batch, last)
                    .await?
                {
                    for event in &batch {
                        self.project_one(projection.as_ref(), event).await?;
                    }
                }
            }
            Subscriber::Reactor(reactor) => {
                self.react_to_batch(reactor, &batch).await?;
                self.crash_if_asked(&batch)?;
                self.store.save_checkpoint(self.name(), last).await?;
            }
        }
        self.cursor = last;
        Ok(())
    }

    /// Handles a reactor's batch: each stream's events in order, different
    /// streams concurrently (their effects are independent). Failures are
    /// parked afterwards, with the later events of their stream behind them.
    async fn react_to_batch(
        &mut self,
        reactor: Arc<dyn Reactor>,
        batch: &[RecordedEvent],
    ) -> Result<(), RuntimeError> {
        // Owned groups: futures that borrow across `buffer_unordered` trip
        // the compiler's `Send` inference inside `tokio::spawn`.
        let mut groups: Vec<(Option<i64>, Vec<RecordedEvent>)> = Vec::new();
        let mut group_of: HashMap<&str, usize> = HashMap::new();
        for event in batch {
            let index = *group_of.entry(&event.stream_id).or_insert_with(|| {
                groups.push((self.blocked.get(&event.stream_id).copied(), Vec::new()));
                groups.len() - 1
            });
            groups[index].1.push(event.clone());
        }
        let name = self.name();
        let concurrency = self.options.reactor_concurrency.max(1);
        let outcomes: Vec<Vec<(RecordedEvent, Outcome)>> = futures::stream::iter(groups)
            .map(|(blocked_by, group)| {
                let reactor = reactor.clone();
                let options = self.options.clone();
                async move {
                    let mut outcomes = Vec::with_capacity(group.len());
                    let mut failed_head = blocked_by;
                    for event in group {
                        if let Some(head) = failed_head {
                            outcomes.push((event, Outcome::Waiting(head)));
                            continue;
                        }
                        match retry(&options, name, || reactor.react(&event)).await {
                            Ok(()) => outcomes.push((event, Outcome::Handled)),
                            Err((attempts, error)) => {
                                failed_head = Some(event.position);
                                outcomes.push((event, Outcome::Failed(attempts, error)));
                            }
                        }
                    }
                    outcomes
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut outcomes: Vec<(RecordedEvent, Outcome)> = outcomes.into_iter().flatten().collect();
        outcomes.sort_by_key(|(event, _)| event.cursor());
        for (event, outcome) in outcomes {
            match outcome {
                Outcome::Handled => {}
                Outcome::Waiting(head) => {
                    parking::park_behind(self.store.pool(), name, &event, head).await?;
                }
                Outcome::Failed(attempts, error) => {
                    self.park_failed(&event, attempts, &error).await?;
                }
            }
        }
        Ok(())
    }

    /// The whole batch and its checkpoint in one transaction. False if an
    /// event failed: nothing was written, and the caller goes one by one.
    async fn project_batch(
        &mut self,
        projection: &dyn Projection,
        batch: &[RecordedEvent],
        last: LogCursor,
    ) -> Result<bool, RuntimeError> {
        let mut transaction = self.store.pool().begin().await?;
        let mut unblocked = Vec::new();
        for event in batch {
            match self.blocked.get(&event.stream_id).copied() {
                Some(head) => {
                    parking::park_behind(&mut *transaction, self.name(), event, head).await?;
                }
                None => unblocked.push(event.clone()),
            }
        }
        if projection
            .apply_batch(&mut transaction, &unblocked)
            .await
            .is_err()
        {
            transaction.rollback().await?;
            return Ok(false);
        }
        self.crash_if_asked(batch)?;
        event_store::save_checkpoint(&mut *transaction, self.name(), last).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// One event with retries, its effect and checkpoint in one transaction.
    async fn project_one(
        &mut self,
        projection: &dyn Projection,
        event: &RecordedEvent,
    ) -> Result<(), RuntimeError> {
        if let Some(head) = self.blocked.get(&event.stream_id).copied() {
            let mut transaction = self.store.pool().begin().await?;
            parking::park_behind(&mut *transaction, self.name(), event, head).await?;
            event_store::save_checkpoint(&mut *transaction, self.name(), event.cursor()).await?;
            transaction.commit().await?;
            return Ok(());
        }
        let store = self.store.clone();
        let name = self.name();
        let outcome = self
            .with_retries(|| {
                let store = store.clone();
                async move {
                    let mut transaction = store.pool().begin().await?;
                    projection.apply(&mut transaction, event).await?;
                    event_store::save_checkpoint(&mut *transaction, name, event.cursor())
                        .await
                        .map_err(HandlerError::new)?;
                    transaction.commit().await?;
                    Ok(())
                }
            })
            .await;
        if let Err((attempts, error)) = outcome {
            self.park_failed(event, attempts, &error).await?;
        }
        Ok(())
    }

    async fn with_retries<F, Fut>(&self, attempt: F) -> Result<(), (u32, HandlerError)>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), HandlerError>>,
    {
        retry(&self.options, self.name(), attempt).await
    }

    /// Parks a failing event as the head of its stream, with the checkpoint
    /// past it, in one transaction.
    async fn park_failed(
        &mut self,
        event: &RecordedEvent,
        attempts: u32,
        error: &HandlerError,
    ) -> Result<(), RuntimeError> {
        tracing::warn!(
            subscription = self.name(),
            position = event.position,
            stream_id = %event.stream_id,
            %error,
            "parking an event after {attempts} attempts"
        );
        let mut transaction = self.store.pool().begin().await?;
        parking::park(
            &mut *transaction,
            self.name(),
            event,
            attempts,
            &error.0,
            None,
        )
        .await?;
        event_store::save_checkpoint(&mut *transaction, self.name(), event.cursor()).await?;
        transaction.commit().await?;
        self.blocked.insert(event.stream_id.clone(), event.position);
        Ok(())
    }

    fn crash_if_asked(&self, batch: &[RecordedEvent]) -> Result<(), RuntimeError> {
        match (&self.options.crash_before_checkpoint, batch.last()) {
            (Some(hook), Some(last)) if hook(self.name(), last) => Err(RuntimeError::InjectedCrash),
            _ => Ok(()),
        }
    }
}

/// What became of one event of a reactor's batch.
enum Outcome {
    Handled,
    /// Not tried: its stream waits behind the failed event at this position.
    Waiting(i64),
    Failed(u32, HandlerError),
}

/// Runs `attempt` until it succeeds or `max_attempts` is reached; the
/// error is then returned with the number of attempts made.
async fn retry<F, Fut>(
    options: &RuntimeOptions,
    subscription: &str,
    mut attempt: F,
) -> Result<(), (u32, HandlerError)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), HandlerError>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(error) if attempts >= options.max_attempts => return Err((attempts, error)),
            Err(error) => {
                tracing::debug!(subscription, attempts, %error, "handler failed; retrying");
                tokio::time::sleep(backoff(attempts, options.retry_base, options.retry_max)).await;
            }
        }
    }
}

impl From<RuntimeError> for HandlerError {
    fn from(error: RuntimeError) -> Self {
        HandlerError::new(error)
    }
}
