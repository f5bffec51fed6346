//! Operator requests for a subscription's owner: replay parked events,
//! reset the checkpoint, rebuild the read model.

use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    ReplayParked,
    /// Replay the event parked at `position` alone. Stored as a
    /// `replay_parked` row with its position (no migration needed).
    ReplayParkedEvent {
        position: i64,
    },
    Reset {
        position: i64,
    },
    Rebuild,
}

impl RequestKind {
    fn as_str(self) -> &'static str {
        match self {
            RequestKind::ReplayParked | RequestKind::ReplayParkedEvent { .. } => "replay_parked",
            RequestKind::Reset { .. } => "reset",
            RequestKind::Rebuild => "rebuild",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) id: i64,
    pub(crate) kind: RequestKind,
}

/// Queues a request; returns its id.
pub(crate) async fn enqueue_request(
    pool: &PgPool,
    subscription: &str,
    kind: RequestKind,
) -> Result<i64, sqlx::Error> {
    let position = match kind {
        RequestKind::Reset { position } | RequestKind::ReplayParkedEvent { position } => {
            Some(position)
        }
        RequestKind::ReplayParked | RequestKind::Rebuild => None,
    };
    let id = sqlx::query_scalar(
        "INSERT INTO subscription_requests (subscription, kind, position) VALUES ($1, $2, $3) \
         RETURNING id",
    )
    .bind(subscription)
    .bind(kind.as_str())
    .bind(position)
    .fetch_one(pool)
    .await?;
    SUBMITTED.send_modify(|count| *count = count.wrapping_add(1));
    Ok(id)
}

/// Bumped when this process submits a request, so a worker of the same
/// process (`serve` runs the API and the runtime) carries it out at once; a
/// request from another process (the CLI) waits for the owner's next
/// check-in (`RuntimeOptions::ownership_interval`).
static SUBMITTED: std::sync::LazyLock<tokio::sync::watch::Sender<u64>> =
    std::sync::LazyLock::new(|| tokio::sync::watch::Sender::new(0));

/// Changes whenever this process submits a request.
pub(crate) fn submitted() -> tokio::sync::watch::Receiver<u64> {
    SUBMITTED.subscribe()
}

/// How a carried-out request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    Done(String),
    Failed(String),
}

/// Outcomes are stored as text; a failure's starts with this.
const FAILED_PREFIX: &str = "failed: ";

/// The outcome of request `id`, once it has been carried out.
pub(crate) async fn outcome_of(
    pool: &PgPool,
    id: i64,
) -> Result<Option<RequestOutcome>, sqlx::Error> {
    let outcome: Option<Option<String>> = sqlx::query_scalar(
        "SELECT outcome FROM subscription_requests WHERE id = $1 AND done_at IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(outcome.map(|outcome| {
        let outcome = outcome.unwrap_or_default();
        match outcome.strip_prefix(FAILED_PREFIX) {
            Some(reason) => RequestOutcome::Failed(reason.to_owned()),
            None => RequestOutcome::Done(outcome),
        }
    }))
}

/// The oldest request not yet carried out, if any, other than `in_progress`
/// (a rebuild under way, marked done when it is swapped in).
pub(crate) async fn next_pending(
    pool: &PgPool,
    subscription: &str,
    in_progress: Option<i64>,
) -> Result<Option<Request>, sqlx::Error> {
    let row: Option<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, kind, position FROM subscription_requests \
         WHERE subscription = $1 AND done_at IS NULL AND id IS DISTINCT FROM $2 \
         ORDER BY id LIMIT 1",
    )
    .bind(subscription)
    .bind(in_progress)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(id, kind, position)| {
        let kind = match kind.as_str() {
            "replay_parked" => match position {
                Some(position) => RequestKind::ReplayParkedEvent { position },
                None => RequestKind::ReplayParked,
            },
            "reset" => RequestKind::Reset {
                position: position.unwrap_or(0),
            },
            "rebuild" => RequestKind::Rebuild,
            _ => return None,
        };
        Some(Request { id, kind })
    }))
}

pub(crate) async fn mark_done(pool: &PgPool, id: i64, outcome: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE subscription_requests SET done_at = now(), outcome = $2 WHERE id = $1")
        .bind(id)
        .bind(outcome)
        .execute(pool)
        .await?;
    Ok(())
}
