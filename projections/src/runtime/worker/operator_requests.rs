//! Operator requests, carried out by the subscription's owner between
//! batches so that they never race the live loop: replay parked events,
//! reset the checkpoint, rebuild the read model in the background and swap
//! it in.

use event_store::{LogCursor, RecordedEvent};
use sqlx::PgConnection;

use super::{RebuildTask, RuntimeError, Subscriber, Worker};
use crate::runtime::requests::{mark_done, next_pending, RequestKind};
use crate::runtime::{parking, rebuild, status};

impl Worker {
    /// Carries out pending operator requests; true if the subscription must
    /// restart from a new cursor.
    pub(super) async fn carry_out_requests(&mut self) -> Result<bool, RuntimeError> {
        let mut restart = false;
        loop {
            let in_progress = self.rebuild.as_ref().map(|(id, _)| *id);
            let Some(request) = next_pending(self.store.pool(), self.name(), in_progress).await?
            else {
                break;
            };
            let outcome = match request.kind {
                RequestKind::ReplayParked => {
                    self.replay_parked().await?;
                    "replayed".to_owned()
                }
                RequestKind::Reset { position } => {
                    let cursor = self.store.cursor_at(position).await?;
                    let mut transaction = self.store.pool().begin().await?;
                    parking::forget_after(&mut *transaction, self.name(), cursor).await?;
                    sqlx::query(
                        "INSERT INTO subscription_checkpoints (name, transaction_id, position) \
                         VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE \
                         SET transaction_id = $2, position = $3, updated_at = now()",
                    )
                    .bind(self.name())
                    .bind(cursor.transaction_id)
                    .bind(cursor.position)
                    .execute(&mut *transaction)
                    .await?;
                    transaction.commit().await?;
                    self.cursor = cursor;
                    self.blocked = parking::blocked_streams(self.store.pool(), self.name()).await?;
                    restart = true;
                    format!("reset to position {position}")
                }
                RequestKind::Rebuild => match (&self.subscriber, &self.rebuild) {
                    (Subscriber::Projection(projection), None) => {
                        let projection = projection.clone();
                        let store = self.store.clone();
                        let batch_size = self.options.rebuild_batch_size.max(1);
                        status::report(
                            self.store.pool(),
                            self.name(),
                            Some(&self.owner),
                            status::REBUILDING,
                        )
                        .await?;
                        self.rebuild = Some((
                            request.id,
                            tokio::spawn(async move {
                                let mut connection =
                                    rebuild::prepare(&store, projection.as_ref()).await?;
                                let cursor = rebuild::catch_up(
                                    &store,
                                    projection.as_ref(),
                                    &mut connection,
                                    LogCursor::START,
                                    batch_size,
                                )
                                .await?;
                                rebuild::make_durable(projection.as_ref(), &mut connection).await?;
                                Ok((connection, cursor))
                            }),
                        ));
                        // Marked done when the swap is made.
                        continue;
                    }
                    (Subscriber::Projection(_), Some(_)) => {
                        "a rebuild is already running".to_owned()
                    }
                    (Subscriber::Reactor(_), _) => "only projections can be rebuilt".to_owned(),
                },
            };
            mark_done(self.store.pool(), request.id, &outcome).await?;
        }
        Ok(restart)
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
                    continue;
                };
                let subscriber = self.subscriber.clone();
                let store = self.store.clone();
                let name = self.name();
                let outcome = self
                    .with_retries(|| {
                        let subscriber = subscriber.clone();
                        let store = store.clone();
                        let event = &event;
                        async move {
                            match subscriber {
                                Subscriber::Projection(projection) => {
                                    let mut transaction = store.pool().begin().await?;
                                    projection.apply(&mut transaction, event).await?;
                                    parking::unpark(
                                        &mut *transaction,
                                        name,
                                        event.transaction_id,
                                        event.position,
                                    )
                                    .await?;
                                    transaction.commit().await?;
                                }
                                Subscriber::Reactor(reactor) => {
                                    reactor.react(event).await?;
                                    parking::unpark(
                                        store.pool(),
                                        name,
                                        event.transaction_id,
                                        event.position,
                                    )
                                    .await?;
                                }
                            }
                            Ok(())
                        }
                    })
                    .await;
                if let Err((attempts, error)) = outcome {
                    parking::mark_head(
                        self.store.pool(),
                        self.name(),
                        &stream,
                        position,
                        attempts,
                        &error.0,
                    )
                    .await?;
                    self.blocked.insert(stream.clone(), position);
                    all_handled = false;
                    break;
                }
            }
            if all_handled {
                self.blocked.remove(&stream);
            }
        }
        Ok(())
    }

    async fn read_event(
        &self,
        transaction_id: i64,
        position: i64,
    ) -> Result<Option<RecordedEvent>, RuntimeError> {
        let before = LogCursor {
            transaction_id,
            position: position - 1,
        };
        let events = self.store.read_log(before, 1).await?;
        Ok(events.into_iter().find(|event| event.position == position))
    }

    /// Completes a background rebuild: swap it in and restart from its
    /// cursor. True if the subscription must restart.
    pub(super) async fn finish_rebuild(
        &mut self,
        finished: Result<Result<(PgConnection, LogCursor), RuntimeError>, tokio::task::JoinError>,
    ) -> Result<bool, RuntimeError> {
        let Some((request_id, _)) = self.rebuild.take() else {
            return Ok(false);
        };
        let Subscriber::Projection(projection) = self.subscriber.clone() else {
            return Ok(false);
        };
        let outcome = match finished {
            Ok(Ok((connection, cursor))) => {
                match rebuild::swap(
                    &self.store,
                    projection.as_ref(),
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
                    Err(error) => error.to_string(),
                }
            }
            Ok(Err(error)) => error.to_string(),
            Err(join) => join.to_string(),
        };
        tracing::warn!(subscription = self.name(), error = %outcome, "rebuild failed; the old read model stays");
        status::report_rebuild_progress(self.store.pool(), self.name(), None).await?;
        mark_done(self.store.pool(), request_id, &format!("failed: {outcome}")).await?;
        Ok(false)
    }
}

/// Resolves when the background rebuild ends; never if there is none.
pub(super) async fn wait_for_rebuild(
    rebuild: &mut Option<(i64, RebuildTask)>,
) -> Result<Result<(PgConnection, LogCursor), RuntimeError>, tokio::task::JoinError> {
    match rebuild {
        Some((_, task)) => task.await,
        None => std::future::pending().await,
    }
}
