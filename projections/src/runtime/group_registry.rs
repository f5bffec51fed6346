//! Which process runs which member of a consumer group
//! (`consumer_groups.rs`), decided without a coordinator.
//!
//! Every runtime process that runs a split subscription holds a shared
//! advisory lock on that subscription's *group key* (class 4), all on one
//! connection of its own. The holders of a group key, in the order of
//! their backend pids, are the processes of that group now; member `k` is
//! *preferred* by the holder of rank `k mod holders`. A worker tries to
//! own a member only where its process is preferred, and hands it back at
//! its check-in once it is not (a process joined), so the members spread
//! evenly. A process that dies loses its connection, so its locks: at the
//! next try, the members it had are preferred by the processes left.
//!
//! Preference only decides who *tries*: the member's own lock and lease
//! (`ownership.rs`) still make sure that one owner at a time commits, so
//! two processes that briefly disagree on the ranks cost a retry, never a
//! double effect.

use std::sync::Arc;

use event_store::EventStore;
use sqlx::{Connection, PgConnection};
use tokio::sync::Mutex;

use crate::consumer_groups::Member;

/// Advisory lock class of group keys (1: streams, 2: subscriptions,
/// 3: the log epoch shift).
const GROUP_LOCK_CLASS: i32 = 4;

#[derive(Clone)]
pub(crate) struct GroupRegistry {
    store: EventStore,
    /// The split subscriptions this process runs.
    groups: Arc<Vec<&'static str>>,
    /// The connection holding this process's group locks; `None` until the
    /// first question, and again after it failed (it is then reopened).
    connection: Arc<Mutex<Option<PgConnection>>>,
}

impl GroupRegistry {
    pub(crate) fn new(store: EventStore, groups: Vec<&'static str>) -> GroupRegistry {
        GroupRegistry {
            store,
            groups: Arc::new(groups),
            connection: Arc::new(Mutex::new(None)),
        }
    }

    /// Whether this process is the one to run `member` now. A member that
    /// is not split always is; `false` while the database cannot answer.
    pub(crate) async fn prefers(&self, member: &Member) -> bool {
        let Some(partition) = member.partition else {
            return true;
        };
        let mut connection = self.connection.lock().await;
        let answer = match connection.as_mut() {
            Some(open) => rank_in_group(open, member.subscription).await,
            None => match self.join().await {
                Ok(open) => rank_in_group(connection.insert(open), member.subscription).await,
                Err(error) => Err(error),
            },
        };
        match answer {
            Ok((rank, holders)) if holders > 0 => i64::from(partition.index()) % holders == rank,
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(%error, "cannot ask which process runs which member; will reconnect");
                if let Some(broken) = connection.take() {
                    let _ = broken.close().await;
                }
                false
            }
        }
    }

    /// Opens the registry connection and takes this process's group locks.
    async fn join(&self) -> Result<PgConnection, sqlx::Error> {
        let options = self.store.pool().connect_options();
        let mut connection = PgConnection::connect_with(&options).await?;
        for group in self.groups.iter() {
            sqlx::query("SELECT pg_advisory_lock_shared($1, hashtext($2))")
                .bind(GROUP_LOCK_CLASS)
                .bind(*group)
                .execute(&mut connection)
                .await?;
        }
        Ok(connection)
    }

    /// Closes the registry connection: this process leaves its groups.
    pub(crate) async fn leave(&self) {
        if let Some(connection) = self.connection.lock().await.take() {
            let _ = connection.close().await;
        }
    }
}

/// `(rank, holders)` of the connection's backend among the holders of
/// `group`'s key in this database.
async fn rank_in_group(
    connection: &mut PgConnection,
    group: &str,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE pid < pg_backend_pid()), count(*) FROM pg_locks \
          WHERE locktype = 'advisory' AND classid = $1 AND objid = hashtext($2)::oid \
            AND objsubid = 2 AND granted \
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(GROUP_LOCK_CLASS)
    .bind(group)
    .fetch_one(connection)
    .await
}
