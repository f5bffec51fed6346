//! Shipping an order: `OrderShipped` and the reservation committed
//! (`InventoryCommitted`, `StockCommitted` per SKU) in one atomic
//! multi-stream append, so stock is never left reserved for an order
//! that shipped, nor committed for one that did not.

use aggregates::inventory::InventoryError;
use aggregates::order::{Order, OrderError};
use aggregates::reservation::{Reservation, ReservationError};
use aggregates::shipment::{ship_order, ShipmentDecision, ShipmentError};
use aggregates::stream_id;
use async_trait::async_trait;
use event_store::{AppendResult, ExpectedVersion, StoreError};
use uuid::Uuid;

use crate::decision::{Decided, Decision, States};
use crate::executor::Basis;
use crate::reservations::{states_of, write_reservation_decision};
use crate::{CommandContext, CommandExecutor, ExecuteError};

impl CommandExecutor {
    /// Ships `order_id`, deciding on the order, its reservation and the
    /// inventory of every SKU it holds, and appending to all of them at
    /// once, each expecting the version decided on; retried on conflicts
    /// like any command. Returns the events written: empty when the order
    /// is shipped already (a repeat is a no-op success).
    ///
    /// The order's refusals (not placed, pending, rejected, cancelled) are
    /// [`ExecuteError::Domain`]; a reservation that cannot be committed for
    /// an order that may ship is [`ExecuteError::Inconsistent`].
    #[tracing::instrument(skip(self, context), fields(correlation_id = %context.correlation_id))]
    pub async fn ship_order(
        &self,
        order_id: Uuid,
        context: &CommandContext,
    ) -> Result<ShipmentDecision, ExecuteError<OrderError>> {
        self.run(&ShipOrder { order_id, context }, Basis::Cached)
            .await
    }
}

/// [`CommandExecutor::ship_order`]'s command.
pub(crate) struct ShipOrder<'a> {
    pub(crate) order_id: Uuid,
    pub(crate) context: &'a CommandContext,
}

#[async_trait]
impl Decision for ShipOrder<'_> {
    type Decided = ShipmentDecision;
    type Outcome = ShipmentDecision;
    type Error = OrderError;

    async fn decide(
        &self,
        states: &mut States<'_>,
    ) -> Result<Decided<ShipmentDecision>, ExecuteError<OrderError>> {
        let order_id = self.order_id;
        // The order is read before the reservation: a reservation is only
        // released or committed after the order changed, so a reservation
        // that disagrees with the order read shows that the order has moved
        // on since (see below).
        let order = states
            .get::<Order, OrderError>(&stream_id::<Order>(order_id))
            .await?;
        let reservation = states
            .get::<Reservation, ReservationError>(&stream_id::<Reservation>(order_id))
            .await
            .map_err(ExecuteError::domain_as_inconsistent)?;
        let inventories = states
            .inventories::<InventoryError>(reservation.state.skus())
            .await
            .map_err(ExecuteError::domain_as_inconsistent)?;
        let decision = match ship_order(
            &order.state,
            order_id,
            &reservation.state,
            &states_of(&inventories),
        ) {
            Ok(decision) => decision,
            Err(ShipmentError::Order(error)) => return Err(ExecuteError::Domain(error)),
            Err(ShipmentError::Reservation(error)) => {
                // The streams were read one after the other: a cancel and
                // its release landing in between look like this. A moved
                // order is a conflict, retried as one.
                let actual = states
                    .executor()
                    .store()
                    .stream_version(&order.stream_id)
                    .await?;
                if actual != order.version {
                    return Err(ExecuteError::Store(StoreError::WrongExpectedVersion {
                        stream_id: order.stream_id,
                        expected: ExpectedVersion::Exact(order.version),
                        actual,
                    }));
                }
                return Err(ExecuteError::Inconsistent(format!(
                    "order {order_id} may ship but its reservation cannot be committed: {error}"
                )));
            }
        };
        let mut decided = Decided::new(());
        decided.write(states.executor(), &order, &decision.order, self.context);
        write_reservation_decision(
            &mut decided,
            states.executor(),
            &reservation,
            &inventories,
            &decision.reservation,
            self.context,
        );
        Ok(decided.with_value(decision))
    }

    fn outcome(&self, decision: ShipmentDecision, _: Option<AppendResult>) -> ShipmentDecision {
        decision
    }
}
