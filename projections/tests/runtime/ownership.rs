//! Several runtimes on one database, and the catalogue of subscriptions.

use std::collections::HashSet;

use aggregates::order::OrderStatus;
use aggregates::values::PaymentMethod;
use projections::catalogue::CATALOGUE;
use projections::operations::subscription_statuses;
use projections::runtime::{standard_subscribers, RuntimeOptions, Subscriber};

use crate::helpers::{wait_until, TestApp};

#[tokio::test]
async fn the_catalogue_lists_every_subscription_the_runtime_starts_with_its_category() {
    let app = TestApp::new().await;
    let started = standard_subscribers(&app.executor, &RuntimeOptions::default());
    let started: HashSet<(&str, Option<&str>)> = started
        .iter()
        .map(|subscriber| match subscriber {
            Subscriber::Projection(projection) => (projection.name(), Some(projection.category())),
            Subscriber::Reactor(reactor) => (reactor.name(), reactor.category()),
        })
        .collect();
    let catalogue: HashSet<(&str, Option<&str>)> = CATALOGUE
        .iter()
        .map(|entry| (entry.name, entry.category))
        .collect();
    assert_eq!(started, catalogue);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runtimes_share_the_work_and_one_takes_over_when_the_other_stops() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 100).await;
    let first = app.start(TestApp::fast_options());
    let second = app.start(TestApp::fast_options());
    let (first_owner, second_owner) = (first.owner().to_owned(), second.owner().to_owned());

    let mut orders = Vec::new();
    for _ in 0..10 {
        orders.push(app.place(&[("SKU-1", 1)], PaymentMethod::CardOk).await);
    }
    for order_id in &orders {
        app.wait_for_status(*order_id, OrderStatus::Paid).await;
    }
    let statuses = subscription_statuses(&app.store).await.expect("statuses");
    for status in &statuses {
        let owner = status.owner.as_deref().unwrap_or_default();
        assert!(owner == first_owner || owner == second_owner, "{status:?}");
    }

    first.shutdown().await;
    wait_until("the second runtime owns every subscription", || async {
        let statuses = subscription_statuses(&app.store).await.expect("statuses");
        statuses
            .iter()
            .all(|status| status.owner.as_deref() == Some(second_owner.as_str()))
    })
    .await;
    let late = app.place(&[("SKU-1", 2)], PaymentMethod::CardOk).await;
    app.wait_for_status(late, OrderStatus::Paid).await;
    assert_eq!(app.stock("SKU-1").await, (88, 0, 88));
    assert_eq!(
        app.count_events("OrderPaid").await,
        11,
        "each order paid once"
    );
    assert_eq!(app.count_events("PaymentCaptured").await, 11);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lock_connection_dies_stops_and_takes_over_again() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 10).await;
    let runtime = app.start(TestApp::fast_options());
    let first = app.place(&[("SKU-1", 1)], PaymentMethod::CardOk).await;
    app.wait_for_status(first, OrderStatus::Paid).await;

    // Kill every session holding a subscription lock (class 2).
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND classid = 2 AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(app.store.pool())
    .await
    .expect("terminate");
    assert!(!killed.is_empty(), "the workers held their locks");

    wait_until("every subscription has an owner again", || async {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 2 AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(app.store.pool())
        .await
        .expect("locks");
        held == CATALOGUE.len() as i64
    })
    .await;
    let second = app.place(&[("SKU-1", 1)], PaymentMethod::CardOk).await;
    app.wait_for_status(second, OrderStatus::Paid).await;
    assert_eq!(app.count_events("PaymentCaptured").await, 2);
    runtime.shutdown().await;
}

/// A runtime checks in all its owners with one statement: every heartbeat
/// row is then written by one transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_statement_checks_in_every_owner_of_a_runtime() {
    let app = TestApp::new().await;
    let runtime = app.start(TestApp::fast_options());
    wait_until("one check-in wrote every owner's heartbeat", || async {
        let (rows, writers, owners): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT xmin::text), count(DISTINCT owner) \
               FROM subscription_status",
        )
        .fetch_one(app.store.pool())
        .await
        .expect("statuses");
        rows == CATALOGUE.len() as i64 && writers == 1 && owners == 1
    })
    .await;
    let statuses = subscription_statuses(&app.store).await.expect("statuses");
    assert!(
        statuses.iter().all(|status| status.state.is_active()),
        "{statuses:?}"
    );
    runtime.shutdown().await;
}
