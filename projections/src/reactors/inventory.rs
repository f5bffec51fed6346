//! OrderPlaced -> reserve every line; OrderCancelled -> release.

use async_trait::async_trait;
use commands::{CommandExecutor, ReservationChange};
use event_store::RecordedEvent;

use aggregates::order::{Order, OrderEvent};
use aggregates::Aggregate;

use super::{context_for, failed, id_in_stream};
use crate::read_models::decode;
use crate::{HandlerError, Reactor};

pub struct InventoryReactor {
    pub executor: CommandExecutor,
}

pub const NAME: &str = "inventory-reactor";

#[async_trait]
impl Reactor for InventoryReactor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn category(&self) -> Option<&'static str> {
        Some(Order::CATEGORY)
    }

    async fn react(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.category() != Order::CATEGORY {
            return Ok(());
        }
        let change = match decode::<OrderEvent>(event)? {
            OrderEvent::Placed { lines, .. } => ReservationChange::Reserve { lines },
            OrderEvent::Cancelled { .. } => ReservationChange::Release,
            _ => return Ok(()),
        };
        let order_id = id_in_stream(event, Order::CATEGORY)?;
        self.executor
            .change_reservation(order_id, &change, &context_for(NAME, event))
            .await
            .map_err(failed)?;
        Ok(())
    }
}
