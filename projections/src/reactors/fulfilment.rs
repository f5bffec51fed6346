//! Shipping: automatic on OrderReserved in `auto` fulfilment (in `manual`,
//! `POST /orders/{id}/ship` does the same). The order is marked shipped and
//! its reservation committed (the stock leaves on hand) in one atomic
//! append, by [`CommandExecutor::ship_order`].

use async_trait::async_trait;
use commands::{CommandExecutor, ExecuteError};
use event_store::RecordedEvent;

use aggregates::order::{Order, OrderError, OrderEvent, OrderStatus};
use aggregates::Aggregate;

use super::{context_for, failed, id_in_stream};
use crate::read_models::decode;
use crate::{HandlerError, Reactor};

pub const NAME: &str = "fulfilment-reactor";

pub struct FulfilmentReactor {
    pub executor: CommandExecutor,
}

#[async_trait]
impl Reactor for FulfilmentReactor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn category(&self) -> Option<&'static str> {
        Some(Order::CATEGORY)
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.category() != Order::CATEGORY || event.event_type != "OrderReserved" {
            return Ok(());
        }
        let OrderEvent::Reserved {} = decode::<OrderEvent>(event)? else {
            return Ok(());
        };
        let order_id = id_in_stream(event, Order::CATEGORY)?;
        match self
            .executor
            .ship_order(order_id, &context_for(NAME, event))
            .await
        {
            // Cancelled between reservation and shipping: nothing to ship.
            Err(ExecuteError::Domain(OrderError::CannotShip {
                status: OrderStatus::Cancelled,
            })) => Ok(()),
            outcome => outcome.map(|_| ()).map_err(failed),
        }
    }
}
