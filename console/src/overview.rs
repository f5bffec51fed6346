//! The overview the live view sends: every subscription as `GET
//! /subscriptions` tells it, with its lag in seconds from `GET /metrics`
//! and, for a projection being rebuilt, the rebuild's progress; then the
//! Finance consumer (`finance.rs`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use projections::catalogue::{self, SubscriberKind};
use projections::operations;
use serde::{Deserialize, Serialize};

use crate::api_client::ApiClient;
use crate::error::ConsoleError;
use crate::finance::{FinanceProbe, FinanceView};
use event_store::EventStore;

/// A row of `GET /subscriptions`, as the API answers it.
#[derive(Debug, Clone, Deserialize)]
struct SubscriptionRow {
    name: String,
    position: i64,
    head: i64,
    lag: i64,
    parked: i64,
    state: String,
    #[serde(default)]
    owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overview {
    pub at: DateTime<Utc>,
    pub head: i64,
    pub subscriptions: Vec<SubscriptionView>,
    /// The Finance consumer, another process.
    pub finance: FinanceView,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SubscriptionView {
    pub name: String,
    /// `projection` or `reactor`.
    pub kind: &'static str,
    pub position: i64,
    pub head: i64,
    pub lag: i64,
    pub lag_seconds: f64,
    pub parked: i64,
    pub state: String,
    pub owner: Option<String>,
    /// Set while a rebuild of this projection is requested or running.
    pub rebuild: Option<RebuildView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RebuildView {
    /// Events rebuilt so far and events to rebuild, once the owner has
    /// started; `None` while the request waits for it.
    pub done: Option<i64>,
    pub total: Option<i64>,
}

impl Overview {
    pub fn rebuilding(&self) -> bool {
        self.subscriptions
            .iter()
            .any(|subscription| subscription.rebuild.is_some())
    }

    /// Whether something is moving that no log wake-up will announce: a
    /// subscription catching up (its checkpoint moves without appends) or
    /// a rebuild.
    pub fn settling(&self) -> bool {
        self.subscriptions.iter().any(|subscription| {
            subscription.lag > 0
                || subscription.rebuild.is_some()
                || subscription.state == "catching_up"
                || subscription.state == "rebuilding"
        })
    }
}

pub async fn overview(
    api: &ApiClient,
    store: &EventStore,
    finance: &FinanceProbe,
    token: &str,
) -> Result<Overview, ConsoleError> {
    // Finance is asked meanwhile: a slow one delays the overview by its
    // timeout at most, not by that plus the queries.
    let (rows, finance) = tokio::join!(
        api.get_json::<Vec<SubscriptionRow>>("/subscriptions", Some(token)),
        finance.view()
    );
    let (rows, _) = rows?;
    let metrics = api.get("/metrics", None).await?;
    let lag_seconds = metrics
        .ok()
        .map(|()| lag_seconds(&String::from_utf8_lossy(&metrics.body)))
        .unwrap_or_default();
    let mut subscriptions = Vec::with_capacity(rows.len());
    for row in rows {
        let kind = catalogue::find(&row.name).map(|entry| entry.kind);
        let rebuild = if kind == Some(SubscriberKind::Projection)
            && operations::rebuild_pending(store, &row.name).await?
        {
            let progress = operations::rebuild_progress(store, &row.name).await?;
            Some(RebuildView {
                done: progress.map(|(done, _)| done),
                // The owner estimates from the table's statistics, which
                // say nothing before the first ANALYZE (it then reports
                // done as total); the live checkpoint's position bounds
                // the events a rebuild has to catch up with.
                total: progress.map(|(_, total)| total.max(row.position)),
            })
        } else {
            None
        };
        subscriptions.push(SubscriptionView {
            kind: match kind {
                Some(SubscriberKind::Projection) => "projection",
                _ => "reactor",
            },
            lag_seconds: lag_seconds.get(&row.name).copied().unwrap_or(0.0),
            name: row.name,
            position: row.position,
            head: row.head,
            lag: row.lag,
            parked: row.parked,
            state: row.state,
            owner: row.owner,
            rebuild,
        });
    }
    Ok(Overview {
        at: Utc::now(),
        head: subscriptions.first().map_or(0, |first| first.head),
        subscriptions,
        finance,
    })
}

/// `orderstream_subscription_lag_seconds{subscription="NAME"} VALUE` lines
/// of the Prometheus text.
fn lag_seconds(metrics: &str) -> HashMap<String, f64> {
    const PREFIX: &str = "orderstream_subscription_lag_seconds{";
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(PREFIX))
        .filter_map(|rest| {
            let (labels, value) = rest.rsplit_once('}')?;
            let name = labels
                .split(',')
                .find_map(|label| label.trim().strip_prefix("subscription=\""))?
                .strip_suffix('"')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_seconds_are_read_per_subscription_from_the_prometheus_text() {
        let text = "# TYPE orderstream_subscription_lag_seconds gauge\n\
                    orderstream_subscription_lag_seconds{subscription=\"orders\"} 0\n\
                    orderstream_subscription_lag_seconds{subscription=\"integration-relay\"} 12.5\n\
                    orderstream_subscription_lag_events{subscription=\"orders\"} 3\n";
        let lags = lag_seconds(text);
        assert_eq!(lags.len(), 2);
        assert_eq!(lags["orders"], 0.0);
        assert_eq!(lags["integration-relay"], 12.5);
    }
}
