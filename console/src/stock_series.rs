//! A SKU's stock over time, per warehouse and in total: its inventory
//! stream read through `GET /streams/inventory-{sku}` and folded by the
//! `Inventory` aggregate itself, one point per event, so each step of the
//! chart is the state the domain was in from that event to the next.

use std::collections::BTreeMap;

use aggregates::inventory::{Inventory, InventoryEvent, StockLevel};
use aggregates::values::Sku;
use aggregates::{Aggregate, DomainEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api_client::ApiClient;
use crate::error::ConsoleError;

/// Events folded at most; a longer stream is drawn up to there and says so.
pub const MAX_EVENTS: usize = 20_000;
const PAGE: usize = 1000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Level {
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

impl From<StockLevel> for Level {
    fn from(level: StockLevel) -> Self {
        let signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        Level {
            on_hand: signed(level.on_hand),
            reserved: signed(level.reserved),
            available: signed(level.available),
        }
    }
}

/// The stock right after one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub position: i64,
    pub version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub total: Level,
    pub warehouses: BTreeMap<String, Level>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub sku: String,
    /// Every warehouse that ever held or reserved stock of the SKU.
    pub warehouses: Vec<String>,
    pub points: Vec<Point>,
    /// Events the aggregate could not decode (and so skipped, as a fold
    /// of the stream would fail on them).
    pub undecodable: usize,
    /// Whether the stream has more than [`MAX_EVENTS`] events.
    pub truncated: bool,
}

impl Series {
    /// The level of `warehouse` (`None`: the total) at `at`: after the last
    /// event at or before it; zeros before the first.
    pub fn level_at(&self, warehouse: Option<&str>, at: DateTime<Utc>) -> Level {
        let index = self.points.partition_point(|point| point.at <= at);
        index
            .checked_sub(1)
            .and_then(|index| self.points.get(index))
            .map(|point| point.level(warehouse))
            .unwrap_or_default()
    }
}

impl Point {
    pub fn level(&self, warehouse: Option<&str>) -> Level {
        match warehouse {
            None => self.total,
            Some(name) => self.warehouses.get(name).copied().unwrap_or_default(),
        }
    }
}

/// The part of an event of the API's shape the fold needs.
#[derive(Deserialize)]
struct EventBody {
    position: i64,
    version: i64,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: i32,
    recorded_at: DateTime<Utc>,
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct StreamBody {
    events: Vec<EventBody>,
    next_from_version: Option<i64>,
}

pub fn parse_sku(sku: &str) -> Result<Sku, ConsoleError> {
    Sku::parse(sku).map_err(|error| ConsoleError::NotFound(format!("no SKU {sku:?}: {error}")))
}

pub async fn load(api: &ApiClient, sku: &Sku) -> Result<Series, ConsoleError> {
    let mut series = Series {
        sku: sku.to_string(),
        warehouses: Vec::new(),
        points: Vec::new(),
        undecodable: 0,
        truncated: false,
    };
    let mut inventory = Inventory::default();
    let mut from_version = 1;
    loop {
        let path = format!(
            "/streams/{}?from_version={from_version}&limit={PAGE}",
            aggregates::stream_id::<Inventory>(sku)
        );
        let (page, _) = api.get_json::<StreamBody>(&path, None).await?;
        for event in page.events {
            if series.points.len() + series.undecodable >= MAX_EVENTS {
                series.truncated = true;
                break;
            }
            let Ok(decoded) =
                InventoryEvent::from_stored(&event.event_type, event.schema_version, event.data)
            else {
                series.undecodable += 1;
                continue;
            };
            inventory = inventory.apply(&decoded);
            let warehouses: BTreeMap<String, Level> = inventory
                .warehouse_levels()
                .into_iter()
                .map(|(warehouse, level)| (warehouse.to_string(), level.into()))
                .collect();
            for name in warehouses.keys() {
                if !series.warehouses.contains(name) {
                    series.warehouses.push(name.clone());
                }
            }
            series.points.push(Point {
                at: event.recorded_at,
                position: event.position,
                version: event.version,
                event_type: event.event_type,
                total: inventory.level().into(),
                warehouses,
            });
        }
        match page.next_from_version {
            Some(next) if !series.truncated => from_version = next,
            _ => break,
        }
    }
    series.warehouses.sort();
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn point(second: u32, on_hand: i64, main: i64) -> Point {
        Point {
            at: Utc
                .with_ymd_and_hms(2026, 11, 20, 10, 0, second)
                .single()
                .expect("time"),
            position: i64::from(second),
            version: i64::from(second),
            event_type: "StockReceived".into(),
            total: Level {
                on_hand,
                reserved: 0,
                available: on_hand,
            },
            warehouses: BTreeMap::from([(
                "main".to_owned(),
                Level {
                    on_hand: main,
                    reserved: 0,
                    available: main,
                },
            )]),
        }
    }

    #[test]
    fn the_level_at_an_instant_is_the_last_change_at_or_before_it() {
        let series = Series {
            sku: "S".into(),
            warehouses: vec!["main".into()],
            points: vec![point(10, 5, 5), point(20, 8, 3)],
            undecodable: 0,
            truncated: false,
        };
        let at = |second| {
            Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, second)
                .single()
                .expect("time")
        };
        assert_eq!(series.level_at(None, at(9)), Level::default());
        assert_eq!(series.level_at(None, at(10)).on_hand, 5);
        assert_eq!(series.level_at(None, at(19)).on_hand, 5);
        assert_eq!(series.level_at(None, at(20)).on_hand, 8);
        assert_eq!(series.level_at(Some("main"), at(25)).on_hand, 3);
        assert_eq!(series.level_at(Some("east"), at(25)), Level::default());
    }
}
