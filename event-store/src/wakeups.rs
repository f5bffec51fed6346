//! Waking subscribers when new events may be readable.
//!
//! In this process an append bumps a `watch` counter at once. Other
//! processes hear of it through PostgreSQL `NOTIFY`, sent *after* the
//! append's commit by one background task that coalesces bursts into one
//! notification: a `NOTIFY` inside the append's own transaction would take
//! PostgreSQL's global notify lock at every commit and serialise writers.
//! A listener task turns notifications from any process into the same
//! counter bump. Subscribers also re-read on a slow timer, a safety net for
//! a notification lost with a dropped connection.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::OnceLock;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub(crate) const CHANNEL: &str = "orderstream_events";

pub(crate) struct Wakeups {
    pool: PgPool,
    counter: watch::Sender<u64>,
    notify_others: Arc<Notify>,
    notifier: OnceLock<JoinHandle<()>>,
    listener: OnceLock<JoinHandle<()>>,
}

impl Wakeups {
    pub(crate) fn new(pool: PgPool) -> Self {
        Wakeups {
            pool,
            counter: watch::Sender::new(0),
            notify_others: Arc::new(Notify::new()),
            notifier: OnceLock::new(),
            listener: OnceLock::new(),
        }
    }

    /// Called after every committed append that wrote something.
    pub(crate) fn appended(&self) {
        self.bump();
        self.notifier
            .get_or_init(|| spawn_notifier(self.pool.clone(), self.notify_others.clone()));
        self.notify_others.notify_one();
    }

    /// A receiver that changes whenever new events may be readable; starts
    /// the cross-process listener on first use.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.listener
            .get_or_init(|| spawn_listener(self.pool.clone(), self.counter.clone()));
        self.counter.subscribe()
    }

    fn bump(&self) {
        self.counter
            .send_modify(|count| *count = count.wrapping_add(1));
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        for task in [self.notifier.get(), self.listener.get()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

/// Other processes need to hear of a burst of appends once, not once per
/// append: after each NOTIFY the notifier lets this long pass.
const NOTIFY_COALESCE: Duration = Duration::from_millis(2);

fn spawn_notifier(pool: PgPool, pending: Arc<Notify>) -> JoinHandle<()> {
    tokio::spawn(async move {
        // A connection of its own: the pool's are sized for the appenders.
        let mut connection: Option<PgConnection> = None;
        loop {
            // `notify_one` stores one permit: appends while a NOTIFY is in
            // flight cost one more NOTIFY, not one each.
            pending.notified().await;
            if pool.is_closed() {
                return;
            }
            if connection.is_none() {
                connection = PgConnection::connect_with(&pool.connect_options())
                    .await
                    .map_err(|error| tracing::debug!(%error, "notifier cannot connect"))
                    .ok();
            }
            if let Some(open) = connection.as_mut() {
                let sent = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(CHANNEL)
                    .execute(&mut *open)
                    .await;
                if let Err(error) = sent {
                    tracing::debug!(%error, "could not notify other processes of an append");
                    connection = None;
                }
            }
            tokio::time::sleep(NOTIFY_COALESCE).await;
        }
    })
}

fn spawn_listener(pool: PgPool, counter: watch::Sender<u64>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut retry_delay = Duration::from_millis(100);
        loop {
            let outcome = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(CHANNEL).await?;
                // Anything may have been appended while we were not listening.
                counter.send_modify(|count| *count = count.wrapping_add(1));
                loop {
                    // `None`: the connection dropped and was re-established;
                    // notifications may have been missed, so wake readers.
                    let _notification = listener.try_recv().await?;
                    counter.send_modify(|count| *count = count.wrapping_add(1));
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            }
            .await;
            if let Err(error) = outcome {
                if pool.is_closed() {
                    // The store is shutting down: nothing left to listen for.
                    return;
                }
                tracing::warn!(%error, "event listener lost its connection; reconnecting");
                tokio::time::sleep(retry_delay).await;
                retry_delay = (retry_delay * 2).min(Duration::from_secs(5));
            }
        }
    })
}
