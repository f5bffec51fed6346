//! Shipping: automatic on OrderReserved in `auto` fulfilment (in `manual`,
//! `POST /orders/{id}/ship` does the same). The order is marked shipped and
//! its reservation committed (the stock leaves on hand) in one atomic
//! append, by [`CommandExecutor::ship_order`].

use async_trait::async_trait;
use commands::{CommandContext, CommandExecutor, DecisionBatch, ExecuteError};
use event_store::RecordedEvent;
use uuid::Uuid;

use aggregates::order::{Order, OrderError, OrderEvent, OrderStatus};
use aggregates::Aggregate;

use super::{context_for, decide_batch, failed, id_in_stream, DecidesInBatches};
use crate::read_models::decode;
use crate::runtime::FencedCommit;
use crate::{BatchDecisions, HandlerError, Reactor};

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
        let Some(order_id) = order_to_ship(event)? else {
            return Ok(());
        };
        let shipped = self
            .executor
            .ship_order(order_id, &context_for(NAME, event))
            .await
            .map(|_| ());
        unless_cancelled(shipped)
    }

    async fn decide_batch(
        &self,
        events: &[RecordedEvent],
        _early: &FencedCommit,
    ) -> Option<Result<BatchDecisions, HandlerError>> {
        decide_batch(self, events).await
    }
}

#[async_trait]
impl DecidesInBatches for FulfilmentReactor {
    const NAME: &'static str = NAME;

    fn executor(&self) -> &CommandExecutor {
        &self.executor
    }

    async fn decide_into(
        &self,
        batch: &mut DecisionBatch,
        event: &RecordedEvent,
        context: &CommandContext,
    ) -> Result<(), HandlerError> {
        let Some(order_id) = order_to_ship(event)? else {
            return Ok(());
        };
        unless_cancelled(batch.ship_order(order_id, context).await)
    }
}

/// The order an `OrderReserved` asks to ship.
fn order_to_ship(event: &RecordedEvent) -> Result<Option<Uuid>, HandlerError> {
    if event.category() != Order::CATEGORY || event.event_type != "OrderReserved" {
        return Ok(None);
    }
    let OrderEvent::Reserved {} = decode::<OrderEvent>(event)? else {
        return Ok(None);
    };
    Ok(Some(id_in_stream(event, Order::CATEGORY)?))
}

/// Cancelled between reservation and shipping: nothing to ship.
fn unless_cancelled(shipped: Result<(), ExecuteError<OrderError>>) -> Result<(), HandlerError> {
    match shipped {
        Err(ExecuteError::Domain(OrderError::CannotShip {
            status: OrderStatus::Cancelled,
        })) => Ok(()),
        outcome => outcome.map_err(failed),
    }
}
