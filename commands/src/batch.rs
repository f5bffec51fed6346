//! Deciding several commands now and appending them later, together, in a
//! transaction the caller owns: a reactor's whole batch with its
//! checkpoint, one commit instead of one per effect.
//!
//! Each command is decided on the state the batch has left its streams in,
//! else on cached states, else on stored ones, as one by one
//! (`decision.rs`); and every stream decided on is in the append with the
//! version its first decision started from, even when nothing was written
//! to it. So a stale guess anywhere fails the whole append as a version
//! conflict, or as a repeat when every event of the batch turns out to be
//! stored already (decided again on states older than the stored ones,
//! the batch's other findings may not hold), and nothing of the batch is
//! written: the
//! caller then falls back to executing the commands one by one, which
//! re-reads what it must. Event ids come from each command's context, as
//! they would one by one, so either way of executing has the same effect,
//! once.

use std::collections::HashMap;

use aggregates::order::OrderError;
use aggregates::payment::PaymentError;
use aggregates::reservation::ReservationError;
use aggregates::Aggregate;
use event_store::{AppendResult, FailureClass, Snapshot, StoreError, StreamAppend};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::cache::StateCache;
use crate::decision::{Decision, States};
use crate::executor::{Basis, Execute};
use crate::payments::RequestPayment;
use crate::reservations::ChangeReservation;
use crate::shipping::ShipOrder;
use crate::{CommandContext, CommandExecutor, ExecuteError, PaymentAttempt, ReservationChange};

/// Streams one batch may decide on before it is refused (a batch is a
/// subscription's read batch: far below this).
const MAX_STREAMS: usize = 10_000;

/// Why a batch's append wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum BatchRefused {
    /// A version conflict (a stale guess), or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every event of the batch is stored already.
    #[error(
        "every event of the batch is stored already: it was decided on states that have moved on"
    )]
    Repeat,
}

impl BatchRefused {
    /// A repeat is a lost race, like a version conflict.
    pub fn class(&self) -> FailureClass {
        match self {
            BatchRefused::Store(error) => error.class(),
            BatchRefused::Repeat => FailureClass::Contention,
        }
    }
}

/// Commands decided, not yet appended: see the module documentation.
#[derive(Debug)]
pub struct DecisionBatch {
    executor: CommandExecutor,
    /// Each stream's state as the batch leaves it.
    decided: StateCache,
    /// One append per stream, in the order streams were first decided on.
    appends: Vec<StreamAppend>,
    append_of: HashMap<String, usize>,
    snapshots: Vec<Snapshot>,
}

impl CommandExecutor {
    /// An empty batch of decisions on this executor's store and cache.
    pub fn decision_batch(&self) -> DecisionBatch {
        DecisionBatch {
            executor: self.clone(),
            decided: StateCache::unbounded(),
            appends: Vec::new(),
            append_of: HashMap::new(),
            snapshots: Vec::new(),
        }
    }
}

impl DecisionBatch {
    /// Decides `command` on the aggregate of `stream_id` and adds its events
    /// to the batch. A refusal is an error (the caller then executes the
    /// batch's commands one by one, where it is retried and parked).
    pub async fn decide<A: Aggregate>(
        &mut self,
        stream_id: &str,
        command: &A::Command,
        context: &CommandContext,
    ) -> Result<(), ExecuteError<A::Error>> {
        self.add(
            &Execute::<A>::new(stream_id, command, context),
            Basis::Cached,
        )
        .await
        .map(|_| ())
    }

    /// [`CommandExecutor::change_reservation`], into the batch.
    pub async fn change_reservation(
        &mut self,
        order_id: Uuid,
        change: &ReservationChange,
        context: &CommandContext,
    ) -> Result<(), ExecuteError<ReservationError>> {
        let decision = ChangeReservation {
            order_id,
            change,
            context,
        };
        self.add(&decision, decision.first_basis())
            .await
            .map(|_| ())
    }

    /// [`CommandExecutor::ship_order`], into the batch.
    pub async fn ship_order(
        &mut self,
        order_id: Uuid,
        context: &CommandContext,
    ) -> Result<(), ExecuteError<OrderError>> {
        self.add(&ShipOrder { order_id, context }, Basis::Cached)
            .await
            .map(|_| ())
    }

    /// [`CommandExecutor::request_payment`], into the batch: the attempt
    /// holds once the batch is appended.
    pub async fn request_payment(
        &mut self,
        order_id: Uuid,
        round: u32,
        context: &CommandContext,
    ) -> Result<Option<PaymentAttempt>, ExecuteError<PaymentError>> {
        let decision = RequestPayment {
            order_id,
            round,
            context,
        };
        self.add(&decision, decision.first_basis()).await
    }

    /// Decides on the states this batch left, else on guesses, else on
    /// stored states (a refusal on a guess is decided again on stored
    /// states); a decision that writes nothing is kept as a check of the
    /// streams it read, which the batch's append makes.
    async fn add<D: Decision>(
        &mut self,
        decision: &D,
        first: Basis,
    ) -> Result<D::Decided, ExecuteError<D::Error>> {
        let mut basis = first;
        loop {
            let mut states = States::new(&self.executor, Some(&self.decided), basis);
            let decided = decision.decide(&mut states).await;
            let guessed = states.guessed();
            basis = Basis::Stored;
            let decided = match decided {
                Err(ExecuteError::Domain(_)) if guessed => continue,
                Err(error) => return Err(error),
                Ok(decided) => decided,
            };
            if self.append_of.len() + decided.appends.len() > MAX_STREAMS {
                return Err(ExecuteError::Store(StoreError::InvalidRequest(format!(
                    "a decision batch spans at most {MAX_STREAMS} streams"
                ))));
            }
            for append in decided.appends {
                match self.append_of.get(&append.stream_id) {
                    // Decided on the batch's own state: the first append
                    // of the stream already expects the version it started from.
                    Some(&index) => self.appends[index].events.extend(append.events),
                    None => {
                        self.append_of
                            .insert(append.stream_id.clone(), self.appends.len());
                        self.appends.push(append);
                    }
                }
            }
            self.decided.absorb(&decided.leaves);
            self.snapshots.extend(decided.snapshots);
            return Ok(decided.value);
        }
    }

    /// Appends every decision in `connection`'s transaction, as its first
    /// write (see [`event_store::EventStore::append_in_transaction`]).
    /// Refused as a whole, writing nothing: see the module documentation.
    pub async fn append_in(
        &self,
        connection: &mut PgConnection,
    ) -> Result<AppendResult, BatchRefused> {
        if self.appends.is_empty() {
            return Ok(AppendResult {
                written: false,
                events: Vec::new(),
            });
        }
        let result = self
            .executor
            .store()
            .append_in_transaction(connection, &self.appends)
            .await?;
        if !result.written && self.appends.iter().any(|append| !append.events.is_empty()) {
            return Err(BatchRefused::Repeat);
        }
        Ok(result)
    }

    /// After the transaction committed: later commands start from the
    /// states the batch left, readers are woken, snapshots due are saved.
    pub async fn committed(self) {
        self.executor.remember_all(&self.decided);
        self.executor.store().wake_readers();
        self.executor.save_snapshots(self.snapshots).await;
    }

    /// After the transaction failed or rolled back: readers that waited
    /// on it are woken (it may have had an id), nothing is remembered, and
    /// what was kept of the batch's streams is forgotten (a refusal means
    /// some guess was stale; which one, the store does not say), so that
    /// deciding again reads them.
    pub fn abandoned(self) {
        self.executor
            .forget(self.appends.iter().map(|append| append.stream_id.as_str()));
        self.executor.store().wake_readers();
    }
}
