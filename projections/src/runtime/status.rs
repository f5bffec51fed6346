//! What each subscription's owner reports about itself.

use sqlx::PgPool;

pub(crate) const CATCHING_UP: &str = "catching_up";
pub(crate) const RUNNING: &str = "running";
pub(crate) const REBUILDING: &str = "rebuilding";
pub(crate) const STOPPED: &str = "stopped";

/// States that mean an owner is at work (others are shown as stopped once
/// the heartbeat is stale).
pub(crate) const ACTIVE_STATES: &[&str] = &[CATCHING_UP, RUNNING, REBUILDING];

pub(crate) async fn report(
    pool: &PgPool,
    name: &str,
    owner: Option<&str>,
    state: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO subscription_status (name, owner, state, heartbeat_at) \
         VALUES ($1, $2, $3, now()) \
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, state = excluded.state, \
             heartbeat_at = now()",
    )
    .bind(name)
    .bind(owner)
    .bind(state)
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
