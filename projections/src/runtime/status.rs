//! What each subscription's owner reports about itself.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::PgPool;

/// A subscription's state, as its owner reports it (`stopped` once the
/// owner's heartbeat is stale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    CatchingUp,
    Running,
    Rebuilding,
    Stopped,
}

impl SubscriptionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionState::CatchingUp => "catching_up",
            SubscriptionState::Running => "running",
            SubscriptionState::Rebuilding => "rebuilding",
            SubscriptionState::Stopped => "stopped",
        }
    }

    /// Whether an owner is at work in this state.
    pub fn is_active(self) -> bool {
        self != SubscriptionState::Stopped
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubscriptionState {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        [
            SubscriptionState::CatchingUp,
            SubscriptionState::Running,
            SubscriptionState::Rebuilding,
            SubscriptionState::Stopped,
        ]
        .into_iter()
        .find(|state| state.as_str() == value)
        .ok_or_else(|| format!("unknown subscription state {value:?}"))
    }
}

pub(crate) async fn report(
    pool: &PgPool,
    name: &str,
    owner: Option<&str>,
    state: SubscriptionState,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO subscription_status (name, owner, state, heartbeat_at) \
         VALUES ($1, $2, $3, now()) \
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, state = excluded.state, \
             heartbeat_at = now()",
    )
    .bind(name)
    .bind(owner)
    .bind(state.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn report_rebuild_progress(
    pool: &PgPool,
    name: &str,
    progress: Option<(i64, i64)>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE subscription_status SET rebuild_done = $2, rebuild_total = $3 WHERE name = $1",
    )
    .bind(name)
    .bind(progress.map(|(done, _)| done))
    .bind(progress.map(|(_, total)| total))
    .execute(pool)
    .await?;
    Ok(())
}
