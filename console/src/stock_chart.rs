//! A SKU's on hand / reserved / available as a step chart over time, per
//! warehouse or in total, drawn on the server as SVG.
//!
//! Why server-side SVG rather than a client charting library: the values
//! come from the domain's own fold (`stock_series.rs`), the picture is a
//! few hundred elements, it needs no JavaScript to draw and nothing
//! vendored to keep up to date, and it is testable here. Every step also
//! carries its interval and values as `data-` attributes (and a `<title>`
//! for pointer and screen-reader users), which the page's "as of" read-out
//! and the browser tests read off the drawing itself.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::stock_series::{self, Level, Series};
use crate::svg::{self, micros, rfc3339, time_label, value_ticks, Scale};
use crate::ConsoleState;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 44.0;
/// Steps drawn with their own hit area and data; beyond, only the lines.
const MAX_STEP_AREAS: usize = 2000;

/// `(CSS class, legend, value of a level)` of each line drawn.
type Metric = (&'static str, &'static str, fn(&Level) -> i64);

const METRICS: [Metric; 3] = [
    ("on_hand", "on hand", |level| level.on_hand),
    ("reserved", "reserved", |level| level.reserved),
    ("available", "available", |level| level.available),
];

#[derive(Debug, Default, Deserialize)]
pub struct ChartQuery {
    /// A warehouse; absent or `total`: the SKU's total.
    warehouse: Option<String>,
    /// The instant to mark.
    at: Option<DateTime<Utc>>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

pub async fn series(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Path(sku): Path<String>,
) -> Result<Json<Series>, ConsoleError> {
    state.sessions.of(&headers)?;
    let sku = stock_series::parse_sku(&sku)?;
    Ok(Json(stock_series::load(&state.api, &sku).await?))
}

pub async fn chart(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Path(sku): Path<String>,
    Query(query): Query<ChartQuery>,
) -> Result<Response, ConsoleError> {
    state.sessions.of(&headers)?;
    let sku = stock_series::parse_sku(&sku)?;
    let series = stock_series::load(&state.api, &sku).await?;
    let warehouse = query
        .warehouse
        .as_deref()
        .filter(|name| *name != "total" && !name.is_empty());
    if let Some(name) = warehouse {
        if !series.warehouses.iter().any(|known| known == name) {
            return Err(ConsoleError::NotFound(format!(
                "SKU {sku} never had stock in warehouse {name:?}"
            )));
        }
    }
    Ok(svg::response(render(
        &series,
        warehouse,
        &query,
        Utc::now(),
    )))
}

/// The chart's time window: the query's, else from just before the first
/// change to just after the last (or now, for a SKU with no change yet).
fn window(
    series: &Series,
    query: &ChartQuery,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = series.points.first().map_or(now, |point| point.at);
    let last = series.points.last().map_or(now, |point| point.at);
    let span = last - first;
    let margin = if span > Duration::zero() {
        (span / 20).max(Duration::milliseconds(1))
    } else {
        Duration::seconds(1)
    };
    let from = query.from.unwrap_or(first - margin);
    let to = query
        .to
        .unwrap_or(last + margin)
        .max(from + Duration::milliseconds(1));
    (from, to)
}

/// One step: the level held over `[from, to)`.
struct Step {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    position: i64,
    event_type: String,
    level: Level,
}

fn steps(
    series: &Series,
    warehouse: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Step> {
    let mut steps = vec![Step {
        from,
        to,
        position: 0,
        event_type: "before the first change".into(),
        level: series.level_at(warehouse, from),
    }];
    for point in series
        .points
        .iter()
        .filter(|point| point.at > from && point.at < to)
    {
        if let Some(previous) = steps.last_mut() {
            previous.to = point.at;
        }
        steps.push(Step {
            from: point.at,
            to,
            position: point.position,
            event_type: point.event_type.clone(),
            level: point.level(warehouse),
        });
    }
    if let Some(first) = steps.first_mut() {
        // The level at `from` may come from an earlier event.
        let index = series.points.partition_point(|point| point.at <= from);
        if let Some(point) = index
            .checked_sub(1)
            .and_then(|index| series.points.get(index))
        {
            first.position = point.position;
            first.event_type = point.event_type.clone();
        }
    }
    steps
}

pub fn render(
    series: &Series,
    warehouse: Option<&str>,
    query: &ChartQuery,
    now: DateTime<Utc>,
) -> Markup {
    let (from, to) = window(series, query, now);
    let steps = steps(series, warehouse, from, to);
    let max = steps
        .iter()
        .map(|step| step.level.on_hand)
        .max()
        .unwrap_or(0);
    let ticks = value_ticks(max, 5);
    let top_value = ticks.last().copied().unwrap_or(1).max(1);
    let x = Scale {
        domain_min: micros(from),
        domain_max: micros(to),
        range_min: LEFT,
        range_max: WIDTH - RIGHT,
    };
    let y = Scale {
        domain_min: 0.0,
        domain_max: top_value as f64,
        range_min: HEIGHT - BOTTOM,
        range_max: TOP,
    };
    let span = (to - from).num_milliseconds() as f64 / 1000.0;
    let scope = warehouse.map_or_else(
        || "all warehouses".to_owned(),
        |name| format!("warehouse {name}"),
    );
    let title = format!("Stock of {} over time, {scope}", series.sku);
    let time_ticks: Vec<DateTime<Utc>> = (0..=5)
        .map(|index| from + (to - from) * index / 5)
        .collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="chart stock-chart" viewBox={"0 0 " (WIDTH) " " (HEIGHT)}
            role="img" aria-labelledby="stock-chart-title stock-chart-desc"
            data-sku=(series.sku) data-warehouse=(warehouse.unwrap_or("total"))
            data-from=(rfc3339(from)) data-to=(rfc3339(to))
            data-plot-left=(LEFT) data-plot-right=(WIDTH - RIGHT) {
            title id="stock-chart-title" { (title) }
            desc id="stock-chart-desc" {
                (steps.len() - 1) " changes between " (rfc3339(from)) " and " (rfc3339(to))
                ". The table of changes below the chart has the same values."
            }
            g.axis {
                @for tick in &ticks {
                    line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y.at(*tick as f64)) y2=(y.at(*tick as f64)) {}
                    text.tick x=(LEFT - 8.0) y=(y.at(*tick as f64) + 4.0) text-anchor="end" { (tick) }
                }
                @for (index, tick) in time_ticks.iter().enumerate() {
                    line.grid x1=(x.at(micros(*tick))) x2=(x.at(micros(*tick))) y1=(TOP) y2=(HEIGHT - BOTTOM) {}
                    text.tick x=(x.at(micros(*tick))) y=(HEIGHT - BOTTOM + 18.0)
                        text-anchor=(match index { 0 => "start", 5 => "end", _ => "middle" }) {
                        (time_label(*tick, span))
                    }
                }
                text.axis-label x=(LEFT) y=(HEIGHT - 6.0) { "time (UTC)" }
            }
            @for (class, _, value) in METRICS {
                path class={"line " (class)} fill="none" d=(step_path(&steps, &x, &y, value)) {}
            }
            @if steps.len() <= MAX_STEP_AREAS {
                g.steps {
                    @for step in &steps {
                        rect.step x=(x.at(micros(step.from))) y=(TOP)
                            width=((x.at(micros(step.to)) - x.at(micros(step.from))).max(0.5))
                            height=(HEIGHT - BOTTOM - TOP)
                            data-from=(rfc3339(step.from)) data-to=(rfc3339(step.to))
                            data-position=(step.position) data-type=(step.event_type)
                            data-on-hand=(step.level.on_hand) data-reserved=(step.level.reserved)
                            data-available=(step.level.available) {
                            title {
                                (rfc3339(step.from)) " " (step.event_type) ": on hand " (step.level.on_hand)
                                ", reserved " (step.level.reserved) ", available " (step.level.available)
                            }
                        }
                    }
                }
            }
            @if let Some(at) = query.at.filter(|at| *at >= from && *at <= to) {
                g.marker data-at=(rfc3339(at)) {
                    line x1=(x.at(micros(at))) x2=(x.at(micros(at))) y1=(TOP) y2=(HEIGHT - BOTTOM) {}
                    text x=(x.at(micros(at)) + 4.0) y=(TOP + 12.0) { "as of " (time_label(at, span)) }
                }
            }
            g.legend transform={"translate(" (LEFT + 8.0) "," (TOP + 4.0) ")"} {
                @for (index, (class, label, _)) in METRICS.iter().enumerate() {
                    g transform={"translate(" (index as f64 * 110.0) ",0)"} {
                        line class={"line " (class)} x1="0" x2="22" y1="8" y2="8" {}
                        text x="28" y="12" { (label) }
                    }
                }
            }
        }
    }
}

/// `M x0 y0 H x1 V y1 H x2 ...`: horizontal while a level holds, vertical
/// at each change.
fn step_path(steps: &[Step], x: &Scale, y: &Scale, value: fn(&Level) -> i64) -> String {
    let mut path = String::new();
    for (index, step) in steps.iter().enumerate() {
        let y_value = y.at(value(&step.level) as f64);
        if index == 0 {
            path.push_str(&format!("M{:.2} {:.2}", x.at(micros(step.from)), y_value));
        } else {
            path.push_str(&format!(" V{y_value:.2}"));
        }
        path.push_str(&format!(" H{:.2}", x.at(micros(step.to))));
    }
    path
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;
    use crate::stock_series::Point;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, second)
            .single()
            .expect("time")
    }

    fn series() -> Series {
        let point = |second, on_hand, reserved| Point {
            at: at(second),
            position: i64::from(second),
            version: 1,
            event_type: "Changed".into(),
            total: Level {
                on_hand,
                reserved,
                available: on_hand - reserved,
            },
            warehouses: BTreeMap::new(),
        };
        Series {
            sku: "SKU-<1>".into(),
            warehouses: vec![],
            points: vec![point(10, 10, 0), point(20, 10, 4), point(30, 6, 0)],
            undecodable: 0,
            truncated: false,
        }
    }

    #[test]
    fn each_step_holds_the_level_from_its_change_to_the_next() {
        let query = ChartQuery {
            from: Some(at(0)),
            to: Some(at(40)),
            ..ChartQuery::default()
        };
        let text = render(&series(), None, &query, at(59)).into_string();
        assert_eq!(text.matches("<rect class=\"step\"").count(), 4, "{text}");
        assert!(text.contains(&format!(
            "data-from=\"{}\" data-to=\"{}\" data-position=\"20\" data-type=\"Changed\" \
             data-on-hand=\"10\" data-reserved=\"4\" data-available=\"6\"",
            rfc3339(at(20)),
            rfc3339(at(30))
        )));
        assert!(
            text.contains("data-on-hand=\"0\""),
            "zeros before the first change"
        );
        // Escaped, not markup.
        assert!(text.contains("SKU-&lt;1&gt;"));
    }

    #[test]
    fn a_window_starting_after_changes_starts_at_their_level() {
        let query = ChartQuery {
            from: Some(at(25)),
            to: Some(at(40)),
            ..ChartQuery::default()
        };
        let steps = steps(&series(), None, at(25), at(40));
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].level.reserved, 4);
        assert_eq!(steps[0].position, 20);
        let text = render(&series(), None, &query, at(59)).into_string();
        assert!(text.contains("1 changes between"), "{text}");
    }
}
