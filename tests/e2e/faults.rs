//! Fault injection (issue 9): the real binary as one `serve --api-only` and
//! two `serve --workers-only` processes on a private PostgreSQL cluster of
//! this test's own, under a load of orders, while faults are injected one
//! after another: SIGKILL of each worker and of the API process (each
//! restarted), two immediate stops of PostgreSQL (each restarted on the same
//! data), `pg_terminate_backend` of every subscription lock holder, a reset
//! of every subscription to position 0 and a rebuild of every projection.
//! Afterwards every acknowledged order is final and its read model agrees
//! with its stream, stock balances with its events in `stock_levels`, in
//! the stock history and in the API, every paid order was captured exactly
//! once, nothing is parked and no response was a 5xx other than 503
//! (`outcomes.rs`).
//!
//! The same system with every reactor split into members (consumer groups,
//! issue 12) shows the members shared by the two workers, moved to the
//! survivor when one is SIGKILLed and shared again when it is back, with
//! the same outcomes.
//!
//! The servers' logs are kept (their directory is printed) when the test
//! fails or `ORDERSTREAM_KEEP_FAULT_LOGS` is set, and removed otherwise.

mod harness;
mod outcomes;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;

use self::harness::{
    lock_holders, subscriptions, wait_for, Http, System, STEP_PATIENCE, SUBSCRIPTION_LOCK_CLASS,
};
use self::outcomes::{check_outcomes, wait_until_settled};
use crate::served::free_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_killed_processes_database_crashes_fenced_owners_resets_and_rebuilds() {
    let mut system = System::start(1).await;
    let started = system.started;
    let logs_at = system.logs.dir.clone();
    let logs_at = logs_at.as_path();

    // 1. SIGKILL each worker in turn (the other takes over), then restart
    // it; then SIGKILL the API and restart it.
    for index in 0..system.workers.len() {
        system.under_load().await;
        let paid = system.paid_now().await;
        system.workers[index].kill();
        system.more_paid_than(paid).await;
        system.workers[index]
            .start(&system.database_url, free_port(), &system.http)
            .await;
    }
    system.under_load().await;
    let paid = system.paid_now().await;
    system.api.kill();
    system
        .api
        .start(&system.database_url, system.api_port, &system.http)
        .await;
    system.more_paid_than(paid).await;
    eprintln!("faults: processes killed by {:?}", started.elapsed());

    // 2. Two immediate stops of PostgreSQL, each started again.
    for round in 1..=2 {
        system.under_load().await;
        let paid = system.paid_now().await;
        let System {
            cluster,
            cluster_options,
            ..
        } = &mut system;
        tokio::task::block_in_place(|| cluster.crash_and_restart(cluster_options))
            .unwrap_or_else(|error| panic!("crash and restart PostgreSQL: {error}"));
        eprintln!(
            "faults: PostgreSQL crashed and restarted ({round}) at {:?}",
            started.elapsed()
        );
        system.more_paid_than(paid).await;
    }

    // 3. The lock owners' sessions are terminated under them.
    system.under_load().await;
    let pool = system.pool.clone();
    let http = system.http.clone();
    let pool_ref = &pool;
    wait_for(
        "the subscriptions have owners",
        STEP_PATIENCE,
        logs_at,
        || async move { !lock_holders(pool_ref).await.is_empty() },
    )
    .await;
    let paid = system.paid_now().await;
    let terminated: Vec<(i32, bool)> = sqlx::query_as(
        "SELECT pid, pg_terminate_backend(pid) FROM \
           (SELECT DISTINCT pid FROM pg_locks \
             WHERE locktype = 'advisory' AND classid = $1 AND granted) AS holders",
    )
    .bind(SUBSCRIPTION_LOCK_CLASS)
    .fetch_all(&pool)
    .await
    .expect("terminate the lock owners' sessions");
    eprintln!(
        "faults: terminated the sessions holding subscription locks (pid, done) {terminated:?} at {:?}",
        started.elapsed()
    );
    assert!(
        terminated.iter().any(|(_, done)| *done),
        "no lock owner was terminated: {terminated:?}"
    );
    system.more_paid_than(paid).await;

    // 4. Every subscription reset to position 0.
    system.under_load().await;
    let names: Vec<String> = subscriptions(&http)
        .await
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect();
    assert!(names.len() >= 6, "subscriptions: {names:?}");
    let paid = system.paid_now().await;
    for name in &names {
        http.expect(
            Method::POST,
            &format!("/subscriptions/{name}/reset"),
            Some(&json!({ "position": 0 })),
            202,
        )
        .await;
    }
    eprintln!("faults: reset {names:?} to 0 at {:?}", started.elapsed());
    system.more_paid_than(paid).await;

    // 5. Every projection rebuilt.
    system.under_load().await;
    let paid = system.paid_now().await;
    for name in ["orders", "stock", "payments"] {
        http.expect(
            Method::POST,
            &format!("/projections/{name}/rebuild"),
            None,
            202,
        )
        .await;
    }
    eprintln!("faults: rebuilds asked at {:?}", started.elapsed());
    system.more_paid_than(paid).await;

    let acknowledged = system.stop_load(true).await;
    wait_until_settled(&system, &acknowledged).await;

    // Every reset and rebuild was carried out.
    let requests: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT subscription, kind, outcome FROM subscription_requests ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("operator requests");
    assert_eq!(requests.len(), names.len() + 3, "requests: {requests:?}");
    for (subscription, kind, outcome) in &requests {
        let expected = if kind == "reset" {
            "reset to position 0"
        } else {
            "rebuilt"
        };
        assert_eq!(
            outcome.as_deref(),
            Some(expected),
            "{kind} of {subscription}: {requests:?}"
        );
    }

    check_outcomes(&system, &acknowledged).await;
    eprintln!("faults: passed in {:?}", started.elapsed());
}

/// Members each reactor is split into in the consumer-group test.
const MEMBERS: usize = 4;

/// The pids owning the members of split reactors (`name.k-of-n`), by
/// reactor; `None` for a member without a live owner.
async fn member_owners(http: &Http) -> Vec<(String, Option<u32>)> {
    subscriptions(http)
        .await
        .iter()
        .filter_map(|row| {
            let name = row["name"].as_str()?;
            name.contains("-of-").then(|| {
                let pid = row["owner"]
                    .as_str()
                    .and_then(|owner| owner.split('-').next())
                    .and_then(|pid| pid.parse().ok());
                (name.to_owned(), pid)
            })
        })
        .collect()
}

/// Whether every member of the four reactors is owned by a process of
/// `pids`, and each of `pids` owns members of every reactor.
async fn members_run_by(http: &Http, pids: &BTreeSet<u32>) -> bool {
    let owners = member_owners(http).await;
    let reactors = [
        "inventory-reactor",
        "order-reactor",
        "fulfilment-reactor",
        "payment-reactor",
    ];
    owners.len() == reactors.len() * MEMBERS
        && owners
            .iter()
            .all(|(_, pid)| pid.is_some_and(|pid| pids.contains(&pid)))
        && reactors.iter().all(|reactor| {
            pids.iter().all(|pid| {
                owners
                    .iter()
                    .any(|(name, owner)| name.starts_with(reactor) && *owner == Some(*pid))
            })
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_reactors_are_shared_by_the_workers_and_move_to_a_killed_ones_survivor() {
    let mut system = System::start(MEMBERS as u32).await;
    let logs_at = system.logs.dir.clone();
    let logs_at = logs_at.as_path();
    let http = system.http.clone();
    let both: BTreeSet<u32> = system.workers.iter().filter_map(|w| w.pid()).collect();
    assert_eq!(both.len(), 2);
    wait_for(
        "both workers run members of every reactor",
        STEP_PATIENCE,
        logs_at,
        || members_run_by(&http, &both),
    )
    .await;
    for index in 0..system.workers.len() {
        system.under_load().await;
        let paid = system.paid_now().await;
        system.workers[index].kill();
        let survivor: BTreeSet<u32> = system.workers.iter().filter_map(|w| w.pid()).collect();
        wait_for(
            "the survivor runs every member",
            STEP_PATIENCE,
            logs_at,
            || members_run_by(&http, &survivor),
        )
        .await;
        system.more_paid_than(paid).await;
        system.workers[index]
            .start(&system.database_url, free_port(), &system.http)
            .await;
        let both: BTreeSet<u32> = system.workers.iter().filter_map(|w| w.pid()).collect();
        wait_for(
            "the restarted worker gets its share back",
            STEP_PATIENCE,
            logs_at,
            || members_run_by(&http, &both),
        )
        .await;
        eprintln!(
            "faults: worker-{} killed, its members moved and back",
            index + 1
        );
    }
    let acknowledged = system.stop_load(false).await;
    wait_until_settled(&system, &acknowledged).await;
    check_outcomes(&system, &acknowledged).await;
    let requests: i64 = sqlx::query_scalar("SELECT count(*) FROM subscription_requests")
        .fetch_one(&system.pool)
        .await
        .expect("operator requests");
    assert_eq!(requests, 0);
}
