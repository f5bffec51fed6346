//! Committing a reactor's decided appends through the subscription's
//! checkpoint lease: with the checkpoint (the end of a batch), or before it
//! (effects that something outside the store must follow, such as a
//! payment's requests before the gateway is asked).

use std::sync::atomic::{AtomicBool, Ordering};

use commands::{BatchRefused, DecisionBatch};
use event_store::{CheckpointLease, EventStore, LogCursor, StoreError};

use crate::HandlerError;

/// Appends a reactor's decisions in a transaction that also proves its
/// owner's lease, so a stale owner writes nothing: handed to
/// [`crate::Reactor::decide_batch`] for effects that must be committed
/// before the batch's checkpoint.
#[derive(Debug)]
pub struct FencedCommit {
    store: EventStore,
    lease: CheckpointLease,
    /// Whether a reactor committed through it: effects outside the store
    /// (a gateway call) may then have followed.
    used: AtomicBool,
}

/// What became of a fenced append.
pub(crate) enum Appended {
    Committed,
    /// The append was refused (a stale guess, a repeat after a crash):
    /// nothing was written.
    Refused(BatchRefused),
}

impl FencedCommit {
    pub(crate) fn new(store: EventStore, lease: CheckpointLease) -> Self {
        FencedCommit {
            store,
            lease,
            used: AtomicBool::new(false),
        }
    }

    /// Appends `decisions` now, without moving the checkpoint. A refused
    /// append (a guess gone stale) writes nothing and is an error of its
    /// class; so is a newer owner's lease ([`StoreError::Fenced`]).
    pub async fn commit(&self, decisions: DecisionBatch) -> Result<(), HandlerError> {
        self.used.store(true, Ordering::SeqCst);
        match self.append(decisions, None).await? {
            Appended::Committed => Ok(()),
            Appended::Refused(error) => Err(HandlerError::with_class(error.class(), error)),
        }
    }

    /// Whether a reactor committed anything through it.
    pub(crate) fn used(&self) -> bool {
        self.used.load(Ordering::SeqCst)
    }

    /// Appends `decisions` and, in the same transaction, moves the
    /// checkpoint to `checkpoint`, or only proves the lease (`None`). The
    /// append comes first: it must be the transaction's first write (see
    /// the event store's `horizon.rs`).
    pub(crate) async fn append(
        &self,
        decisions: DecisionBatch,
        checkpoint: Option<LogCursor>,
    ) -> Result<Appended, StoreError> {
        let mut transaction = self.store.pool().begin().await?;
        if let Err(error) = decisions.append_in(&mut transaction).await {
            drop(transaction);
            decisions.abandoned();
            return Ok(Appended::Refused(error));
        }
        let committed = async {
            match checkpoint {
                Some(cursor) => self.lease.advance(&mut *transaction, cursor).await?,
                None => self.lease.confirm(&mut *transaction).await?,
            }
            transaction.commit().await.map_err(StoreError::from)
        }
        .await;
        match committed {
            Ok(()) => {
                decisions.committed().await;
                Ok(Appended::Committed)
            }
            Err(error) => {
                decisions.abandoned();
                Err(error)
            }
        }
    }
}
