//! OrderPlaced -> reserve every line; OrderCancelled -> release.

use async_trait::async_trait;
use commands::{CommandContext, CommandExecutor, DecisionBatch, ReservationChange};
use event_store::RecordedEvent;
use uuid::Uuid;

use aggregates::order::{Order, OrderEvent};
use aggregates::Aggregate;

use super::{context_for, decide_batch, failed, id_in_stream, DecidesInBatches};
use crate::read_models::decode;
use crate::runtime::FencedCommit;
use crate::{BatchDecisions, HandlerError, Reactor};

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
        let Some((order_id, change)) = change_for(event)? else {
            return Ok(());
        };
        self.executor
            .change_reservation(order_id, &change, &context_for(NAME, event))
            .await
            .map_err(failed)?;
        Ok(())
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
impl DecidesInBatches for InventoryReactor {
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
        let Some((order_id, change)) = change_for(event)? else {
            return Ok(());
        };
        batch
            .change_reservation(order_id, &change, context)
            .await
            .map_err(failed)
    }
}

/// The change an order's event asks of its reservation.
fn change_for(event: &RecordedEvent) -> Result<Option<(Uuid, ReservationChange)>, HandlerError> {
    if event.category() != Order::CATEGORY {
        return Ok(None);
    }
    let change = match decode::<OrderEvent>(event)? {
        OrderEvent::Placed { lines, .. } => ReservationChange::Reserve { lines },
        OrderEvent::Cancelled { .. } => ReservationChange::Release,
        _ => return Ok(None),
    };
    Ok(Some((id_in_stream(event, Order::CATEGORY)?, change)))
}
