//! An order's pictures: its state machine with the current state
//! highlighted, and its timeline as swimlanes (`swimlanes.rs`), with the
//! integration messages the relay published (`integration.rs`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use aggregates::order::Order;
use event_store::{LogCursor, RecordedEvent};

use crate::error::ConsoleError;
use crate::integration;
use crate::svg;
use crate::swimlanes::{self, TimelineEvent};
use crate::ConsoleState;

/// Pages of `PAGE` events read at most for one timeline.
const MAX_PAGES: usize = 10;
const PAGE: i64 = 1000;

#[derive(Deserialize)]
struct OrderBody {
    status: String,
}

/// Where each state sits, and the transitions the choreography allows.
const STATES: &[(&str, f64, f64)] = &[
    ("pending", 70.0, 50.0),
    ("reserved", 260.0, 50.0),
    ("shipped", 450.0, 50.0),
    ("paid", 640.0, 50.0),
    ("rejected", 70.0, 160.0),
    ("cancelled", 260.0, 160.0),
    ("payment_failed", 545.0, 160.0),
];
const TRANSITIONS: &[(&str, &str, &str)] = &[
    ("pending", "reserved", "reserve"),
    ("reserved", "shipped", "ship"),
    ("shipped", "paid", "capture"),
    ("pending", "rejected", "short"),
    ("pending", "cancelled", "cancel"),
    ("reserved", "cancelled", "cancel"),
    ("shipped", "payment_failed", "declined"),
    ("payment_failed", "paid", "retry"),
];
const NODE_W: f64 = 116.0;
const NODE_H: f64 = 36.0;

fn order_uuid(order_id: &str) -> Result<uuid::Uuid, ConsoleError> {
    uuid::Uuid::parse_str(order_id)
        .map_err(|_| ConsoleError::NotFound(format!("no order {order_id:?}: not a UUID")))
}

pub async fn states(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Result<Response, ConsoleError> {
    let (_, session) = state.sessions.of(&headers)?;
    let (order, _) = state
        .api
        .get_json::<OrderBody>(
            &format!("/orders/{}", order_uuid(&order_id)?),
            Some(&session.token),
        )
        .await?;
    Ok(svg::response(state_machine(&order.status)))
}

fn position_of(name: &str) -> (f64, f64) {
    STATES
        .iter()
        .find(|(state, _, _)| *state == name)
        .map_or((0.0, 0.0), |(_, x, y)| (*x, *y))
}

pub fn state_machine(current: &str) -> maud::Markup {
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="chart state-machine" viewBox="0 0 720 200"
            role="img" aria-labelledby="states-title" data-current=(current) {
            title id="states-title" { "Order state machine; current state: " (current) }
            defs {
                marker id="state-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M0 0 L10 5 L0 10 z" {}
                }
            }
            @for (from, to, label) in TRANSITIONS {
                @let (x1, y1) = position_of(from);
                @let (x2, y2) = position_of(to);
                @let (start, end) = edge_points((x1, y1), (x2, y2));
                g.transition {
                    line x1=(start.0) y1=(start.1) x2=(end.0) y2=(end.1) marker-end="url(#state-arrow)" {}
                    text x=((start.0 + end.0) / 2.0) y=((start.1 + end.1) / 2.0 - 5.0) text-anchor="middle" { (label) }
                }
            }
            @for (name, x, y) in STATES {
                g class={"state" @if *name == current { " current" }} data-state=(name)
                    aria-current=[(*name == current).then_some("step")] {
                    rect x=(x - NODE_W / 2.0) y=(y - NODE_H / 2.0) width=(NODE_W) height=(NODE_H) rx="18" {}
                    text x=(x) y=(y + 5.0) text-anchor="middle" { (name) }
                }
            }
        }
    }
}

/// Where an edge between two node centres leaves and enters the boxes.
fn edge_points(from: (f64, f64), to: (f64, f64)) -> ((f64, f64), (f64, f64)) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let length = (dx * dx + dy * dy).sqrt().max(1.0);
    // Leave the box along the edge's direction, stopping at its border.
    let reach = |ux: f64, uy: f64| {
        let tx = if ux.abs() > 1e-9 {
            (NODE_W / 2.0) / ux.abs()
        } else {
            f64::MAX
        };
        let ty = if uy.abs() > 1e-9 {
            (NODE_H / 2.0) / uy.abs()
        } else {
            f64::MAX
        };
        tx.min(ty) + 3.0
    };
    let (ux, uy) = (dx / length, dy / length);
    let r = reach(ux, uy);
    (
        (from.0 + ux * r, from.1 + uy * r),
        (to.0 - ux * r, to.1 - uy * r),
    )
}

/// The timeline is the store's `read_flow`, as `GET /orders/{id}/timeline`
/// reads it, with the log cursors the relay's checkpoint is compared to.
pub async fn swimlanes(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Result<Response, ConsoleError> {
    let (_, session) = state.sessions.of(&headers)?;
    let id = order_uuid(&order_id)?;
    // The API's answer for an unknown order, as the page's other parts get.
    state
        .api
        .get(&format!("/orders/{id}"), Some(&session.token))
        .await?
        .ok()?;
    let stream = aggregates::stream_id::<Order>(id);
    let mut recorded: Vec<RecordedEvent> = Vec::new();
    let mut cursor = LogCursor::START;
    for _ in 0..MAX_PAGES {
        let page = state.store.read_flow(&stream, cursor, PAGE).await?;
        recorded.extend(page.events);
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    let messages = integration::published(&state.store, &recorded).await?;
    let events: Vec<TimelineEvent> = recorded.iter().map(TimelineEvent::from).collect();
    Ok(svg::response(swimlanes::render(&events, &messages)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_state_is_marked_and_every_transition_drawn() {
        let text = state_machine("shipped").into_string();
        assert_eq!(text.matches("class=\"state current\"").count(), 1);
        assert!(
            text.contains("class=\"state current\" data-state=\"shipped\""),
            "{text}"
        );
        assert_eq!(
            text.matches("class=\"transition\"").count(),
            TRANSITIONS.len()
        );
    }
}
