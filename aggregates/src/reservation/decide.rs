//! `impl Aggregate for Reservation`: the reservation stream's own rules.

use super::{
    Reservation, ReservationCommand, ReservationError, ReservationEvent, ReservationStatus,
};
use crate::Aggregate;

use ReservationStatus as S;

impl Aggregate for Reservation {
    const CATEGORY: &'static str = "reservation";
    const SNAPSHOT_VERSION: i32 = 1;

    type Command = ReservationCommand;
    type Event = ReservationEvent;
    type Error = ReservationError;

    fn apply(self, event: &ReservationEvent) -> Self {
        self.evolve(event)
    }

    fn decide(
        &self,
        command: &ReservationCommand,
    ) -> Result<Vec<ReservationEvent>, ReservationError> {
        let order_id = command.order_id();
        if let Some(expected) = self.order_id {
            if expected != order_id {
                return Err(ReservationError::OrderMismatch {
                    expected,
                    actual: order_id,
                });
            }
        }
        let status = self.status;
        match command {
            ReservationCommand::Reserve { allocations, .. } => Ok(match status {
                S::None => vec![ReservationEvent::Reserved {
                    order_id,
                    allocations: allocations.clone(),
                }],
                S::Reserved | S::Failed | S::Released | S::Committed => Vec::new(),
            }),
            ReservationCommand::MarkUnavailable { shortages, .. } => Ok(match status {
                S::None => vec![ReservationEvent::Unavailable {
                    order_id,
                    shortages: shortages.clone(),
                }],
                S::Reserved | S::Failed | S::Released | S::Committed => Vec::new(),
            }),
            ReservationCommand::Release { .. } => match status {
                S::None | S::Reserved => Ok(vec![ReservationEvent::Released { order_id }]),
                S::Failed | S::Released => Ok(Vec::new()),
                S::Committed => Err(ReservationError::AlreadyCommitted),
            },
            ReservationCommand::Commit { .. } => match status {
                S::Reserved => Ok(vec![ReservationEvent::Committed { order_id }]),
                S::Committed => Ok(Vec::new()),
                S::None | S::Failed | S::Released => Err(ReservationError::NotReserved { status }),
            },
        }
    }
}
