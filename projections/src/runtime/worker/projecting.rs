//! A projection's batches: the rows and the checkpoint in one transaction,
//! fenced by the lease. If a batch fails, its events go one at a time with
//! retries, so only the failing event is parked.

use event_store::{LogCursor, RecordedEvent};

use super::Worker;
use crate::runtime::error::RuntimeError;
use crate::runtime::parking;
use crate::runtime::retry::{retry, GaveUp};
use crate::Projection;

impl Worker {
    pub(super) async fn project(
        &mut self,
        projection: &dyn Projection,
        batch: &[RecordedEvent],
        last: LogCursor,
    ) -> Result<(), RuntimeError> {
        match self.project_batch(projection, batch, last).await {
            Ok(()) => return Ok(()),
            Err(RuntimeError::Store(event_store::StoreError::Fenced { .. })) => {
                return Err(RuntimeError::LostOwnership)
            }
            Err(RuntimeError::InjectedCrash) => return Err(RuntimeError::InjectedCrash),
            Err(error) => {
                tracing::debug!(subscription = self.name(), %error, "batch failed; one event at a time");
            }
        }
        for event in batch {
            self.project_one(projection, event).await?;
        }
        Ok(())
    }

    /// The whole batch and its checkpoint in one transaction; nothing is
    /// written if any of it fails.
    async fn project_batch(
        &mut self,
        projection: &dyn Projection,
        batch: &[RecordedEvent],
        last: LogCursor,
    ) -> Result<(), RuntimeError> {
        let mut transaction = self.store.pool().begin().await?;
        // First: it proves ownership and holds the checkpoint row, so a
        // stale owner's batch waits for, then fails on, the newer lease.
        self.ownership
            .lease()
            .advance(&mut *transaction, last)
            .await?;
        let mut unblocked = Vec::with_capacity(batch.len());
        for event in batch {
            match self.blocked.get(&event.stream_id).copied() {
                Some(head) => {
                    parking::park_behind(&mut *transaction, self.name(), event, head).await?;
                }
                None => unblocked.push(event.clone()),
            }
        }
        projection
            .apply_batch(&mut transaction, &unblocked)
            .await
            .map_err(RuntimeError::Handler)?;
        self.crash_if_asked(batch)?;
        transaction.commit().await?;
        Ok(())
    }

    /// One event with retries, its effect and checkpoint in one
    /// transaction; parked if the projection keeps failing on it.
    async fn project_one(
        &mut self,
        projection: &dyn Projection,
        event: &RecordedEvent,
    ) -> Result<(), RuntimeError> {
        let lease = self.ownership.lease().clone();
        if let Some(head) = self.blocked.get(&event.stream_id).copied() {
            let mut transaction = self.store.pool().begin().await?;
            lease.advance(&mut *transaction, event.cursor()).await?;
            parking::park_behind(&mut *transaction, self.name(), event, head).await?;
            transaction.commit().await?;
            return Ok(());
        }
        let pool = self.store.pool().clone();
        let outcome = retry(&self.options, &self.member_name, &mut self.stopped, || {
            let pool = pool.clone();
            let lease = lease.clone();
            async move {
                let mut transaction = pool.begin().await?;
                lease.advance(&mut *transaction, event.cursor()).await?;
                projection.apply(&mut transaction, event).await?;
                transaction.commit().await?;
                Ok(())
            }
        })
        .await;
        match outcome {
            Ok(()) => Ok(()),
            Err(GaveUp::Parkable { attempts, error }) => {
                self.park_failed(event, attempts, &error).await
            }
            Err(GaveUp::Interrupted(error)) => Err(error),
        }
    }

    /// Parks a failing event as the head of its stream, with the checkpoint
    /// past it, in one fenced transaction.
    pub(super) async fn park_failed(
        &mut self,
        event: &RecordedEvent,
        attempts: u32,
        error: &crate::HandlerError,
    ) -> Result<(), RuntimeError> {
        tracing::warn!(
            subscription = self.name(),
            position = event.position,
            stream_id = %event.stream_id,
            %error,
            "parking an event after {attempts} attempts"
        );
        let mut transaction = self.store.pool().begin().await?;
        self.ownership
            .lease()
            .advance(&mut *transaction, event.cursor())
            .await?;
        parking::park(
            &mut *transaction,
            self.name(),
            event,
            attempts,
            &error.to_string(),
            None,
        )
        .await?;
        transaction.commit().await?;
        self.blocked.insert(event.stream_id.clone(), event.position);
        Ok(())
    }
}
