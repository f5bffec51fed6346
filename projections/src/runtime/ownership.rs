//! One owner per subscription: a session advisory lock held on a dedicated
//! connection. If the owner dies, its connection closes and the lock is
//! free for another process.

use event_store::EventStore;
use sqlx::{Connection, PgConnection};

/// Advisory lock class for subscriptions (class 1 is stream locks).
const LOCK_CLASS: i32 = 2;

pub(crate) struct Ownership {
    connection: PgConnection,
}

impl Ownership {
    /// Takes the lock of `subscription` if no one holds it.
    pub(crate) async fn try_acquire(
        store: &EventStore,
        subscription: &str,
    ) -> Result<Option<Ownership>, sqlx::Error> {
        let options = store.pool().connect_options();
        let mut connection = PgConnection::connect_with(&options).await?;
        let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(subscription)
            .fetch_one(&mut connection)
            .await?;
        if acquired {
            Ok(Some(Ownership { connection }))
        } else {
            connection.close().await?;
            Ok(None)
        }
    }

    /// Whether the lock is still ours: its connection is alive.
    pub(crate) async fn still_held(&mut self) -> bool {
        self.connection.ping().await.is_ok()
    }

    pub(crate) async fn release(self) {
        // Closing the session releases the lock.
        let _ = self.connection.close().await;
    }
}
