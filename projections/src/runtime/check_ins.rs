//! The owners' check-in: one statement per runtime every
//! `ownership_interval`, for every subscription it owns, instead of one per
//! subscription (seven subscriptions checking in every 5 s were most of an
//! idle service's transactions).
//!
//! For each owner the statement asks the server whether the owner's lock
//! session (its backend pid, noted when the lock was taken) holds the
//! subscription's advisory lock, and whether no newer lease has been taken;
//! for those that still own, it writes the heartbeat and state in
//! `subscription_status` and tells whether operator requests wait. A
//! backend pid can be reused once its session is gone, but a session that
//! took the lock since has taken a newer lease too, so the lease check
//! still fails. As before, fencing, not this check, keeps a stale owner
//! from committing: the check-in only lets an owner notice sooner.
//!
//! A new owner is checked in at once (the others with it), so requests
//! already waiting are carried out without waiting for the next interval.
//! A check-in that fails (the database is unreachable) tells no one
//! anything: owners carry on until the next one, and their commits are
//! still fenced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use event_store::EventStore;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::ownership::{Ownership, LOCK_CLASS};
use super::status::SubscriptionState;

/// What an owner's check-in found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckIn {
    Owner {
        requests_waiting: bool,
    },
    /// The lock or the lease is gone.
    NotOwner,
}

/// The check-ins of one runtime: its owners, and the task that checks
/// them in.
#[derive(Clone)]
pub(crate) struct CheckIns {
    shared: Arc<Shared>,
}

struct Shared {
    owners: Mutex<Owners>,
    /// A new owner arrived: check in now.
    arrived: Notify,
}

#[derive(Default)]
struct Owners {
    next_id: u64,
    by_id: HashMap<u64, Owned>,
}

struct Owned {
    name: String,
    epoch: i64,
    pid: i32,
    state: SubscriptionState,
    answers: watch::Sender<Option<CheckIn>>,
}

/// What one check-in asks about an owner.
struct Owner {
    id: u64,
    name: String,
    epoch: i64,
    pid: i32,
    state: SubscriptionState,
}

/// One owner's place in the check-ins, for as long as it owns.
pub(crate) struct Registration {
    id: u64,
    shared: Arc<Shared>,
    answers: watch::Receiver<Option<CheckIn>>,
}

impl CheckIns {
    /// Starts checking in, as `owner`, every `interval`, until `stopped`
    /// turns true or its sender is dropped.
    pub(crate) fn start(
        store: EventStore,
        owner: String,
        interval: Duration,
        stopped: watch::Receiver<bool>,
    ) -> (CheckIns, JoinHandle<()>) {
        let shared = Arc::new(Shared {
            owners: Mutex::new(Owners::default()),
            arrived: Notify::new(),
        });
        let task = tokio::spawn(run(
            shared.clone(),
            store.pool().clone(),
            owner,
            interval,
            stopped,
        ));
        (CheckIns { shared }, task)
    }

    /// Checks in `ownership`'s owner from now on, reporting `state`.
    pub(crate) fn register(&self, ownership: &Ownership, state: SubscriptionState) -> Registration {
        let (sender, answers) = watch::channel(None);
        let id = {
            let mut owners = self.shared.lock();
            let id = owners.next_id;
            owners.next_id += 1;
            owners.by_id.insert(
                id,
                Owned {
                    name: ownership.lease().name().to_owned(),
                    epoch: ownership.lease().epoch(),
                    pid: ownership.pid(),
                    state,
                    answers: sender,
                },
            );
            id
        };
        self.shared.arrived.notify_one();
        Registration {
            id,
            shared: self.shared.clone(),
            answers,
        }
    }
}

impl Registration {
    /// The next check-in's answer (pending for good once check-ins stop).
    pub(crate) async fn next(&mut self) -> CheckIn {
        loop {
            if self.answers.changed().await.is_err() {
                return std::future::pending().await;
            }
            if let Some(answer) = *self.answers.borrow_and_update() {
                return answer;
            }
        }
    }

    /// The state the next check-ins report.
    pub(crate) fn report(&self, state: SubscriptionState) {
        if let Some(owned) = self.shared.lock().by_id.get_mut(&self.id) {
            owned.state = state;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.lock().by_id.remove(&self.id);
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Owners> {
        // Every change is one call on the map: a panic cannot leave it
        // half changed.
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn run(
    shared: Arc<Shared>,
    pool: PgPool,
    owner: String,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    return;
                }
                continue;
            }
            _ = shared.arrived.notified() => {}
            _ = ticks.tick() => {}
        }
        let owned: Vec<Owner> = shared
            .lock()
            .by_id
            .iter()
            .map(|(id, owned)| Owner {
                id: *id,
                name: owned.name.clone(),
                epoch: owned.epoch,
                pid: owned.pid,
                state: owned.state,
            })
            .collect();
        if owned.is_empty() {
            continue;
        }
        match check_in(&pool, &owner, &owned).await {
            Ok(answers) => {
                let owners = shared.lock();
                for (id, answer) in answers {
                    if let Some(owned) = owners.by_id.get(&id) {
                        owned.answers.send_replace(Some(answer));
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the owners' check-in failed; trying again at the next one");
            }
        }
    }
}

/// The statement: lock held by each owner's session and lease current,
/// heartbeat and state of those that own, requests waiting for them.
async fn check_in(
    pool: &PgPool,
    owner: &str,
    owned: &[Owner],
) -> Result<Vec<(u64, CheckIn)>, sqlx::Error> {
    let names: Vec<&str> = owned.iter().map(|owned| owned.name.as_str()).collect();
    let epochs: Vec<i64> = owned.iter().map(|owned| owned.epoch).collect();
    let pids: Vec<i32> = owned.iter().map(|owned| owned.pid).collect();
    let states: Vec<&str> = owned.iter().map(|owned| owned.state.as_str()).collect();
    let rows: Vec<(i64, bool, bool)> = sqlx::query_as(
        "WITH mine AS ( \
             SELECT * FROM unnest($2::text[], $3::bigint[], $4::int[], $5::text[]) \
                      WITH ORDINALITY AS m(name, epoch, pid, state, ordinal)), \
         locks AS MATERIALIZED ( \
             SELECT objid, pid FROM pg_locks \
              WHERE locktype = 'advisory' AND classid = $1 AND objsubid = 2 AND granted), \
         held AS ( \
             SELECT m.ordinal, m.name, m.state, \
                    EXISTS (SELECT FROM locks l \
                             WHERE l.objid = hashtext(m.name)::oid AND l.pid = m.pid) \
                    AND EXISTS (SELECT FROM subscription_checkpoints c \
                                 WHERE c.name = m.name AND c.owner_epoch = m.epoch) AS held \
               FROM mine m), \
         beat AS ( \
             INSERT INTO subscription_status (name, owner, state, heartbeat_at) \
             SELECT name, $6, state, now() FROM held WHERE held \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, \
                 state = excluded.state, heartbeat_at = now() \
             RETURNING 1) \
         SELECT h.ordinal, h.held, \
                EXISTS (SELECT FROM subscription_requests r \
                         WHERE r.subscription = h.name AND r.done_at IS NULL) \
           FROM held h",
    )
    .bind(LOCK_CLASS)
    .bind(&names)
    .bind(&epochs)
    .bind(&pids)
    .bind(&states)
    .bind(owner)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(ordinal, held, requests_waiting)| {
            let owned = owned.get(usize::try_from(ordinal).ok()?.checked_sub(1)?)?;
            let answer = if held {
                CheckIn::Owner { requests_waiting }
            } else {
                CheckIn::NotOwner
            };
            Some((owned.id, answer))
        })
        .collect())
}
