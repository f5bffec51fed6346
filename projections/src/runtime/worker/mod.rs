//! One subscription's worker: take ownership, then catch up and follow the
//! log, handling each batch the way its kind of subscriber needs
//! (`projecting.rs`, `reacting.rs`), and carrying out operator requests
//! between batches (`operator_requests.rs`).
//!
//! Every write a worker commits for its subscription goes through its
//! checkpoint lease (see `ownership.rs`): once another process owns the
//! subscription, the next commit fails and the worker stops.

use std::collections::HashMap;
use std::time::Duration;

use event_store::{
    EventStore, LogCursor, LogFilter, RecordedEvent, SubscribeOptions, Subscription,
};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use self::operator_requests::RunningRebuild;
use super::check_ins::{CheckIn, CheckIns, Registration};
use super::error::RuntimeError;
use super::group_registry::GroupRegistry;
use super::ownership::Ownership;
use super::requests;
use super::retry::backoff;
use super::status::{self, SubscriptionState};
use super::{RuntimeOptions, Subscriber};
use crate::consumer_groups::Member;

mod operator_requests;
mod projecting;
mod reacting;

/// What a worker runs: which subscriber, which share of its log, as whom.
pub(crate) struct Assignment {
    pub(crate) subscriber: Subscriber,
    pub(crate) member: Member,
    pub(crate) owner: String,
    /// Who runs which member of a split subscription; `None` for one that
    /// is not split.
    pub(crate) registry: Option<GroupRegistry>,
    /// The runtime's check-ins, which every owner registers with.
    pub(crate) check_ins: CheckIns,
}

/// Runs one subscription (or one member of a split one) until `stopped`
/// turns true.
pub(crate) async fn run(
    store: EventStore,
    assignment: Assignment,
    options: RuntimeOptions,
    mut stopped: watch::Receiver<bool>,
) {
    let Assignment {
        subscriber,
        member,
        owner,
        registry,
        check_ins,
    } = assignment;
    let member_name = member.name();
    let name = member_name.as_str();
    let mut failures = 0;
    // A dropped `RuntimeHandle` stops the runtime too (`has_changed` errs).
    while !*stopped.borrow() && stopped.has_changed().is_ok() {
        if let Some(registry) = &registry {
            if !registry.prefers(&member).await {
                pause(&mut stopped, options.ownership_interval).await;
                continue;
            }
        }
        let (ownership, cursor) = match Ownership::try_acquire(&store, &member).await {
            Ok(Some(acquired)) => acquired,
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
        tracing::info!(subscription = name, %owner, epoch = ownership.lease().epoch(), "took ownership");
        let check_in = check_ins.register(&ownership, SubscriptionState::CatchingUp);
        let mut worker = Worker {
            store: store.clone(),
            subscriber: subscriber.clone(),
            member: member.clone(),
            member_name: member_name.clone(),
            registry: registry.clone(),
            options: options.clone(),
            owner: owner.clone(),
            ownership,
            check_in,
            cursor,
            blocked: HashMap::new(),
            caught_up: false,
            rebuild: None,
            stopped: stopped.clone(),
        };
        let outcome = worker.run().await;
        // Dropping the worker aborts a rebuild it had under way, and ends
        // its check-ins.
        let Worker { ownership, .. } = worker;
        ownership.release().await;
        match outcome {
            Err(RuntimeError::HandedOver) => {
                tracing::info!(subscription = name, %owner, "handed over to the process now preferred for it");
            }
            Ok(()) | Err(RuntimeError::Stopping) => {
                let _ = status::report(store.pool(), name, None, SubscriptionState::Stopped).await;
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(subscription = name, %error, "worker stopped; will take over again");
                pause(
                    &mut stopped,
                    backoff(failures, options.retry_base, options.outage_retry_max),
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

struct Worker {
    store: EventStore,
    subscriber: Subscriber,
    /// Its share of the subscriber's log, and that share's name (the
    /// subscriber's own when it is not split), which its checkpoint,
    /// status, parked events and requests are kept under.
    member: Member,
    member_name: String,
    registry: Option<GroupRegistry>,
    options: RuntimeOptions,
    owner: String,
    ownership: Ownership,
    check_in: Registration,
    cursor: LogCursor,
    /// Streams with parked events, each with its failing head's position.
    blocked: HashMap<String, i64>,
    /// Whether the worker has caught up with the log (for the state it
    /// reports): false after a full batch or a restart, until a short batch
    /// or a check-in that finds nothing after the cursor.
    caught_up: bool,
    /// A rebuild filling fresh tables in the background.
    rebuild: Option<RunningRebuild>,
    stopped: watch::Receiver<bool>,
}

impl Worker {
    fn name(&self) -> &str {
        &self.member_name
    }

    async fn run(&mut self) -> Result<(), RuntimeError> {
        self.adopt_parked_events().await?;
        self.blocked = super::parking::blocked_streams(self.store.pool(), self.name()).await?;
        let mut reported = self.state();
        self.check_in.report(reported);
        status::report(self.store.pool(), self.name(), Some(&self.owner), reported).await?;
        let mut subscription = self.subscribe();
        let mut submitted = requests::submitted();
        let mut stopped = self.stopped.clone();
        loop {
            let carry_out = tokio::select! {
                biased;
                _ = stopped.changed() => return Ok(()),
                // The runtime's check-in (`check_ins.rs`): ownership,
                // heartbeat and waiting requests of every owner at once.
                checked = self.check_in.next() => {
                    let CheckIn::Owner { requests_waiting } = checked else {
                        return Err(RuntimeError::LostOwnership);
                    };
                    // Only a worker that may be behind asks the log; an
                    // idle one that caught up costs nothing here.
                    if !self.caught_up {
                        self.caught_up = self.nothing_after_cursor().await?;
                    }
                    if let Some(registry) = &self.registry {
                        if !registry.prefers(&self.member).await {
                            return Err(RuntimeError::HandedOver);
                        }
                    }
                    requests_waiting
                }
                changed = submitted.changed() => changed.is_ok(),
                finished = operator_requests::wait_for_rebuild(&mut self.rebuild) => {
                    if self.finish_rebuild(finished).await.map_err(RuntimeError::or_lost_ownership)? {
                        subscription = self.subscribe();
                        self.caught_up = self.nothing_after_cursor().await?;
                    }
                    false
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
                    self.caught_up = batch.len() < self.options.batch_size;
                    self.handle_batch(batch).await.map_err(RuntimeError::or_lost_ownership)?;
                    false
                }
            };
            if carry_out
                && self
                    .carry_out_requests()
                    .await
                    .map_err(RuntimeError::or_lost_ownership)?
            {
                subscription = self.subscribe();
                self.caught_up = self.nothing_after_cursor().await?;
            }
            // A change of state is told at once, not at the next check-in.
            if self.state() != reported {
                reported = self.state();
                self.check_in.report(reported);
                status::report(self.store.pool(), self.name(), Some(&self.owner), reported).await?;
            }
        }
    }

    /// Takes over the parked events another layout of this subscription
    /// left for the streams this member reads (`parking.rs`).
    async fn adopt_parked_events(&self) -> Result<(), RuntimeError> {
        let mut transaction = self.store.pool().begin().await?;
        self.ownership
            .lease()
            .confirm(&mut *transaction)
            .await
            .map_err(|error| RuntimeError::from(error).or_lost_ownership())?;
        let adopted =
            super::parking::adopt_from_other_layouts(&mut *transaction, &self.member).await?;
        transaction.commit().await?;
        if adopted > 0 {
            tracing::info!(
                subscription = self.name(),
                adopted,
                "took over parked events of another layout"
            );
        }
        Ok(())
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

    /// Whether no event of this subscriber's lies after its cursor now.
    async fn nothing_after_cursor(&self) -> Result<bool, RuntimeError> {
        Ok(!self
            .store
            .has_events_after(self.cursor, &self.filter())
            .await?)
    }

    /// Rebuilding, catching up (the last batch was a full one) or running.
    fn state(&self) -> SubscriptionState {
        if self.rebuild.is_some() {
            SubscriptionState::Rebuilding
        } else if self.caught_up {
            SubscriptionState::Running
        } else {
            SubscriptionState::CatchingUp
        }
    }

    async fn handle_batch(&mut self, batch: Vec<RecordedEvent>) -> Result<(), RuntimeError> {
        let Some(last) = batch.last().map(RecordedEvent::cursor) else {
            return Ok(());
        };
        match self.subscriber.clone() {
            Subscriber::Projection(projection) => {
                self.project(projection.as_ref(), &batch, last).await?;
            }
            Subscriber::Reactor(reactor) => self.react(reactor, &batch, last).await?,
        }
        self.cursor = last;
        Ok(())
    }

    /// The events this worker reads: its subscriber's, in its partition.
    fn filter(&self) -> LogFilter {
        let filter = self.subscriber.filter();
        match self.member.partition {
            Some(partition) => filter.partitioned(partition),
            None => filter,
        }
    }

    fn crash_if_asked(&self, batch: &[RecordedEvent]) -> Result<(), RuntimeError> {
        match (&self.options.crash_before_checkpoint, batch.last()) {
            (Some(hook), Some(last)) if hook(self.name(), last) => Err(RuntimeError::InjectedCrash),
            _ => Ok(()),
        }
    }
}

impl Subscriber {
    /// The events this subscriber reads.
    pub(crate) fn filter(&self) -> LogFilter {
        match self.category() {
            Some(category) => LogFilter::Category(category.to_owned()),
            None => LogFilter::All,
        }
    }
}
