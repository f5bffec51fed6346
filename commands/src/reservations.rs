//! Decisions across an order's reservation and the inventory of each SKU:
//! reserve all lines, release, or commit on shipment, in one atomic
//! multi-stream append.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use aggregates::inventory::Inventory;
use aggregates::order::OrderLine;
use aggregates::reservation::{
    commit_order, release_order, reserve_order, Reservation, ReservationDecision, ReservationError,
};
use aggregates::values::Sku;
use aggregates::{fold_from, stream_id};
use event_store::{ExpectedVersion, StreamAppend};
use uuid::Uuid;

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
        self.with_retries(|| async move {
            let reservation = self
                .load::<Reservation>(&stream_id::<Reservation>(order_id))
                .await?;
            let skus: Vec<Sku> = match change {
                ReservationChange::Reserve { lines } => {
                    lines.iter().map(|line| line.sku.clone()).collect()
                }
                ReservationChange::Release | ReservationChange::Commit => {
                    reservation.state.skus().into_iter().collect()
                }
            };
            let mut inventories: BTreeMap<Sku, Loaded<Inventory>> = BTreeMap::new();
            for sku in skus {
                if let Entry::Vacant(slot) = inventories.entry(sku) {
                    let stream = stream_id::<Inventory>(slot.key());
                    let loaded = self
                        .load::<Inventory>(&stream)
                        .await
                        .map_err(|error| error.map_domain(ReservationError::Inventory))?;
                    slot.insert(loaded);
                }
            }
            let states: BTreeMap<Sku, Inventory> = inventories
                .iter()
                .map(|(sku, loaded)| (sku.clone(), loaded.state.clone()))
                .collect();
            let decision = match change {
                ReservationChange::Reserve { lines } => {
                    reserve_order(&reservation.state, order_id, lines, &states)
                }
                ReservationChange::Release => release_order(&reservation.state, order_id, &states),
                ReservationChange::Commit => commit_order(&reservation.state, order_id, &states),
            }
            .map_err(ExecuteError::Domain)?;
            if decision.is_empty() {
                return Ok(decision);
            }
            self.append_decision(&reservation, &inventories, &decision, context)
                .await?;
            Ok(decision)
        })
        .await
    }

    /// One append to the reservation and every inventory stream read, each
    /// expecting the version the decision was made on: a stream that
    /// gets no event is still checked, since the decision depended on it.
    async fn append_decision(
        &self,
        reservation: &Loaded<Reservation>,
        inventories: &BTreeMap<Sku, Loaded<Inventory>>,
        decision: &ReservationDecision,
        context: &CommandContext,
    ) -> Result<(), ExecuteError<ReservationError>> {
        let mut encoded: BTreeMap<String, Vec<aggregates::EncodedEvent>> = decision
            .streams()
            .into_iter()
            .map(|stream| (stream.stream_id, stream.events))
            .collect();
        let mut appends = Vec::with_capacity(inventories.len() + 1);
        for (stream_id, version) in std::iter::once((&reservation.stream_id, reservation.version))
            .chain(
                inventories
                    .values()
                    .map(|loaded| (&loaded.stream_id, loaded.version)),
            )
        {
            let events = encoded.remove(stream_id).unwrap_or_default();
            appends.push(StreamAppend::new(
                stream_id.clone(),
                ExpectedVersion::Exact(version),
                context.new_events(stream_id, &events),
            ));
        }
        let result = self.store().append_to_streams(&appends).await?;
        if !result.written {
            return Ok(());
        }
        for (sku, events) in &decision.inventory {
            if let Some(loaded) = inventories.get(sku) {
                let state = fold_from(loaded.state.clone(), events);
                let version = loaded.version + events.len() as i64;
                self.snapshot_if_due(&loaded.stream_id, loaded.version, version, &state)
                    .await;
            }
        }
        Ok(())
    }
}
