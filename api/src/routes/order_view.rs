//! How an order is shown: the read model when it is up to date, else the
//! aggregate (so a client reads its own writes), as the API's order body.

use aggregates::order::{Order, OrderLine, PlacedOrder};
use aggregates::stream_id;
use aggregates::values::Shortage;
use chrono::{DateTime, Utc};
use event_store::{AsOf, CorrelationId, StreamRead};
use projections::read_models::current::{read_model_or_aggregate, Current};
use projections::read_models::orders::{find_order, OrderSummary};
use projections::read_models::payments::{find_payment, PaymentSummary};
use uuid::Uuid;

use super::orders::{order_error, unknown_order};
use crate::dto::{OrderBody, OrderLineBody, PaymentBody, ShortageBody};
use crate::error::ApiError;
use crate::AppState;

/// An order now: the read model when it is up to date with the stream,
/// else the aggregate, so a client always reads its own writes.
pub(super) async fn current_order(state: &AppState, order_id: Uuid) -> Result<OrderBody, ApiError> {
    let pool = state.store().pool();
    let stream = stream_id::<Order>(order_id);
    let (current, payment) = tokio::try_join!(
        async {
            read_model_or_aggregate::<Order, _>(
                state.executor(),
                &stream,
                find_order(pool, order_id),
            )
            .await
            .map_err(order_error)
        },
        async { find_payment(pool, order_id).await.map_err(ApiError::from) },
    )?;
    let mut body = match current {
        None => return Err(unknown_order(&order_id.to_string())),
        Some(Current::ReadModel(summary)) => body_from_summary(summary)?,
        Some(Current::Aggregate(loaded)) => {
            body_from_aggregate(state, &stream, &loaded.state, loaded.version, None)
                .await?
                .ok_or_else(|| unknown_order(&order_id.to_string()))?
        }
    };
    body.payment = payment.map(payment_body);
    Ok(body)
}

/// The body for an aggregate at `version`, with the times and correlation
/// id read from its stream; `None` if the order was not placed (yet).
pub(super) async fn body_from_aggregate(
    state: &AppState,
    stream: &str,
    order: &Order,
    version: i64,
    as_of: Option<AsOf>,
) -> Result<Option<OrderBody>, ApiError> {
    let Some(placed) = &order.placed else {
        return Ok(None);
    };
    let first = state
        .store()
        .read_stream(stream, StreamRead::forward_from(1).limit(1))
        .await?
        .into_iter()
        .next();
    let read_last = StreamRead {
        from_version: Some(version),
        as_of,
        ..StreamRead::backward().limit(1)
    };
    let last = state
        .store()
        .read_stream(stream, read_last)
        .await?
        .into_iter()
        .next();
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    Ok(Some(order_body(
        placed,
        version,
        first.correlation_id,
        first.recorded_at,
        last.recorded_at,
    )))
}

pub(super) fn order_body(
    placed: &PlacedOrder,
    version: i64,
    correlation_id: Option<CorrelationId>,
    placed_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> OrderBody {
    OrderBody {
        order_id: placed.order_id,
        customer_id: placed.customer_id.clone(),
        status: placed.status.as_str().to_owned(),
        currency: placed.currency.code().to_owned(),
        lines: placed.lines.iter().map(line_body).collect(),
        total: placed.total.to_string(),
        payment_method: placed.payment_method.as_str().to_owned(),
        correlation_id,
        version,
        placed_at,
        updated_at,
        shortages: placed.shortages.iter().map(shortage_body).collect(),
        cancel_reason: placed.cancel_reason.clone(),
        payment_error: match placed.status {
            aggregates::order::OrderStatus::PaymentFailed => placed.payment_failure.clone(),
            _ => None,
        },
        payment: None,
    }
}

pub(super) fn line_body(line: &OrderLine) -> OrderLineBody {
    OrderLineBody {
        sku: line.sku.to_string(),
        quantity: line.quantity,
        unit_price: line.unit_price.to_string(),
    }
}

pub(super) fn shortage_body(shortage: &Shortage) -> ShortageBody {
    ShortageBody {
        sku: shortage.sku.to_string(),
        requested: shortage.requested,
        available: shortage.available,
    }
}

pub(super) fn body_from_summary(summary: OrderSummary) -> Result<OrderBody, ApiError> {
    let lines: Vec<OrderLine> =
        serde_json::from_value(summary.lines).map_err(ApiError::internal)?;
    let shortages: Vec<Shortage> = match summary.shortages {
        Some(shortages) => serde_json::from_value(shortages).map_err(ApiError::internal)?,
        None => Vec::new(),
    };
    Ok(OrderBody {
        order_id: summary.order_id,
        customer_id: summary.customer_id,
        status: summary.status.as_str().to_owned(),
        currency: summary.currency,
        lines: lines.iter().map(line_body).collect(),
        total: summary.total.to_string(),
        payment_method: summary.payment_method,
        correlation_id: summary.correlation_id,
        version: summary.version,
        placed_at: summary.placed_at,
        updated_at: summary.updated_at,
        shortages: shortages.iter().map(shortage_body).collect(),
        cancel_reason: summary.cancel_reason,
        payment_error: summary.payment_error,
        payment: None,
    })
}

pub(super) fn payment_body(payment: PaymentSummary) -> PaymentBody {
    PaymentBody {
        status: payment.status,
        amount: payment.amount.to_string(),
        currency: payment.currency,
        method: payment.method,
        attempts: payment.attempts,
        reference: payment.reference,
        last_error: payment.last_error,
        updated_at: payment.updated_at,
    }
}
