//! Decisions across an order's reservation and the inventory of each SKU:
//! reserve all lines, release, or commit on shipment, in one atomic
//! multi-stream append.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use aggregates::inventory::{Inventory, InventoryError};
use aggregates::order::OrderLine;
use aggregates::reservation::{
    commit_order, release_order, reserve_order, Reservation, ReservationDecision, ReservationError,
};
use aggregates::values::Sku;
use aggregates::{fold_from, stream_id};
use event_store::{AppendResult, ExpectedVersion, StreamAppend};
use uuid::Uuid;

use crate::executor::Basis;
use crate::{CommandContext, CommandExecutor, ExecuteError, Loaded};

/// What to do with an order's reservation.
#[derive(Debug, Clone, PartialEq)]
pub enum ReservationChange {
    /// Reserve every line, all or nothing.
    Reserve { lines: Vec<OrderLine> },
    /// Give the stock back (the order was cancelled).
    Release,
    /// The stock leaves on hand (the order shipped).
    Commit,
}

impl CommandExecutor {
    /// Applies `change` to the reservation of `order_id` and the inventory
    /// of every SKU involved, atomically; retried on conflicts like any
    /// command. Returns the events written (empty if already in effect).
    #[tracing::instrument(skip(self, change, context), fields(correlation_id = %context.correlation_id))]
    pub async fn change_reservation(
        &self,
        order_id: Uuid,
        change: &ReservationChange,
        context: &CommandContext,
    ) -> Result<ReservationDecision, ExecuteError<ReservationError>> {
        // Reserving creates the order's reservation stream: guess it is new.
        let first = match change {
            ReservationChange::Reserve { .. } => Basis::Presumed,
            ReservationChange::Release | ReservationChange::Commit => Basis::Cached,
        };
        self.with_retries(first, |basis| {
            self.change_reservation_once(order_id, change, context, basis)
        })
        .await
    }

    async fn change_reservation_once(
        &self,
        order_id: Uuid,
        change: &ReservationChange,
        context: &CommandContext,
        mut basis: Basis,
    ) -> Result<ReservationDecision, ExecuteError<ReservationError>> {
        loop {
            let (reservation, used) = self
                .state_for_decision::<Reservation>(&stream_id::<Reservation>(order_id), basis)
                .await?;
            let mut guessed = used != Basis::Stored;
            // Inventories are never new: a presumed reservation still reads
            // them from the cache or the store.
            let inventory_basis = match basis {
                Basis::Presumed => Basis::Cached,
                other => other,
            };
            basis = Basis::Stored;
            let skus: Vec<Sku> = match change {
                ReservationChange::Reserve { lines } => {
                    lines.iter().map(|line| line.sku.clone()).collect()
                }
                ReservationChange::Release | ReservationChange::Commit => {
                    reservation.state.skus().into_iter().collect()
                }
            };
            let (inventories, inventories_guessed) = self
                .inventories_for_decision(skus, inventory_basis)
                .await
                .map_err(|error| error.map_domain(ReservationError::Inventory))?;
            guessed |= inventories_guessed;
            let states = states_of(&inventories);
            let decision = match change {
                ReservationChange::Reserve { lines } => {
                    reserve_order(&reservation.state, order_id, lines, &states)
                }
                ReservationChange::Release => release_order(&reservation.state, order_id, &states),
                ReservationChange::Commit => commit_order(&reservation.state, order_id, &states),
            };
            // Only an append checks the states decided on; anything else
            // decided on a guess is decided again on the stored states.
            let decision = match decision {
                Ok(decision) if !decision.is_empty() => decision,
                _ if guessed => continue,
                Ok(decision) => return Ok(decision),
                Err(error) => return Err(ExecuteError::Domain(error)),
            };
            if !self
                .append_decision(&reservation, &inventories, &decision, context)
                .await?
                && guessed
            {
                continue;
            }
            return Ok(decision);
        }
    }

    /// The inventory of every SKU in `skus`, each from `basis`, and whether
    /// any of them is a guess (cached) rather than read.
    pub(crate) async fn inventories_for_decision(
        &self,
        skus: impl IntoIterator<Item = Sku>,
        basis: Basis,
    ) -> Result<(BTreeMap<Sku, Loaded<Inventory>>, bool), ExecuteError<InventoryError>> {
        let mut guessed = false;
        let mut inventories: BTreeMap<Sku, Loaded<Inventory>> = BTreeMap::new();
        for sku in skus {
            if let Entry::Vacant(slot) = inventories.entry(sku) {
                let stream = stream_id::<Inventory>(slot.key());
                let (loaded, used) = self.state_for_decision::<Inventory>(&stream, basis).await?;
                guessed |= used != Basis::Stored;
                slot.insert(loaded);
            }
        }
        Ok((inventories, guessed))
    }

    /// One append to the reservation and every inventory stream read, each
    /// expecting the version the decision was made on. Returns whether it
    /// wrote anything (false: an idempotent repeat).
    async fn append_decision(
        &self,
        reservation: &Loaded<Reservation>,
        inventories: &BTreeMap<Sku, Loaded<Inventory>>,
        decision: &ReservationDecision,
        context: &CommandContext,
    ) -> Result<bool, ExecuteError<ReservationError>> {
        let appends = reservation_appends(reservation, inventories, decision, context);
        let result = self.store().append_to_streams(&appends).await?;
        if result.written {
            self.remember_decision(reservation, inventories, decision, &result)
                .await;
        }
        Ok(result.written)
    }

    /// Remembers the states a written reservation decision leaves, and
    /// snapshots the inventories that are due.
    pub(crate) async fn remember_decision(
        &self,
        reservation: &Loaded<Reservation>,
        inventories: &BTreeMap<Sku, Loaded<Inventory>>,
        decision: &ReservationDecision,
        result: &AppendResult,
    ) {
        let reservation_state = fold_from(reservation.state.clone(), &decision.reservation);
        if let Some(version) = result.stream_version(&reservation.stream_id) {
            self.remember(&reservation.stream_id, &reservation_state, version);
        }
        for (sku, events) in &decision.inventory {
            if let Some(loaded) = inventories.get(sku) {
                let state = fold_from(loaded.state.clone(), events);
                let version = loaded.version + events.len() as i64;
                self.remember(&loaded.stream_id, &state, version);
                self.snapshot_if_due(&loaded.stream_id, loaded.version, version, &state)
                    .await;
            }
        }
    }
}

/// The states the pure decisions take.
pub(crate) fn states_of(
    inventories: &BTreeMap<Sku, Loaded<Inventory>>,
) -> BTreeMap<Sku, Inventory> {
    inventories
        .iter()
        .map(|(sku, loaded)| (sku.clone(), loaded.state.clone()))
        .collect()
}

/// The appends of a reservation decision: the reservation and every
/// inventory stream read, each expecting the version the decision was made
/// on. A stream that gets no event is still checked, since the decision
/// depended on it.
pub(crate) fn reservation_appends(
    reservation: &Loaded<Reservation>,
    inventories: &BTreeMap<Sku, Loaded<Inventory>>,
    decision: &ReservationDecision,
    context: &CommandContext,
) -> Vec<StreamAppend> {
    let mut encoded: BTreeMap<String, Vec<aggregates::EncodedEvent>> = decision
        .streams()
        .into_iter()
        .map(|stream| (stream.stream_id, stream.events))
        .collect();
    std::iter::once((&reservation.stream_id, reservation.version))
        .chain(
            inventories
                .values()
                .map(|loaded| (&loaded.stream_id, loaded.version)),
        )
        .map(|(stream_id, version)| {
            let events = encoded.remove(stream_id).unwrap_or_default();
            StreamAppend::new(
                stream_id.clone(),
                ExpectedVersion::Exact(version),
                context.new_events(stream_id, &events),
            )
        })
        .collect()
}
