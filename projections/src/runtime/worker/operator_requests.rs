//! Operator requests, carried out by the subscription's owner between
//! batches so that they never race the live loop: replay parked events
//! (all, or one that no earlier parked event of its stream waits before),
//! reset the checkpoint, rebuild the read model in the background and swap
//! it in. Each write goes through the owner's checkpoint lease.

use std::sync::Arc;

use event_store::{LogCursor, RecordedEvent};
use sqlx::PgConnection;
use tokio::task::JoinHandle;

use super::{RuntimeError, Subscriber, Worker};
use crate::runtime::requests::{mark_done, next_pending, RequestKind};
use crate::runtime::retry::{retry, GaveUp};
use crate::runtime::status::{self, SubscriptionState};
use crate::runtime::{parking, rebuild};
use crate::Projection;

type RebuildOutcome = Result<(PgConnection, LogCursor), RuntimeError>;

/// A rebuild filling fresh tables in the background, for the request
/// `request_id`. Dropping it aborts the task: a rebuild never outlives the
/// worker that started it (the request stays pending for the next owner).
pub(super) struct RunningRebuild {
    request_id: i64,
    task: JoinHandle<RebuildOutcome>,
}

impl Drop for RunningRebuild {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Resolves when the background rebuild ends; never if there is none.
pub(super) async fn wait_for_rebuild(
    rebuild: &mut Option<RunningRebuild>,
) -> Result<RebuildOutcome, tokio::task::JoinError> {
    match rebuild {
        Some(running) => (&mut running.task).await,
        None => std::future::pending().await,
    }
}

impl Worker {
    /// Carries out pending operator requests; true if the subscription must
    /// restart from a new cursor.
    pub(super) async fn carry_out_requests(&mut self) -> Result<bool, RuntimeError> {
        let mut restart = false;
        loop {
            let in_progress = self.rebuild.as_ref().map(|running| running.request_id);
            let Some(request) = next_pending(self.store.pool(), self.name(), in_progress).await?
            else {
                break;
            };
            let outcome = match request.kind {
                RequestKind::ReplayParked => {
                    self.replay_parked().await?;
                    "replayed".to_owned()
                }
                RequestKind::ReplayParkedEvent { position } => {
                    self.replay_parked_event(position).await?
                }
                RequestKind::Reset { position } => {
                    self.reset(position).await?;
                    restart = true;
                    format!("reset to position {position}")
                }
                RequestKind::Rebuild => match (&self.subscriber, &self.rebuild) {
                    (Subscriber::Projection(projection), None) => {
                        let projection = projection.clone();
                        self.start_rebuild(request.id, projection).await?;
                        // Marked done when the swap is made.
                        continue;
                    }
                    (Subscriber::Projection(_), Some(_)) => {
                        "a rebuild is already running".to_owned()
                    }
                    (Subscriber::Reactor(_), _) => {
                        "failed: only projections can be rebuilt".to_owned()
                    }
                },
            };
            mark_done(self.store.pool(), request.id, &outcome).await?;
        }
        Ok(restart)
    }

    /// Moves the checkpoint to just after `position` and forgets what was
    /// parked after it (it will be delivered again). Read models are
    /// idempotent and reactors' effects are keyed by the source event, so
    /// the redelivery changes nothing that was already done.
    async fn reset(&mut self, position: i64) -> Result<(), RuntimeError> {
        let cursor = self.store.cursor_at(position).await?;
        let mut transaction = self.store.pool().begin().await?;
        self.ownership
            .lease()
            .reset(&mut *transaction, cursor)
            .await?;
        parking::forget_after(&mut *transaction, self.name(), cursor).await?;
        transaction.commit().await?;
        self.cursor = cursor;
        self.blocked = parking::blocked_streams(self.store.pool(), self.name()).await?;
        Ok(())
    }

    async fn start_rebuild(
        &mut self,
        request_id: i64,
        projection: Arc<dyn Projection>,
    ) -> Result<(), RuntimeError> {
        let store = self.store.clone();
        let batch_size = self.options.rebuild_batch_size.max(1);
        status::report(
            self.store.pool(),
            self.name(),
            Some(&self.owner),
            SubscriptionState::Rebuilding,
        )
        .await?;
        let task = tokio::spawn(async move {
            let mut connection = rebuild::prepare(&store, projection.as_ref()).await?;
            let cursor = rebuild::catch_up(
                &store,
                projection.as_ref(),
                &mut connection,
                LogCursor::START,
                batch_size,
            )
            .await?;
            Ok((connection, cursor))
        });
        self.rebuild = Some(RunningRebuild { request_id, task });
        Ok(())
    }

    /// Replays each blocked stream's parked events in order; a stream whose
    /// head fails again stays blocked.
    async fn replay_parked(&mut self) -> Result<(), RuntimeError> {
        let streams: Vec<String> = self.blocked.keys().cloned().collect();
        for stream in streams {
            let parked = parking::parked_in_stream(self.store.pool(), self.name(), &stream).await?;
            let mut all_handled = true;
            for (transaction_id, position) in parked {
                let Some(event) = self.read_event(transaction_id, position).await? else {
                    // Never skip it: the stream stays blocked behind it.
                    tracing::warn!(subscription = self.name(), position, %stream,
                        "a parked event is not in the log; its stream stays parked");
                    all_handled = false;
                    break;
                };
                match self.replay_one(&event).await {
                    Ok(()) => {}
                    Err(GaveUp::Parkable { attempts, error }) => {
                        let mut transaction = self.store.pool().begin().await?;
                        self.ownership.lease().confirm(&mut *transaction).await?;
                        parking::mark_head(
                            &mut *transaction,
                            self.name(),
                            &stream,
                            position,
                            attempts,
                            &error.to_string(),
                        )
                        .await?;
                        transaction.commit().await?;
                        self.blocked.insert(stream.clone(), position);
                        all_handled = false;
                        break;
                    }
                    Err(GaveUp::Interrupted(error)) => return Err(error),
                }
            }
            if all_handled {
                self.blocked.remove(&stream);
            }
        }
        Ok(())
    }

    /// Replays the event parked at `position` alone; returns the request's
    /// outcome. The API refused it if earlier events of its stream were
    /// parked, but things may have moved since (a reset, another replay):
    /// checked again here, where nothing else runs.
    async fn replay_parked_event(&mut self, position: i64) -> Result<String, RuntimeError> {
        let Some(parked) = parking::parked_at(self.store.pool(), self.name(), position).await?
        else {
            return Ok(format!("failed: nothing is parked at position {position}"));
        };
        if let Some(first) = parked.earlier.first() {
            return Ok(format!(
                "failed: {} earlier parked event(s) of stream {} must be replayed first, \
                 starting at position {first}",
                parked.earlier.len(),
                parked.stream_id
            ));
        }
        let Some(event) = self.read_event(parked.transaction_id, position).await? else {
            return Ok(format!(
                "failed: no event at position {position} in the log"
            ));
        };
        let outcome = match self.replay_one(&event).await {
            Ok(()) => "replayed".to_owned(),
            Err(GaveUp::Parkable { attempts, error }) => {
                let mut transaction = self.store.pool().begin().await?;
                self.ownership.lease().confirm(&mut *transaction).await?;
                parking::mark_head(
                    &mut *transaction,
                    self.name(),
                    &parked.stream_id,
                    position,
                    attempts,
                    &error.to_string(),
                )
                .await?;
                transaction.commit().await?;
                format!("failed: {error}")
            }
            Err(GaveUp::Interrupted(error)) => return Err(error),
        };
        self.blocked = parking::blocked_streams(self.store.pool(), self.name()).await?;
        Ok(outcome)
    }

    /// Handles one parked event and unparks it, with retries; the next
    /// parked event of its stream, if any, becomes the one the rest wait
    /// behind.
    async fn replay_one(&mut self, event: &RecordedEvent) -> Result<(), GaveUp> {
        let subscriber = self.subscriber.clone();
        let lease = self.ownership.lease().clone();
        let pool = self.store.pool().clone();
        let member_name = self.member_name.clone();
        let name = member_name.as_str();
        retry(&self.options, name, &mut self.stopped, || {
            let subscriber = subscriber.clone();
            let lease = lease.clone();
            let pool = pool.clone();
            async move {
                if let Subscriber::Reactor(reactor) = &subscriber {
                    // A replay continues the event's trace, as its first try did.
                    let span = crate::reaction_span::reaction_span(name, event);
                    tracing::Instrument::instrument(reactor.react(event), span).await?;
                }
                let mut transaction = pool.begin().await?;
                lease.confirm(&mut *transaction).await?;
                if let Subscriber::Projection(projection) = &subscriber {
                    projection.apply(&mut transaction, event).await?;
                }
                parking::unpark(
                    &mut *transaction,
                    name,
                    event.transaction_id,
                    event.position,
                )
                .await?;
                parking::promote_next_head(&mut transaction, name, &event.stream_id).await?;
                transaction.commit().await?;
                Ok(())
            }
        })
        .await
    }

    async fn read_event(
        &self,
        transaction_id: i64,
        position: i64,
    ) -> Result<Option<RecordedEvent>, RuntimeError> {
        // It was delivered to this subscription, so it has committed: read
        // it directly, not below a horizon that another open transaction
        // could hold back (it would look absent and be skipped).
        Ok(self
            .store
            .read_event_at(LogCursor {
                transaction_id,
                position,
            })
            .await?)
    }

    /// Completes a background rebuild: catch up, swap it in and restart
    /// from its cursor. True if the subscription must restart.
    pub(super) async fn finish_rebuild(
        &mut self,
        finished: Result<RebuildOutcome, tokio::task::JoinError>,
    ) -> Result<bool, RuntimeError> {
        let Some(running) = self.rebuild.take() else {
            return Ok(false);
        };
        let request_id = running.request_id;
        let Subscriber::Projection(projection) = self.subscriber.clone() else {
            return Ok(false);
        };
        let failure = match finished {
            Ok(Ok((connection, cursor))) => {
                match rebuild::swap(
                    &self.store,
                    projection.as_ref(),
                    self.ownership.lease(),
                    connection,
                    cursor,
                    self.options.rebuild_batch_size.max(1),
                )
                .await
                {
                    Ok(cursor) => {
                        self.cursor = cursor;
                        self.blocked.clear();
                        mark_done(self.store.pool(), request_id, "rebuilt").await?;
                        return Ok(true);
                    }
                    // Fenced: the request stays for the new owner.
                    Err(error @ RuntimeError::Store(event_store::StoreError::Fenced { .. })) => {
                        return Err(error)
                    }
                    Err(error) if error.is_outage() => return Err(error),
                    Err(error) => error.to_string(),
                }
            }
            // An outage is not the rebuild's fault: the request stays
            // pending, and the worker starts over once the database is back.
            Ok(Err(error)) if error.is_outage() => return Err(error),
            Ok(Err(error)) => error.to_string(),
            Err(join) => join.to_string(),
        };
        tracing::warn!(subscription = self.name(), error = %failure, "rebuild failed; the old read model stays");
        status::report_rebuild_progress(self.store.pool(), self.name(), None).await?;
        mark_done(self.store.pool(), request_id, &format!("failed: {failure}")).await?;
        Ok(false)
    }
}
