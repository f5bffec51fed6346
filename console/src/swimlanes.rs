//! An order's timeline as swimlanes: one lane per stream (the order, its
//! reservation, each inventory SKU, its payment, ...), one column per event
//! in log order, and an arrow from each event to the events it caused,
//! labelled with the time the hop took; when the relay runs, a last lane
//! holds the integration messages published for each event. Every event
//! is a focusable button (`data-position`) whose data the page shows on
//! click or Enter.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use maud::{html, Markup};
use uuid::Uuid;

use crate::svg::{rfc3339, short_duration};

const LABEL_W: f64 = 200.0;
const COL_W: f64 = 124.0;
const LANE_H: f64 = 62.0;
const TOP: f64 = 34.0;
const NODE_W: f64 = 112.0;
const NODE_H: f64 = 30.0;

/// An event of the order's timeline, the parts drawn.
#[derive(Debug, Clone)]
pub struct TimelineEvent {
    pub position: i64,
    pub stream_id: String,
    pub event_id: Uuid,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub causation_id: Option<Uuid>,
}

impl From<&RecordedEvent> for TimelineEvent {
    fn from(event: &RecordedEvent) -> Self {
        TimelineEvent {
            position: event.position,
            stream_id: event.stream_id.clone(),
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            recorded_at: event.recorded_at,
            causation_id: event.causation_id,
        }
    }
}

/// The lane of the published integration messages.
pub const INTEGRATION_LANE: &str = "integration messages";

/// Lanes in the choreography's order, then by first appearance.
fn lane_rank(stream_id: &str) -> u8 {
    match stream_id.split('-').next().unwrap_or("") {
        "order" => 0,
        "reservation" => 1,
        "inventory" => 2,
        "payment" => 3,
        _ => 4,
    }
}

pub fn lanes(events: &[TimelineEvent]) -> Vec<String> {
    let mut lanes: Vec<String> = Vec::new();
    for event in events {
        if !lanes.contains(&event.stream_id) {
            lanes.push(event.stream_id.clone());
        }
    }
    // Stable: first appearance orders the lanes of one rank.
    lanes.sort_by_key(|lane| lane_rank(lane));
    lanes
}

struct Node {
    x: f64,
    y: f64,
}

/// `messages[i]`: the contracts published for `events[i]`.
pub fn render(events: &[TimelineEvent], messages: &[Vec<&str>]) -> Markup {
    let mut lanes = lanes(events);
    let published = messages.iter().any(|names| !names.is_empty());
    if published {
        lanes.push(INTEGRATION_LANE.to_owned());
    }
    let integration_y = TOP + (lanes.len().max(1) - 1) as f64 * LANE_H + (LANE_H - NODE_H) / 2.0;
    let lane_of: HashMap<&str, usize> = lanes
        .iter()
        .enumerate()
        .map(|(index, lane)| (lane.as_str(), index))
        .collect();
    let nodes: Vec<Node> = events
        .iter()
        .enumerate()
        .map(|(column, event)| Node {
            x: LABEL_W + column as f64 * COL_W + (COL_W - NODE_W) / 2.0,
            y: TOP
                + lane_of.get(event.stream_id.as_str()).copied().unwrap_or(0) as f64 * LANE_H
                + (LANE_H - NODE_H) / 2.0,
        })
        .collect();
    let by_id: HashMap<Uuid, usize> = events
        .iter()
        .enumerate()
        .map(|(index, event)| (event.event_id, index))
        .collect();
    let links: Vec<(usize, usize)> = events
        .iter()
        .enumerate()
        .filter_map(|(index, event)| {
            let cause = by_id.get(&event.causation_id?)?;
            (*cause != index).then_some((*cause, index))
        })
        .collect();
    let width = LABEL_W + events.len().max(1) as f64 * COL_W + 16.0;
    let height = TOP + lanes.len().max(1) as f64 * LANE_H + 8.0;
    let start = events.first().map(|event| event.recorded_at);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="chart swimlanes"
            viewBox={"0 0 " (width) " " (height)} width=(width) height=(height)
            role="group" aria-label={"Timeline: " (events.len()) " events in " (lanes.len()) " streams"}
            data-events=(events.len()) data-lanes=(lanes.len()) {
            defs {
                marker id="hop-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M0 0 L10 5 L0 10 z" {}
                }
            }
            @for (index, lane) in lanes.iter().enumerate() {
                g.lane data-stream=(lane) {
                    rect.lane-band x="0" y=(TOP + index as f64 * LANE_H) width=(width) height=(LANE_H) {}
                    text.lane-label x="10" y=(TOP + index as f64 * LANE_H + LANE_H / 2.0 + 4.0) {
                        title { (lane) }
                        (shorten(lane, 26))
                    }
                }
            }
            @for (column, event) in events.iter().enumerate() {
                text.column-time x=(LABEL_W + column as f64 * COL_W + COL_W / 2.0) y=(TOP - 12.0) text-anchor="middle" {
                    @if let Some(start) = start {
                        "+" (short_duration(seconds(event.recorded_at - start)))
                    }
                }
            }
            @for (cause, effect) in &links {
                @let (from, to) = (&nodes[*cause], &nodes[*effect]);
                @let (x1, y1) = (from.x + NODE_W, from.y + NODE_H / 2.0);
                @let (x2, y2) = (to.x, to.y + NODE_H / 2.0);
                @let bend = ((x2 - x1).abs() / 2.0).max(20.0);
                @let hop = seconds(events[*effect].recorded_at - events[*cause].recorded_at);
                g.hop data-from=(events[*cause].position) data-to=(events[*effect].position) {
                    path fill="none" marker-end="url(#hop-arrow)"
                        d=(format!("M{x1:.1} {y1:.1} C{:.1} {y1:.1} {:.1} {y2:.1} {x2:.1} {y2:.1}", x1 + bend, x2 - bend)) {}
                    text.hop-time x=((x1 + x2) / 2.0) y=((y1 + y2) / 2.0 - 4.0) text-anchor="middle" {
                        (short_duration(hop))
                    }
                }
            }
            @for (index, event) in events.iter().enumerate() {
                @let node = &nodes[index];
                g.event tabindex="0" role="button" data-position=(event.position) data-type=(event.event_type)
                    data-stream=(event.stream_id)
                    aria-label={(event.event_type) " in " (event.stream_id) " at " (rfc3339(event.recorded_at)) "; show its data"} {
                    rect x=(node.x) y=(node.y) width=(NODE_W) height=(NODE_H) rx="6" {}
                    text x=(node.x + NODE_W / 2.0) y=(node.y + NODE_H / 2.0 + 4.0) text-anchor="middle" {
                        (shorten(&event.event_type, 19))
                    }
                }
            }
            @if published {
                @for (index, names) in messages.iter().enumerate().filter(|(_, names)| !names.is_empty()) {
                    @let node = &nodes[index];
                    g.message data-source=(events[index].position) data-messages=(names.join(" ")) {
                        title { "published: " (names.join(", ")) }
                        path.publish fill="none" d=(format!("M{:.1} {:.1} L{:.1} {:.1}",
                            node.x + NODE_W / 2.0, node.y + NODE_H, node.x + NODE_W / 2.0, integration_y)) {}
                        rect x=(node.x) y=(integration_y) width=(NODE_W) height=(NODE_H) rx="14" {}
                        text x=(node.x + NODE_W / 2.0) y=(integration_y + NODE_H / 2.0 + 4.0) text-anchor="middle" {
                            (shorten(names[0], 19))
                            @if names.len() > 1 { " +" (names.len() - 1) }
                        }
                    }
                }
            }
        }
    }
}

fn seconds(duration: chrono::Duration) -> f64 {
    duration.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn event(position: i64, stream: &str, cause: Option<Uuid>, millis: i64) -> TimelineEvent {
        TimelineEvent {
            position,
            stream_id: stream.into(),
            event_id: Uuid::from_u128(position as u128),
            event_type: format!("Event{position}"),
            recorded_at: Utc
                .timestamp_millis_opt(1_800_000_000_000 + millis)
                .single()
                .expect("time"),
            causation_id: cause,
        }
    }

    #[test]
    fn every_event_is_drawn_in_its_streams_lane_with_causation_links() {
        let events = vec![
            event(1, "order-a", None, 0),
            event(2, "reservation-a", Some(Uuid::from_u128(1)), 4),
            event(3, "inventory-SKU-1", Some(Uuid::from_u128(1)), 4),
            event(4, "order-a", Some(Uuid::from_u128(2)), 10),
            event(5, "payment-a", Some(Uuid::from_u128(99)), 12),
        ];
        assert_eq!(
            lanes(&events),
            vec!["order-a", "reservation-a", "inventory-SKU-1", "payment-a"]
        );
        let text = render(&events, &vec![Vec::new(); events.len()]).into_string();
        assert_eq!(text.matches("class=\"event\"").count(), 5);
        // A cause outside the timeline draws no arrow.
        assert_eq!(text.matches("class=\"hop\"").count(), 3);
        assert!(text.contains("data-from=\"2\" data-to=\"4\""));
        assert!(
            text.contains(">6 ms<"),
            "the hop from 2 to 4 took 6 ms: {text}"
        );
        assert!(!text.contains(INTEGRATION_LANE), "no relay, no lane");
    }

    #[test]
    fn published_messages_have_a_lane_of_their_own() {
        let events = vec![
            event(1, "order-a", None, 0),
            event(2, "reservation-a", Some(Uuid::from_u128(1)), 4),
        ];
        let messages = vec![vec!["order.placed.v1", "order.placed.v2"], vec![]];
        let text = render(&events, &messages).into_string();
        assert!(
            text.contains(&format!("data-stream=\"{INTEGRATION_LANE}\"")),
            "{text}"
        );
        assert_eq!(text.matches("class=\"message\"").count(), 1);
        assert!(
            text.contains("data-source=\"1\" data-messages=\"order.placed.v1 order.placed.v2\"")
        );
        assert!(text.contains("order.placed.v1 +1"));
    }
}
