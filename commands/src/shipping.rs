//! Shipping an order: `OrderShipped` and the reservation committed
//! (`InventoryCommitted`, `StockCommitted` per SKU) in one atomic
//! multi-stream append, so stock is never left reserved for an order
//! that shipped, nor committed for one that did not.

use aggregates::order::{Order, OrderError};
use aggregates::reservation::Reservation;
use aggregates::shipment::{ship_order, ShipmentDecision, ShipmentError};
use aggregates::{fold_from, stream_id, EncodedEvent};
use event_store::{ExpectedVersion, StoreError, StreamAppend};
use uuid::Uuid;

use crate::executor::Basis;
use crate::reservations::{reservation_appends, states_of};
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
        self.with_retries(Basis::Cached, |basis| {
            self.ship_order_once(order_id, context, basis)
        })
        .await
    }

    async fn ship_order_once(
        &self,
        order_id: Uuid,
        context: &CommandContext,
        mut basis: Basis,
    ) -> Result<ShipmentDecision, ExecuteError<OrderError>> {
        loop {
            // The order is read before the reservation: a reservation is
            // only released or committed after the order changed, so a
            // reservation that disagrees with the order read shows that the
            // order has moved on since (see below).
            let (order, used) = self
                .state_for_decision::<Order>(&stream_id::<Order>(order_id), basis)
                .await?;
            let mut guessed = used != Basis::Stored;
            let (reservation, used) = self
                .state_for_decision::<Reservation>(&stream_id::<Reservation>(order_id), basis)
                .await
                .map_err(ExecuteError::domain_as_inconsistent)?;
            guessed |= used != Basis::Stored;
            let (inventories, inventories_guessed) = self
                .inventories_for_decision(reservation.state.skus(), basis)
                .await
                .map_err(ExecuteError::domain_as_inconsistent)?;
            guessed |= inventories_guessed;
            basis = Basis::Stored;
            let decision = ship_order(
                &order.state,
                order_id,
                &reservation.state,
                &states_of(&inventories),
            );
            // Only an append checks the states decided on; anything else
            // decided on a guess is decided again on the stored states.
            let decision = match decision {
                Ok(decision) if !decision.is_empty() => decision,
                _ if guessed => continue,
                Ok(decision) => return Ok(decision),
                Err(ShipmentError::Order(error)) => return Err(ExecuteError::Domain(error)),
                Err(ShipmentError::Reservation(error)) => {
                    // The streams were read one after the other: a cancel
                    // and its release landing in between look like this.
                    // A moved order is a conflict, retried as one.
                    let actual = self.store().stream_version(&order.stream_id).await?;
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
            let encoded: Vec<EncodedEvent> = decision.order.iter().map(EncodedEvent::of).collect();
            let mut appends = vec![StreamAppend::new(
                order.stream_id.clone(),
                ExpectedVersion::Exact(order.version),
                context.new_events(&order.stream_id, &encoded),
            )];
            appends.extend(reservation_appends(
                &reservation,
                &inventories,
                &decision.reservation,
                context,
            ));
            let result = self.store().append_to_streams(&appends).await?;
            if !result.written {
                if guessed {
                    continue;
                }
                // A repeat of events stored at or before the versions read.
                return Ok(decision);
            }
            let version = order.version + decision.order.len() as i64;
            let state = fold_from(order.state.clone(), &decision.order);
            self.remember(&order.stream_id, &state, version);
            self.snapshot_if_due(&order.stream_id, order.version, version, &state)
                .await;
            self.remember_decision(&reservation, &inventories, &decision.reservation, &result)
                .await;
            return Ok(decision);
        }
    }
}
