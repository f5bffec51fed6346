//! Shipping: the order is marked shipped and its reservation committed
//! (the stock leaves on hand). Automatic on OrderReserved in `auto`
//! fulfilment; `POST /orders/{id}/ship` calls [`ship_order`] in `manual`.

use async_trait::async_trait;
use commands::{CommandContext, CommandExecutor, ExecuteError, ReservationChange};
use event_store::RecordedEvent;
use uuid::Uuid;

use aggregates::order::{Order, OrderCommand, OrderError, OrderEvent, OrderStatus};
use aggregates::stream_id;

use super::{context_for, failed, id_in_stream};
use crate::read_models::decode;
use crate::{HandlerError, Reactor};

pub const NAME: &str = "fulfilment-reactor";

/// Ships a reserved order: `OrderShipped`, then the reservation committed.
///
/// The order goes first so that a cancelled order is never committed; a
/// crash between the two is mended by running this again (shipping an
/// order already shipped is a no-op, committing goes through).
pub async fn ship_order(
    executor: &CommandExecutor,
    order_id: Uuid,
    context: &CommandContext,
) -> Result<(), ExecuteError<OrderError>> {
    executor
        .execute::<Order>(&stream_id::<Order>(order_id), &OrderCommand::Ship, context)
        .await?;
    executor
        .change_reservation(order_id, &ReservationChange::Commit, context)
        .await
        .map_err(ExecuteError::domain_as_inconsistent)?;
    Ok(())
}

pub struct FulfilmentReactor {
    pub executor: CommandExecutor,
}

#[async_trait]
impl Reactor for FulfilmentReactor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn category(&self) -> Option<&'static str> {
        Some("order")
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.category() != "order" || event.event_type != "OrderReserved" {
            return Ok(());
        }
        let OrderEvent::Reserved {} = decode::<OrderEvent>(event)? else {
            return Ok(());
        };
        let order_id = id_in_stream(event, "order")?;
        match ship_order(&self.executor, order_id, &context_for(NAME, event)).await {
            // Cancelled between reservation and shipping: nothing to ship.
            Err(ExecuteError::Domain(OrderError::CannotShip {
                status: OrderStatus::Cancelled,
            })) => Ok(()),
            outcome => outcome.map_err(failed),
        }
    }
}
