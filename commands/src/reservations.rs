//! Decisions across an order's reservation and the inventory of each SKU:
//! reserve all lines, release, or commit on shipment, in one atomic
//! multi-stream append.

use std::collections::BTreeMap;

use aggregates::inventory::{Inventory, InventoryError};
use aggregates::order::OrderLine;
use aggregates::reservation::{
    commit_order, release_order, reserve_order, Reservation, ReservationDecision, ReservationError,
};
use aggregates::stream_id;
use aggregates::values::Sku;
use async_trait::async_trait;
use event_store::AppendResult;
use uuid::Uuid;

use crate::decision::{Decided, Decision, States};
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
        let decision = ChangeReservation {
            order_id,
            change,
            context,
        };
        self.run(&decision, decision.first_basis()).await
    }
}

/// [`CommandExecutor::change_reservation`]'s command.
pub(crate) struct ChangeReservation<'a> {
    pub(crate) order_id: Uuid,
    pub(crate) change: &'a ReservationChange,
    pub(crate) context: &'a CommandContext,
}

impl ChangeReservation<'_> {
    /// Reserving creates the order's reservation stream: guess it is new.
    pub(crate) fn first_basis(&self) -> Basis {
        match self.change {
            ReservationChange::Reserve { .. } => Basis::Presumed,
            ReservationChange::Release | ReservationChange::Commit => Basis::Cached,
        }
    }
}

#[async_trait]
impl Decision for ChangeReservation<'_> {
    type Decided = ReservationDecision;
    type Outcome = ReservationDecision;
    type Error = ReservationError;

    async fn decide(
        &self,
        states: &mut States<'_>,
    ) -> Result<Decided<ReservationDecision>, ExecuteError<ReservationError>> {
        let reservation = states
            .get::<Reservation, _>(&stream_id::<Reservation>(self.order_id))
            .await?;
        let skus: Vec<Sku> = match self.change {
            ReservationChange::Reserve { lines } => {
                lines.iter().map(|line| line.sku.clone()).collect()
            }
            ReservationChange::Release | ReservationChange::Commit => {
                reservation.state.skus().into_iter().collect()
            }
        };
        let inventories = states
            .inventories::<InventoryError>(skus)
            .await
            .map_err(|error| error.map_domain(ReservationError::Inventory))?;
        let levels = states_of(&inventories);
        let decision = match self.change {
            ReservationChange::Reserve { lines } => {
                reserve_order(&reservation.state, self.order_id, lines, &levels)
            }
            ReservationChange::Release => release_order(&reservation.state, self.order_id, &levels),
            ReservationChange::Commit => commit_order(&reservation.state, self.order_id, &levels),
        }
        .map_err(ExecuteError::Domain)?;
        let mut decided = Decided::new(());
        write_reservation_decision(
            &mut decided,
            states.executor(),
            &reservation,
            &inventories,
            &decision,
            self.context,
        );
        Ok(decided.with_value(decision))
    }

    fn outcome(
        &self,
        decision: ReservationDecision,
        _: Option<AppendResult>,
    ) -> ReservationDecision {
        decision
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

/// The writes of a reservation decision: the reservation and every
/// inventory stream read, each expecting the version the decision was made
/// on. A stream that gets no event is still checked, since the decision
/// depended on it.
pub(crate) fn write_reservation_decision<T>(
    decided: &mut Decided<T>,
    executor: &CommandExecutor,
    reservation: &Loaded<Reservation>,
    inventories: &BTreeMap<Sku, Loaded<Inventory>>,
    decision: &ReservationDecision,
    context: &CommandContext,
) {
    decided.write(executor, reservation, &decision.reservation, context);
    for (sku, loaded) in inventories {
        let events = decision
            .inventory
            .get(sku)
            .map(Vec::as_slice)
            .unwrap_or_default();
        decided.write(executor, loaded, events, context);
    }
}
