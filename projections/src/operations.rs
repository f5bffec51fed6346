//! What operators ask of subscriptions: status, parked events, replay,
//! reset and rebuild. Changes are requests that the owning process carries
//! out (see `runtime`), so they never race its live loop.

use chrono::{DateTime, Utc};
use event_store::{EventStore, LogCursor, LogFilter, Partition, StoreError};
use serde::Serialize;
use uuid::Uuid;

use crate::catalogue::{self, CatalogueEntry, SubscriberKind, CATALOGUE, OPTIONAL};
use crate::consumer_groups::Member;
use crate::runtime::{
    enqueue_request, outcome_of, parked_at, RequestKind, RequestOutcome, SubscriptionState,
    PARKED_COUNT_SQL,
};

pub fn subscription_names() -> Vec<&'static str> {
    CATALOGUE.iter().map(|entry| entry.name).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum OperationsError {
    #[error("no subscription named {0:?}")]
    UnknownSubscription(String),
    #[error("no projection named {0:?}; projections are orders, stock and payments")]
    UnknownProjection(String),
    #[error("{subscription} has no parked event at position {position}")]
    UnknownParkedEvent { subscription: String, position: i64 },
    /// Replaying it alone would handle it before earlier events of its
    /// stream, which the subscriber must see first.
    #[error(
        "the event at position {position} waits behind {earlier} earlier parked event(s) of \
         stream {stream_id}; replay the one at position {first} first, or replay all"
    )]
    EarlierParkedInStream {
        position: i64,
        stream_id: String,
        /// The stream's first parked event: the one to replay next.
        first: i64,
        earlier: usize,
    },
    #[error("{subscription} has no request {id}")]
    UnknownRequest { subscription: String, id: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OperationsError {
    fn from(error: sqlx::Error) -> Self {
        OperationsError::Store(error.into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionStatus {
    pub name: String,
    /// The position of the last event handled (0: none yet).
    pub position: i64,
    /// The position of the last event readers can see.
    pub head: i64,
    /// Events of the log not yet handled.
    pub lag: i64,
    pub parked: i64,
    pub state: SubscriptionState,
    pub owner: Option<String>,
}

/// An owner that has not reported for this long is taken for dead.
const STALE_AFTER_SECONDS: f64 = 15.0;

/// A subscription as operators see it: a catalogue entry, whole, or one
/// member of it when it runs split (`consumer_groups.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSubscription {
    pub entry: &'static CatalogueEntry,
    pub member: Member,
}

impl ListedSubscription {
    pub fn name(&self) -> String {
        self.member.name()
    }

    /// The events it reads: its category's, in its partition.
    pub fn filter(&self) -> LogFilter {
        let filter = match self.entry.category {
            Some(category) => LogFilter::Category(category.to_owned()),
            None => LogFilter::All,
        };
        match self.member.partition {
            Some(partition) => filter.partitioned(partition),
            None => filter,
        }
    }
}

/// The standard catalogue, and the optional subscriptions (the
/// integration relay) that have run against this database; each as the
/// layout that reported last (every member of a split one, whole
/// otherwise).
pub async fn listed_entries(
    store: &EventStore,
) -> Result<Vec<ListedSubscription>, OperationsError> {
    let optional = OPTIONAL.iter().map(|entry| (entry, true));
    let mut listed = Vec::new();
    for (entry, only_once_run) in CATALOGUE.iter().map(|entry| (entry, false)).chain(optional) {
        let latest: Option<String> = sqlx::query_scalar(
            "SELECT name FROM subscription_status \
              WHERE name = $1 OR starts_with(name, $1 || '.') \
              ORDER BY heartbeat_at DESC LIMIT 1",
        )
        .bind(entry.name)
        .fetch_optional(store.pool())
        .await?;
        if only_once_run && latest.is_none() {
            continue;
        }
        let count = latest
            .and_then(|name| Member::parse(entry.name, &name))
            .and_then(|member| member.partition)
            .map_or(1, Partition::count);
        listed.extend(
            Member::layout(entry.name, count)
                .into_iter()
                .map(|member| ListedSubscription { entry, member }),
        );
    }
    Ok(listed)
}

pub async fn subscription_statuses(
    store: &EventStore,
) -> Result<Vec<SubscriptionStatus>, OperationsError> {
    let head = store.head().await?;
    let mut statuses = Vec::new();
    for listed in listed_entries(store).await? {
        let name = listed.name();
        let name = name.as_str();
        let cursor = store.load_checkpoint(name).await?.unwrap_or_default();
        // Only the events the subscription reads count: a category
        // subscription's checkpoint stays on its last event of that category.
        let lag = store.count_between(cursor, head, &listed.filter()).await?;
        let parked: i64 = sqlx::query_scalar(PARKED_COUNT_SQL)
            .bind(name)
            .fetch_one(store.pool())
            .await?;
        let reported: Option<(Option<String>, String, f64)> = sqlx::query_as(
            "SELECT owner, state, extract(epoch FROM now() - heartbeat_at)::float8 \
             FROM subscription_status WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(store.pool())
        .await?;
        let reported = reported.and_then(|(owner, state, age)| {
            let state = state.parse::<SubscriptionState>().ok()?;
            (age < STALE_AFTER_SECONDS && state.is_active()).then_some((owner, state))
        });
        let (owner, state) = reported.unwrap_or((None, SubscriptionState::Stopped));
        statuses.push(SubscriptionStatus {
            name: name.to_owned(),
            position: cursor.position,
            head: head.position,
            lag,
            parked,
            state,
            owner,
        });
    }
    Ok(statuses)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ParkedEvent {
    /// With `position`, the event's place in the log (and in this list).
    pub transaction_id: i64,
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub attempts: i32,
    pub last_error: String,
    /// Set for an event that did not fail itself but waits behind the
    /// failing event at this position.
    pub blocked_by: Option<i64>,
    pub parked_at: DateTime<Utc>,
}

impl ParkedEvent {
    /// Where the next page of parked events starts.
    pub fn cursor(&self) -> LogCursor {
        LogCursor {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }
}

/// A subscription of the standard catalogue, or one the runtime has run
/// (custom subscribers report their status too).
async fn known_subscription(store: &EventStore, name: &str) -> Result<String, OperationsError> {
    if catalogue::find(name).is_some() {
        return Ok(name.to_owned());
    }
    let reported: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM subscription_status WHERE name = $1)")
            .bind(name)
            .fetch_one(store.pool())
            .await?;
    if reported {
        Ok(name.to_owned())
    } else {
        Err(OperationsError::UnknownSubscription(name.to_owned()))
    }
}

/// Up to `limit` of the events `subscription` parked, in log order, after
/// `after` (the cursor of the last one of the previous page).
pub async fn parked_events(
    store: &EventStore,
    subscription: &str,
    after: LogCursor,
    limit: i64,
) -> Result<Vec<ParkedEvent>, OperationsError> {
    let name = known_subscription(store, subscription).await?;
    Ok(sqlx::query_as::<_, ParkedEvent>(
        "SELECT transaction_id, position, event_id, stream_id, stream_version, event_type, \
                attempts, last_error, blocked_by, parked_at \
           FROM parked_events WHERE subscription = $1 AND (transaction_id, position) > ($2, $3) \
          ORDER BY transaction_id, position LIMIT $4",
    )
    .bind(&name)
    .bind(after.transaction_id)
    .bind(after.position)
    .bind(limit)
    .fetch_all(store.pool())
    .await?)
}

pub async fn request_replay_parked(
    store: &EventStore,
    subscription: &str,
) -> Result<(), OperationsError> {
    let name = known_subscription(store, subscription).await?;
    enqueue_request(store.pool(), &name, RequestKind::ReplayParked).await?;
    Ok(())
}

/// Asks the owner of `subscription` to replay the event it parked at
/// `position`, alone; returns the request's id (see [`request_status`]).
/// Refused while earlier events of the same stream are parked: a
/// subscriber sees a stream's events in order, so the earliest goes first.
pub async fn request_replay_parked_event(
    store: &EventStore,
    subscription: &str,
    position: i64,
) -> Result<i64, OperationsError> {
    let name = known_subscription(store, subscription).await?;
    let parked = parked_at(store.pool(), &name, position)
        .await?
        .ok_or_else(|| OperationsError::UnknownParkedEvent {
            subscription: name.clone(),
            position,
        })?;
    if let Some(&first) = parked.earlier.first() {
        return Err(OperationsError::EarlierParkedInStream {
            position,
            stream_id: parked.stream_id,
            first,
            earlier: parked.earlier.len(),
        });
    }
    Ok(enqueue_request(
        store.pool(),
        &name,
        RequestKind::ReplayParkedEvent { position },
    )
    .await?)
}

/// Where an operator request of `subscription` stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestStatus {
    Pending,
    Finished(RequestOutcome),
}

/// How request `id` of `subscription` stands; unknown if it is another
/// subscription's.
pub async fn request_status(
    store: &EventStore,
    subscription: &str,
    id: i64,
) -> Result<RequestStatus, OperationsError> {
    let name = known_subscription(store, subscription).await?;
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM subscription_requests WHERE id = $1 AND subscription = $2)",
    )
    .bind(id)
    .bind(&name)
    .fetch_one(store.pool())
    .await?;
    if !exists {
        return Err(OperationsError::UnknownRequest {
            subscription: name,
            id,
        });
    }
    Ok(match outcome_of(store.pool(), id).await? {
        Some(outcome) => RequestStatus::Finished(outcome),
        None => RequestStatus::Pending,
    })
}

pub async fn request_reset(
    store: &EventStore,
    subscription: &str,
    position: i64,
) -> Result<(), OperationsError> {
    let name = known_subscription(store, subscription).await?;
    enqueue_request(store.pool(), &name, RequestKind::Reset { position }).await?;
    Ok(())
}

/// Asks the owner of `projection` to rebuild it; returns the request's id
/// (see [`request_outcome`]).
pub async fn request_rebuild(store: &EventStore, projection: &str) -> Result<i64, OperationsError> {
    let name = projection_named(projection)?;
    Ok(enqueue_request(store.pool(), name, RequestKind::Rebuild).await?)
}

/// How request `id` ended; `None` while it is pending.
pub async fn request_outcome(
    store: &EventStore,
    id: i64,
) -> Result<Option<RequestOutcome>, OperationsError> {
    Ok(outcome_of(store.pool(), id).await?)
}

/// `(events done, events in the log)` while a rebuild of `projection` runs.
pub async fn rebuild_progress(
    store: &EventStore,
    projection: &str,
) -> Result<Option<(i64, i64)>, OperationsError> {
    projection_named(projection)?;
    let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT rebuild_done, rebuild_total FROM subscription_status WHERE name = $1",
    )
    .bind(projection)
    .fetch_optional(store.pool())
    .await?;
    Ok(match row {
        Some((Some(done), Some(total))) => Some((done, total)),
        _ => None,
    })
}

/// Whether a rebuild of `projection` was requested and is not finished.
pub async fn rebuild_pending(
    store: &EventStore,
    projection: &str,
) -> Result<bool, OperationsError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM subscription_requests \
         WHERE subscription = $1 AND kind = 'rebuild' AND done_at IS NULL)",
    )
    .bind(projection)
    .fetch_one(store.pool())
    .await?)
}

/// The catalogue's projection named `name`.
fn projection_named(name: &str) -> Result<&'static str, OperationsError> {
    catalogue::find(name)
        .filter(|entry| entry.kind == SubscriberKind::Projection)
        .map(|entry| entry.name)
        .ok_or_else(|| OperationsError::UnknownProjection(name.to_owned()))
}
