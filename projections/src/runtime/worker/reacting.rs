//! A reactor's batches. One the reactor decides at once is appended with
//! its checkpoint in one fenced transaction (`fenced_commit.rs`). Events it
//! left unfinished, and every event of a batch it cannot decide at once,
//! go one by one: each stream's events in order, different streams
//! concurrently (their effects are independent), then the checkpoint and
//! whatever must be parked in one fenced transaction. Effects themselves go
//! through `commands` with ids derived from the source event, so a batch
//! handled twice (a crash before the checkpoint, a stale owner) has the
//! effect of one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use commands::DecisionBatch;
use event_store::{LogCursor, RecordedEvent};
use futures::StreamExt;
use tracing::Instrument;

use super::Worker;
use crate::reaction_span::reaction_span;
use crate::runtime::error::RuntimeError;
use crate::runtime::fenced_commit::{Appended, FencedCommit};
use crate::runtime::parking;
use crate::runtime::retry::{is_fencing, retry_after, GaveUp};
use crate::{HandlerError, Reactor};

/// What became of one event of a reactor's batch.
enum Outcome {
    Handled,
    /// Not tried: its stream waits behind the failed event at this position.
    Waiting(i64),
    Failed(u32, HandlerError),
    /// Left for the next owner: this one is stopping or was fenced.
    Interrupted(RuntimeError),
}

/// What deciding a whole batch at once came to.
enum AtOnce {
    /// Every effect and the checkpoint are committed.
    Committed,
    /// Some effects are committed; these events (by position, with how
    /// they failed) are left for event-by-event handling.
    Partly(Vec<(i64, HandlerError)>),
    /// Nothing was committed: the batch goes event by event.
    NotAtAll,
}

impl Worker {
    pub(super) async fn react(
        &mut self,
        reactor: Arc<dyn Reactor>,
        batch: &[RecordedEvent],
        last: LogCursor,
    ) -> Result<(), RuntimeError> {
        let mut one_by_one = batch.to_vec();
        let mut failed_before = HashMap::new();
        // A stream waiting behind a parked event needs the per-event path,
        // which parks what follows it.
        if !batch
            .iter()
            .any(|event| self.blocked.contains_key(&event.stream_id))
        {
            match self.react_at_once(reactor.as_ref(), batch, last).await? {
                AtOnce::Committed => return Ok(()),
                AtOnce::Partly(unfinished) => {
                    (one_by_one, failed_before) = unfinished_part(batch, unfinished);
                }
                AtOnce::NotAtAll => {}
            }
        }
        let mut outcomes = self
            .react_by_stream(reactor, &one_by_one, failed_before)
            .await;
        outcomes.sort_by_key(|(event, _)| event.cursor());
        let mut to_park = Vec::new();
        for (event, outcome) in outcomes {
            match outcome {
                Outcome::Handled => {}
                Outcome::Interrupted(error) => return Err(error),
                Outcome::Waiting(head) => to_park.push((event, None, head)),
                Outcome::Failed(attempts, error) => {
                    tracing::warn!(
                        subscription = self.name(),
                        position = event.position,
                        stream_id = %event.stream_id,
                        %error,
                        "parking an event after {attempts} attempts"
                    );
                    let position = event.position;
                    to_park.push((event, Some((attempts, error)), position));
                }
            }
        }
        self.crash_if_asked(batch)?;
        let mut transaction = self.store.pool().begin().await?;
        self.ownership
            .lease()
            .advance(&mut *transaction, last)
            .await?;
        for (event, failure, head) in &to_park {
            match failure {
                Some((attempts, error)) => {
                    let error = error.to_string();
                    parking::park(
                        &mut *transaction,
                        self.name(),
                        event,
                        *attempts,
                        &error,
                        None,
                    )
                    .await?;
                }
                None => parking::park_behind(&mut *transaction, self.name(), event, *head).await?,
            }
        }
        transaction.commit().await?;
        for (event, failure, _) in to_park {
            if failure.is_some() {
                self.blocked.insert(event.stream_id, event.position);
            }
        }
        Ok(())
    }

    /// Decides the whole batch and commits its effects with the
    /// checkpoint. A refused append (a stale guess: the inventory and
    /// fulfilment reactors both write the SKU streams, so under load one's
    /// batch often meets the other's versions) is decided once more on
    /// states read again (a refusal makes the executor forget the batch's
    /// streams), unless effects outside the store already followed the
    /// first decision; then, or after a second refusal, event by event.
    async fn react_at_once(
        &mut self,
        reactor: &dyn Reactor,
        batch: &[RecordedEvent],
        last: LogCursor,
    ) -> Result<AtOnce, RuntimeError> {
        for _ in 0..2 {
            let early = FencedCommit::new(self.store.clone(), self.ownership.lease().clone());
            match reactor.decide_batch(batch, &early).await {
                Some(Ok(decided)) if decided.unfinished.is_empty() => {
                    if self.commit_decisions(decided.effects, batch, last).await? {
                        return Ok(AtOnce::Committed);
                    }
                    if early.used() {
                        return Ok(AtOnce::NotAtAll);
                    }
                }
                Some(Ok(decided)) => {
                    // What completed is committed now; the rest is retried
                    // event by event, before the checkpoint.
                    return Ok(match early.append(decided.effects, None).await? {
                        Appended::Committed => AtOnce::Partly(decided.unfinished),
                        Appended::Refused(_) => AtOnce::NotAtAll,
                    });
                }
                Some(Err(error)) if is_fencing(&error) => return Err(RuntimeError::LostOwnership),
                Some(Err(error)) => {
                    tracing::debug!(
                        subscription = self.name(),
                        %error,
                        "a batch could not be decided at once; handling its events one by one"
                    );
                    return Ok(AtOnce::NotAtAll);
                }
                None => return Ok(AtOnce::NotAtAll),
            }
        }
        Ok(AtOnce::NotAtAll)
    }

    /// Appends a batch's decisions and advances the checkpoint in one
    /// transaction. False when the append was refused (a stale guess, a
    /// repeat after a crash): nothing is written, and the caller handles
    /// the batch event by event.
    async fn commit_decisions(
        &mut self,
        decisions: DecisionBatch,
        batch: &[RecordedEvent],
        last: LogCursor,
    ) -> Result<bool, RuntimeError> {
        self.crash_if_asked(batch)?;
        let fenced = FencedCommit::new(self.store.clone(), self.ownership.lease().clone());
        match fenced.append(decisions, Some(last)).await? {
            Appended::Committed => Ok(true),
            Appended::Refused(error) => {
                tracing::debug!(
                    subscription = self.name(),
                    %error,
                    "a batch's decisions were refused together"
                );
                Ok(false)
            }
        }
    }

    /// Handles `batch` event by event, each stream's events in order;
    /// `failed_before` holds the events a batch decision tried already, by
    /// position, with how that try failed.
    async fn react_by_stream(
        &self,
        reactor: Arc<dyn Reactor>,
        batch: &[RecordedEvent],
        mut failed_before: HashMap<i64, HandlerError>,
    ) -> Vec<(RecordedEvent, Outcome)> {
        // Owned groups: futures that borrow across `buffer_unordered` trip
        // the compiler's `Send` inference inside `tokio::spawn`.
        type Group = (Option<i64>, Vec<(RecordedEvent, Option<HandlerError>)>);
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of: HashMap<&str, usize> = HashMap::new();
        for event in batch {
            let index = *group_of.entry(&event.stream_id).or_insert_with(|| {
                groups.push((self.blocked.get(&event.stream_id).copied(), Vec::new()));
                groups.len() - 1
            });
            groups[index]
                .1
                .push((event.clone(), failed_before.remove(&event.position)));
        }
        let name = self.name();
        let concurrency = reactor
            .concurrency()
            .unwrap_or(self.options.reactor_concurrency)
            .max(1);
        let outcomes: Vec<Vec<(RecordedEvent, Outcome)>> = futures::stream::iter(groups)
            .map(|(blocked_by, group)| {
                let reactor = reactor.clone();
                let options = self.options.clone();
                let mut stopped = self.stopped.clone();
                async move {
                    let mut outcomes = Vec::with_capacity(group.len());
                    let mut failed_head = blocked_by;
                    for (event, failed) in group {
                        if let Some(head) = failed_head {
                            outcomes.push((event, Outcome::Waiting(head)));
                            continue;
                        }
                        let attempt = || {
                            reactor
                                .react(&event)
                                .instrument(reaction_span(name, &event))
                        };
                        match retry_after(&options, name, &mut stopped, failed, attempt).await {
                            Ok(()) => outcomes.push((event, Outcome::Handled)),
                            Err(GaveUp::Parkable { attempts, error }) => {
                                failed_head = Some(event.position);
                                outcomes.push((event, Outcome::Failed(attempts, error)));
                            }
                            Err(GaveUp::Interrupted(error)) => {
                                outcomes.push((event, Outcome::Interrupted(error)));
                                break;
                            }
                        }
                    }
                    outcomes
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        outcomes.into_iter().flatten().collect()
    }
}

/// The part of `batch` a batch decision left unfinished: each unfinished
/// event and every later event of its stream, with the unfinished events'
/// failures by position.
fn unfinished_part(
    batch: &[RecordedEvent],
    unfinished: Vec<(i64, HandlerError)>,
) -> (Vec<RecordedEvent>, HashMap<i64, HandlerError>) {
    let failures: HashMap<i64, HandlerError> = unfinished.into_iter().collect();
    let mut waiting: HashSet<&str> = HashSet::new();
    let part = batch
        .iter()
        .filter(|event| {
            if failures.contains_key(&event.position) {
                waiting.insert(&event.stream_id);
            }
            waiting.contains(event.stream_id.as_str())
        })
        .cloned()
        .collect();
    (part, failures)
}
