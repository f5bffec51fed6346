//! Operator requests for a subscription's owner: replay parked events,
//! reset the checkpoint, rebuild the read model.

use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    ReplayParked,
    Reset { position: i64 },
    Rebuild,
}

impl RequestKind {
    fn as_str(self) -> &'static str {
        match self {
            RequestKind::ReplayParked => "replay_parked",
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

pub(crate) async fn enqueue_request(
    pool: &PgPool,
    subscription: &str,
    kind: RequestKind,
) -> Result<(), sqlx::Error> {
    let position = match kind {
        RequestKind::Reset { position } => Some(position),
        _ => None,
    };
    sqlx::query(
        "INSERT INTO subscription_requests (subscription, kind, position) VALUES ($1, $2, $3)",
    )
    .bind(subscription)
    .bind(kind.as_str())
    .bind(position)
    .execute(pool)
    .await?;
    Ok(())
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
            "replay_parked" => RequestKind::ReplayParked,
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
