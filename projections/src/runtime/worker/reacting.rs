//! A reactor's batches: each stream's events in order, different streams
//! concurrently (their effects are independent), then the checkpoint and
//! whatever must be parked in one fenced transaction. Effects themselves go
//! through `commands` with ids derived from the source event, so a batch
//! handled twice (a crash before the checkpoint, a stale owner) has the
//! effect of one.

use std::collections::HashMap;
use std::sync::Arc;

use commands::DecisionBatch;
use event_store::{LogCursor, RecordedEvent};
use futures::StreamExt;
use tracing::Instrument;

use super::Worker;
use crate::reaction_span::reaction_span;
use crate::runtime::error::RuntimeError;
use crate::runtime::parking;
use crate::runtime::retry::{retry, GaveUp};
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

impl Worker {
    pub(super) async fn react(
        &mut self,
        reactor: Arc<dyn Reactor>,
        batch: &[RecordedEvent],
        last: LogCursor,
    ) -> Result<(), RuntimeError> {
        // A stream waiting behind a parked event needs the per-event path,
        // which parks what follows it.
        if !batch
            .iter()
            .any(|event| self.blocked.contains_key(&event.stream_id))
        {
            let committed = match reactor.decide_batch(batch).await {
                Some(Ok(decisions)) => self.commit_decisions(decisions, batch, last).await?,
                Some(Err(error)) => {
                    tracing::debug!(
                        subscription = self.name(),
                        %error,
                        "a batch could not be decided at once; handling its events one by one"
                    );
                    false
                }
                None => false,
            };
            if committed {
                return Ok(());
            }
        }
        let mut outcomes = self.react_by_stream(reactor, batch).await;
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

    /// Appends a batch's decisions and advances the checkpoint in one
    /// transaction (the append first: it must be the transaction's first
    /// write, see the event store's `horizon.rs`). False when the append
    /// was refused (a stale guess, a repeat after a crash): nothing is
    /// written, and the caller handles the batch event by event.
    async fn commit_decisions(
        &mut self,
        decisions: DecisionBatch,
        batch: &[RecordedEvent],
        last: LogCursor,
    ) -> Result<bool, RuntimeError> {
        self.crash_if_asked(batch)?;
        let mut transaction = self.store.pool().begin().await?;
        if let Err(error) = decisions.append_in(&mut transaction).await {
            tracing::debug!(
                subscription = self.name(),
                %error,
                "a batch's decisions were refused together; handling its events one by one"
            );
            drop(transaction);
            decisions.abandoned();
            return Ok(false);
        }
        let committed = async {
            self.ownership
                .lease()
                .advance(&mut *transaction, last)
                .await?;
            transaction
                .commit()
                .await
                .map_err(event_store::StoreError::from)
        }
        .await;
        match committed {
            Ok(()) => {
                decisions.committed().await;
                Ok(true)
            }
            Err(error) => {
                decisions.abandoned();
                Err(error.into())
            }
        }
    }

    async fn react_by_stream(
        &self,
        reactor: Arc<dyn Reactor>,
        batch: &[RecordedEvent],
    ) -> Vec<(RecordedEvent, Outcome)> {
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
                    for event in group {
                        if let Some(head) = failed_head {
                            outcomes.push((event, Outcome::Waiting(head)));
                            continue;
                        }
                        let attempt = || {
                            reactor
                                .react(&event)
                                .instrument(reaction_span(name, &event))
                        };
                        match retry(&options, name, &mut stopped, attempt).await {
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
