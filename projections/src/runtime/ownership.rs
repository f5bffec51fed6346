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
//!
//! Owners notice a lost lock or lease at their check-in (`check_ins.rs`).

use event_store::{CheckpointLayout, CheckpointLease, EventStore, LogCursor};

use crate::consumer_groups::Member;
use sqlx::{Connection, PgConnection};

/// Advisory lock class for subscriptions (class 1 is stream locks).
pub(super) const LOCK_CLASS: i32 = 2;

pub(crate) struct Ownership {
    connection: PgConnection,
    /// The lock session's backend pid, by which the check-in
    /// (`check_ins.rs`) asks the server whether it still holds the lock.
    pid: i32,
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
        let (acquired, pid): (bool, i32) = if member.partition.is_some() {
            sqlx::query_as(
                "SELECT pg_try_advisory_lock_shared($1, hashtext($2)) \
                    AND pg_try_advisory_lock($1, hashtext($3)), pg_backend_pid()",
            )
            .bind(LOCK_CLASS)
            .bind(member.subscription)
            .bind(&name)
            .fetch_one(&mut connection)
            .await?
        } else {
            sqlx::query_as("SELECT pg_try_advisory_lock($1, hashtext($2)), pg_backend_pid()")
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
        Ok(Some((
            Ownership {
                connection,
                pid,
                lease,
            },
            cursor,
        )))
    }

    pub(crate) fn lease(&self) -> &CheckpointLease {
        &self.lease
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    pub(crate) async fn release(self) {
        // Closing the session releases the lock.
        let _ = self.connection.close().await;
    }
}
