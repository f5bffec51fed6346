//! Domain events -> integration contracts. Pure: the relay hands over the
//! earlier events of the source stream when [`needs_history`] says the
//! event alone does not carry what its contract needs (an `OrderShipped`
//! carries nothing; the lines and total are in the stream's `OrderPlaced`).
//!
//! Events with no contract map to nothing: `OrderReserved` (the
//! reservation's `inventory.reserved.v1` says it with the lines),
//! `OrderRejected` and `OrderPaymentFailed` (said by
//! `inventory.unavailable.v1` and `payment.failed.v1`), the payment
//! retry requests, `PaymentRequested`, `PaymentRefunded` (no refunds are
//! made yet), `InventoryReleased` and `InventoryCommitted` (their stock
//! moves are `stock.changed.v1`).

use aggregates::inventory::{Inventory, InventoryEvent};
use aggregates::order::OrderEvent;
use aggregates::payment::PaymentEvent;
use aggregates::reservation::ReservationEvent;
use aggregates::{Aggregate, DomainEvent};
use event_store::RecordedEvent;
use uuid::Uuid;

use crate::payloads::*;
use crate::{ContractError, IntegrationEvent};

/// Whether mapping `event` needs the earlier events of its stream.
pub fn needs_history(event: &RecordedEvent) -> bool {
    matches!(
        (event.category(), event.event_type.as_str()),
        ("order", "OrderShipped" | "OrderPaid")
            | ("payment", "PaymentCaptured" | "PaymentFailed")
            | ("inventory", _)
    )
}

/// The messages to publish for `event`, in order. `earlier` holds the
/// events of its stream before it, oldest first, when [`needs_history`]
/// says so (otherwise it is ignored and may be empty).
pub fn integration_events(
    event: &RecordedEvent,
    earlier: &[RecordedEvent],
) -> Result<Vec<IntegrationEvent>, ContractError> {
    let mapped = match event.category() {
        "order" => order(event, earlier)?,
        "reservation" => reservation(event)?,
        "payment" => payment(event, earlier)?,
        "inventory" => inventory(event, earlier)?,
        _ => Vec::new(),
    };
    Ok(mapped)
}

fn decode<E: DomainEvent>(event: &RecordedEvent) -> Result<E, ContractError> {
    E::from_stored(&event.event_type, event.schema_version, event.data.clone()).map_err(|source| {
        ContractError::Decode {
            event_id: event.event_id,
            source,
        }
    })
}

fn missing(event: &RecordedEvent, needs: &'static str) -> ContractError {
    ContractError::MissingHistory {
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        stream_id: event.stream_id.clone(),
        needs,
    }
}

/// `order-<uuid>` -> the uuid.
fn id_in_stream(stream_id: &str) -> Result<Uuid, ContractError> {
    stream_id
        .split_once('-')
        .and_then(|(_, id)| Uuid::try_parse(id).ok())
        .ok_or_else(|| ContractError::StreamId(stream_id.to_owned()))
}

/// What an order's `OrderPlaced` says, for the contracts of its later events.
struct Placed {
    customer_id: String,
    currency: String,
    lines: Vec<SoldLineV1>,
    total: rust_decimal::Decimal,
}

fn placed_of(order: &OrderEvent) -> Option<Placed> {
    match order {
        OrderEvent::Placed {
            customer_id,
            currency,
            lines,
            total,
            ..
        } => Some(Placed {
            customer_id: customer_id.clone(),
            currency: currency.code().to_owned(),
            lines: lines
                .iter()
                .map(|line| SoldLineV1 {
                    sku: line.sku.as_str().to_owned(),
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                })
                .collect(),
            total: *total,
        }),
        _ => None,
    }
}

fn earlier_placed(
    event: &RecordedEvent,
    earlier: &[RecordedEvent],
) -> Result<Placed, ContractError> {
    for candidate in earlier.iter().filter(|e| e.event_type == "OrderPlaced") {
        if let Some(placed) = placed_of(&decode::<OrderEvent>(candidate)?) {
            return Ok(placed);
        }
    }
    Err(missing(event, "OrderPlaced"))
}

fn order(
    event: &RecordedEvent,
    earlier: &[RecordedEvent],
) -> Result<Vec<IntegrationEvent>, ContractError> {
    let id = event.event_id;
    let at = event.recorded_at;
    let decoded = decode::<OrderEvent>(event)?;
    let contract = match &decoded {
        OrderEvent::Placed {
            order_id,
            payment_method,
            ..
        } => {
            let placed = placed_of(&decoded).ok_or_else(|| missing(event, "OrderPlaced"))?;
            IntegrationEvent::of(
                id,
                &OrderPlacedV1 {
                    order_id: *order_id,
                    customer_id: placed.customer_id,
                    currency: placed.currency,
                    payment_method: payment_method.as_str().to_owned(),
                    lines: placed.lines,
                    total: placed.total,
                    placed_at: at,
                },
            )?
        }
        OrderEvent::Cancelled { reason } => IntegrationEvent::of(
            id,
            &OrderCancelledV1 {
                order_id: id_in_stream(&event.stream_id)?,
                reason: reason.clone(),
                cancelled_at: at,
            },
        )?,
        OrderEvent::Shipped {} => return order_shipped(event, earlier),
        OrderEvent::Paid { amount } => {
            let placed = earlier_placed(event, earlier)?;
            IntegrationEvent::of(
                id,
                &OrderPaidV1 {
                    order_id: id_in_stream(&event.stream_id)?,
                    amount: *amount,
                    currency: placed.currency,
                    paid_at: at,
                },
            )?
        }
        OrderEvent::Reserved {}
        | OrderEvent::Rejected { .. }
        | OrderEvent::PaymentFailed { .. }
        | OrderEvent::PaymentRetryRequested { .. } => return Ok(Vec::new()),
    };
    Ok(vec![contract])
}

/// `order.shipped.v1` and, for its migration window, `order.shipped.v2`
/// (the same facts, the total as an amount with its currency).
fn order_shipped(
    event: &RecordedEvent,
    earlier: &[RecordedEvent],
) -> Result<Vec<IntegrationEvent>, ContractError> {
    let placed = earlier_placed(event, earlier)?;
    let order_id = id_in_stream(&event.stream_id)?;
    let v1 = OrderShippedV1 {
        order_id,
        customer_id: placed.customer_id,
        currency: placed.currency,
        total: placed.total,
        lines: placed.lines,
        shipped_at: event.recorded_at,
    };
    let v2 = OrderShippedV2 {
        order_id,
        customer_id: v1.customer_id.clone(),
        total: MoneyV2 {
            amount: v1.total,
            currency: v1.currency.clone(),
        },
        lines: v1.lines.clone(),
        shipped_at: v1.shipped_at,
    };
    Ok(vec![
        IntegrationEvent::of(message_id(event.event_id, OrderShippedV1::NAME, 0), &v1)?,
        IntegrationEvent::of(message_id(event.event_id, OrderShippedV2::NAME, 1), &v2)?,
    ])
}

fn reservation(event: &RecordedEvent) -> Result<Vec<IntegrationEvent>, ContractError> {
    let id = event.event_id;
    let at = event.recorded_at;
    let contract = match decode::<ReservationEvent>(event)? {
        ReservationEvent::Reserved {
            order_id,
            allocations,
        } => IntegrationEvent::of(
            id,
            &InventoryReservedV1 {
                order_id,
                lines: allocations
                    .into_iter()
                    .map(|allocation| ReservedLineV1 {
                        sku: allocation.sku.as_str().to_owned(),
                        warehouse: allocation.warehouse.as_str().to_owned(),
                        quantity: allocation.quantity,
                    })
                    .collect(),
                reserved_at: at,
            },
        )?,
        ReservationEvent::Unavailable {
            order_id,
            shortages,
        } => IntegrationEvent::of(
            id,
            &InventoryUnavailableV1 {
                order_id,
                shortages: shortages
                    .into_iter()
                    .map(|shortage| ShortageV1 {
                        sku: shortage.sku.as_str().to_owned(),
                        requested: shortage.requested,
                        available: shortage.available,
                    })
                    .collect(),
                rejected_at: at,
            },
        )?,
        ReservationEvent::Released { .. } | ReservationEvent::Committed { .. } => {
            return Ok(Vec::new())
        }
    };
    Ok(vec![contract])
}

/// The payment attempt `attempt` was made for: its `PaymentRequested`.
struct Requested {
    payment_id: Uuid,
    order_id: Uuid,
    amount: rust_decimal::Decimal,
    currency: String,
}

fn earlier_request(
    event: &RecordedEvent,
    earlier: &[RecordedEvent],
    attempt: u32,
) -> Result<Requested, ContractError> {
    for candidate in earlier
        .iter()
        .rev()
        .filter(|e| e.event_type == "PaymentRequested")
    {
        if let PaymentEvent::Requested {
            order_id,
            amount,
            currency,
            attempt: requested,
            ..
        } = decode::<PaymentEvent>(candidate)?
        {
            if requested == attempt {
                return Ok(Requested {
                    payment_id: candidate.event_id,
                    order_id,
                    amount,
                    currency: currency.code().to_owned(),
                });
            }
        }
    }
    Err(missing(event, "PaymentRequested"))
}

fn payment(
    event: &RecordedEvent,
    earlier: &[RecordedEvent],
) -> Result<Vec<IntegrationEvent>, ContractError> {
    let id = event.event_id;
    let at = event.recorded_at;
    let contract = match decode::<PaymentEvent>(event)? {
        PaymentEvent::Captured {
            reference,
            amount,
            attempt,
        } => {
            let request = earlier_request(event, earlier, attempt)?;
            IntegrationEvent::of(
                id,
                &PaymentCapturedV1 {
                    order_id: request.order_id,
                    payment_id: request.payment_id,
                    amount,
                    currency: request.currency,
                    reference,
                    captured_at: at,
                },
            )?
        }
        PaymentEvent::Failed {
            reason,
            retryable,
            attempt,
        } => {
            let request = earlier_request(event, earlier, attempt)?;
            IntegrationEvent::of(
                id,
                &PaymentFailedV1 {
                    order_id: request.order_id,
                    payment_id: request.payment_id,
                    amount: request.amount,
                    currency: request.currency,
                    reason,
                    is_final: !retryable,
                    failed_at: at,
                },
            )?
        }
        PaymentEvent::Requested { .. } | PaymentEvent::Refunded { .. } => return Ok(Vec::new()),
    };
    Ok(vec![contract])
}

/// One `stock.changed.v1` per warehouse the event moved stock in, with
/// that warehouse's levels after it (the stream folded up to the event).
fn inventory(
    event: &RecordedEvent,
    earlier: &[RecordedEvent],
) -> Result<Vec<IntegrationEvent>, ContractError> {
    Ok(stock_changes(event, fold_stock(earlier)?)?.0)
}

/// The stock of an inventory stream after `events` (oldest first).
pub fn fold_stock(events: &[RecordedEvent]) -> Result<Inventory, ContractError> {
    let mut stock = Inventory::default();
    for event in events {
        stock = stock.apply(&decode::<InventoryEvent>(event)?);
    }
    Ok(stock)
}

/// The `stock.changed.v1` messages of an inventory event, given the stock
/// before it, and the stock after it (so a caller that sees a stream's
/// events in order can keep the state instead of reading the stream again).
pub fn stock_changes(
    event: &RecordedEvent,
    before: Inventory,
) -> Result<(Vec<IntegrationEvent>, Inventory), ContractError> {
    let change = decode::<InventoryEvent>(event)?;
    let stock = before.apply(&change);
    let sku = change.sku().as_str().to_owned();
    let moves: Vec<(StockChange, String, i64)> = match &change {
        InventoryEvent::Received {
            warehouse,
            quantity,
            ..
        } => vec![(
            StockChange::Received,
            warehouse.as_str().to_owned(),
            units(*quantity),
        )],
        InventoryEvent::Adjusted {
            warehouse, delta, ..
        } => vec![(StockChange::Adjusted, warehouse.as_str().to_owned(), *delta)],
        InventoryEvent::Reserved { allocations, .. } => moved(StockChange::Reserved, allocations),
        InventoryEvent::Released { allocations, .. } => moved(StockChange::Released, allocations),
        InventoryEvent::Committed { allocations, .. } => moved(StockChange::Committed, allocations),
    };
    let messages = moves
        .into_iter()
        .enumerate()
        .map(|(index, (change, warehouse, quantity))| {
            let level = stock
                .warehouses
                .iter()
                .find(|(name, _)| name.as_str() == warehouse)
                .map(|(_, level)| *level)
                .unwrap_or_default();
            IntegrationEvent::of(
                message_id(event.event_id, StockChangedV1::NAME, index),
                &StockChangedV1 {
                    sku: sku.clone(),
                    warehouse,
                    change,
                    quantity,
                    on_hand: level.on_hand,
                    reserved: level.reserved,
                    available: level.available(),
                    changed_at: event.recorded_at,
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((messages, stock))
}

fn moved(
    change: StockChange,
    allocations: &[aggregates::inventory::Allocation],
) -> Vec<(StockChange, String, i64)> {
    allocations
        .iter()
        .map(|allocation| {
            (
                change,
                allocation.warehouse.as_str().to_owned(),
                units(allocation.quantity),
            )
        })
        .collect()
}

/// Quantities are bounded far below `i64::MAX` (`aggregates::limits`).
fn units(quantity: u64) -> i64 {
    i64::try_from(quantity).unwrap_or(i64::MAX)
}

/// The first message of an event takes the event's id; later ones an id
/// derived from it, the same every time the event is mapped.
fn message_id(event_id: Uuid, contract: &str, index: usize) -> Uuid {
    if index == 0 {
        event_id
    } else {
        Uuid::new_v5(&event_id, format!("{contract}#{index}").as_bytes())
    }
}

#[cfg(test)]
mod tests;
