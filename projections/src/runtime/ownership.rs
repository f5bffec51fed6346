//! One owner per subscription, in two layers.
//!
//! - *Election*: a session advisory lock, held on a connection of its own
//!   (never a pooled one: sqlx hands a pooled connection back to the pool
//!   with its session locks still held, to be used by anyone). If the owner
//!   dies, its connection closes and another process takes the lock.
//! - *Fencing*: taking the lock is followed by taking a new checkpoint
//!   lease (`event_store::CheckpointLease`), which bumps the owner epoch.
//!   Every effect the worker commits goes through that lease in the same
//!   transaction, so an owner that lost its lock without noticing (its
//!   connection died with a database crash, and another took over at once)
//!   cannot commit anything more: two owners' effects never interleave.

use super::status::SubscriptionState;
use event_store::{CheckpointLayout, CheckpointLease, EventStore, LogCursor};

use crate::consumer_groups::Member;
use sqlx::{Connection, PgConnection};

/// Advisory lock class for subscriptions (class 1 is stream locks).
const LOCK_CLASS: i32 = 2;

/// What an owner's check-in found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckIn {
    Owner {
        requests_waiting: bool,
    },
    /// The lock or the lease is gone (or the lock connection is).
    NotOwner,
}

pub(crate) struct Ownership {
    connection: PgConnection,
    lease: CheckpointLease,
}

impl Ownership {
    /// Takes the lock of `member` if no one holds it, then a new
    /// checkpoint lease in its layout; returns them with the checkpoint to
    /// resume from.
    ///
    /// A member of a split subscription also holds the subscription's own
    /// lock, shared: the whole subscription's owner takes it exclusively,
    /// so it and the members of a split never run side by side (their
    /// leases fence each other as well: `take_checkpoint_lease_in_layout`).
    pub(crate) async fn try_acquire(
        store: &EventStore,
        member: &Member,
    ) -> Result<Option<(Ownership, LogCursor)>, event_store::StoreError> {
        let name = member.name();
        let options = store.pool().connect_options();
        let mut connection = PgConnection::connect_with(&options).await?;
        let acquired: bool = if member.partition.is_some() {
            sqlx::query_scalar(
                "SELECT pg_try_advisory_lock_shared($1, hashtext($2)) \
                    AND pg_try_advisory_lock($1, hashtext($3))",
            )
            .bind(LOCK_CLASS)
            .bind(member.subscription)
            .bind(&name)
            .fetch_one(&mut connection)
            .await?
        } else {
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
                .bind(LOCK_CLASS)
                .bind(&name)
                .fetch_one(&mut connection)
                .await?
        };
        if !acquired {
            // Closing the session releases whichever of the two it got.
            connection.close().await?;
            return Ok(None);
        }
        let members = member.layout_names();
        let (lease, cursor) = store
            .take_checkpoint_lease_in_layout(
                &name,
                CheckpointLayout {
                    group: member.subscription,
                    members: &members,
                },
            )
            .await?;
        Ok(Some((Ownership { connection, lease }, cursor)))
    }

    pub(crate) fn lease(&self) -> &CheckpointLease {
        &self.lease
    }

    /// The owner's periodic check-in, one statement on the lock connection
    /// (an idle service's transactions are mostly these): whether this
    /// worker is still the owner — its lock connection is alive and holds
    /// the lock, asked of the server about this very session, and no newer
    /// lease has been taken — and, if so, its heartbeat and `state` in
    /// `subscription_status`, and whether operator requests wait for it.
    pub(crate) async fn check_in(&mut self, owner: &str, state: SubscriptionState) -> CheckIn {
        let row: Result<(bool, bool), sqlx::Error> = sqlx::query_as(
            "WITH held AS ( \
                 SELECT EXISTS (SELECT FROM pg_locks \
                                 WHERE locktype = 'advisory' AND classid = $1 \
                                   AND objid = hashtext($2)::oid AND objsubid = 2 \
                                   AND pid = pg_backend_pid() AND granted) \
                    AND EXISTS (SELECT FROM subscription_checkpoints \
                                 WHERE name = $2 AND owner_epoch = $3) AS held), \
             beat AS ( \
                 INSERT INTO subscription_status (name, owner, state, heartbeat_at) \
                 SELECT $2, $4, $5, now() FROM held WHERE held.held \
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
                     state = excluded.state, heartbeat_at = now() \
                 RETURNING 1) \
             SELECT held.held, \
                    EXISTS (SELECT FROM subscription_requests \
                             WHERE subscription = $2 AND done_at IS NULL) \
               FROM held",
        )
        .bind(LOCK_CLASS)
        .bind(self.lease.name())
        .bind(self.lease.epoch())
        .bind(owner)
        .bind(state.as_str())
        .fetch_one(&mut self.connection)
        .await;
        match row {
            Ok((true, requests_waiting)) => CheckIn::Owner { requests_waiting },
            Ok((false, _)) => CheckIn::NotOwner,
            Err(error) => {
                tracing::warn!(subscription = self.lease.name(), %error, "an owner's check-in failed");
                CheckIn::NotOwner
            }
        }
    }

    pub(crate) async fn release(self) {
        // Closing the session releases the lock.
        let _ = self.connection.close().await;
    }
}
