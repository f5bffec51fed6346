//! Shipping an order: the order, its reservation and its stock in one
//! atomic append, or nothing.

use std::time::{Duration, Instant};

use aggregates::inventory::InventoryEvent;
use aggregates::order::{Order, OrderCommand, OrderError, OrderEvent, OrderStatus, PlaceOrder};
use aggregates::reservation::{Reservation, ReservationStatus};
use aggregates::values::{Currency, PaymentMethod};
use aggregates::{stream_id, EncodedEvent};
use commands::{ExecuteError, ExecutorOptions, ReservationChange};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::helpers::{line, new_app, receive, request, sku, stock_level, TestApp};

/// An order for 2 of A and 1 of B, placed, reserved and marked reserved.
async fn reserved_order(app: &TestApp) -> Uuid {
    let order_id = Uuid::new_v4();
    let lines = vec![line("A", 2), line("B", 1)];
    let order = stream_id::<Order>(order_id);
    let place = OrderCommand::Place(PlaceOrder {
        order_id,
        customer_id: "c-1".into(),
        currency: Currency::Usd,
        lines: lines.clone(),
        payment_method: PaymentMethod::CardOk,
    });
    app.executor
        .execute::<Order>(&order, &place, &request())
        .await
        .expect("place");
    app.executor
        .change_reservation(order_id, &ReservationChange::Reserve { lines }, &request())
        .await
        .expect("reserve");
    app.executor
        .execute::<Order>(&order, &OrderCommand::MarkReserved, &request())
        .await
        .expect("mark reserved");
    order_id
}

async fn stocked_app(options: ExecutorOptions) -> TestApp {
    let app = new_app(options).await;
    receive(&app, "A", "main", 5).await;
    receive(&app, "B", "main", 3).await;
    app
}

async fn count_events(app: &TestApp, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(app.store.pool())
        .await
        .expect("count")
}

async fn all_events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(app.store.pool())
        .await
        .expect("count")
}

async fn order_status(app: &TestApp, order_id: Uuid) -> Option<OrderStatus> {
    app.executor
        .load::<Order>(&stream_id::<Order>(order_id))
        .await
        .expect("load order")
        .state
        .status()
}

async fn reservation_status(app: &TestApp, order_id: Uuid) -> ReservationStatus {
    app.executor
        .load::<Reservation>(&stream_id::<Reservation>(order_id))
        .await
        .expect("load reservation")
        .state
        .status
}

/// Appends `event` to `stream` in a transaction left open: the stream
/// stays locked until the transaction commits, and the event then lands
/// under the feet of whoever read the stream meanwhile.
async fn open_append(
    app: &TestApp,
    stream: &str,
    event: &EncodedEvent,
) -> Transaction<'static, Postgres> {
    open_append_on(&app.store, stream, event).await
}

async fn open_append_on(
    store: &event_store::EventStore,
    stream: &str,
    event: &EncodedEvent,
) -> Transaction<'static, Postgres> {
    let mut transaction = store.pool().begin().await.expect("begin");
    sqlx::query(
        "SELECT * FROM append_events(ARRAY[$1], ARRAY['any'], ARRAY[0::bigint], \
         ARRAY[1], ARRAY[1], ARRAY[$2::uuid], ARRAY[$3], ARRAY[$4::int], \
         ARRAY[$5::jsonb], ARRAY['{}'::jsonb], ARRAY[NULL::text], ARRAY[NULL::uuid], false)",
    )
    .bind(stream)
    .bind(Uuid::new_v4())
    .bind(event.event_type)
    .bind(event.schema_version)
    .bind(&event.data)
    .fetch_all(&mut *transaction)
    .await
    .expect("append in an open transaction");
    transaction
}

/// Waits until `count` sessions of this test's database wait for a stream
/// lock that another one holds.
async fn wait_for_blocked_appends(app: &TestApp, count: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(app.store.pool())
        .await
        .expect("locks");
        if waiting >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} appends never waited at once"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn shipping_ships_the_order_and_commits_every_sku_so_no_stock_stays_reserved() {
    let app = stocked_app(ExecutorOptions::default()).await;
    let order_id = reserved_order(&app).await;
    assert_eq!(stock_level(&app.executor, "A").await, (5, 2, 3));
    let decision = app
        .executor
        .ship_order(order_id, &request())
        .await
        .expect("ship");
    assert_eq!(decision.order, vec![OrderEvent::Shipped {}]);
    assert_eq!(
        order_status(&app, order_id).await,
        Some(OrderStatus::Shipped)
    );
    assert_eq!(
        reservation_status(&app, order_id).await,
        ReservationStatus::Committed
    );
    assert_eq!(stock_level(&app.executor, "A").await, (3, 0, 3));
    assert_eq!(stock_level(&app.executor, "B").await, (2, 0, 2));
    // One append: every event of the ship shares one transaction.
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT transaction_id) FROM events \
         WHERE event_type IN ('OrderShipped', 'InventoryCommitted', 'StockCommitted')",
    )
    .fetch_one(app.store.pool())
    .await
    .expect("count");
    assert_eq!(transactions, 1);
}

#[tokio::test]
async fn shipping_an_order_again_writes_nothing_the_second_time() {
    let app = stocked_app(ExecutorOptions::default()).await;
    let order_id = reserved_order(&app).await;
    app.executor
        .ship_order(order_id, &request())
        .await
        .expect("ship");
    let before = all_events(&app).await;
    let again = app
        .executor
        .ship_order(order_id, &request())
        .await
        .expect("a repeat succeeds");
    assert!(again.is_empty(), "{again:?}");
    // Also decided on the store, not on this process's cache.
    let other = new_app_on(&app);
    let again = other
        .ship_order(order_id, &request())
        .await
        .expect("a repeat elsewhere succeeds");
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(all_events(&app).await, before);
    assert_eq!(stock_level(&app.executor, "A").await, (3, 0, 3));
}

#[tokio::test]
async fn shipping_a_cancelled_order_is_refused_and_writes_nothing() {
    let app = stocked_app(ExecutorOptions::default()).await;
    let order_id = reserved_order(&app).await;
    app.executor
        .execute::<Order>(
            &stream_id::<Order>(order_id),
            &OrderCommand::Cancel { reason: "r".into() },
            &request(),
        )
        .await
        .expect("cancel");
    let before = all_events(&app).await;
    let refused = app.executor.ship_order(order_id, &request()).await;
    assert!(
        matches!(
            refused,
            Err(ExecuteError::Domain(OrderError::CannotShip {
                status: OrderStatus::Cancelled
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(all_events(&app).await, before);
    assert_eq!(
        reservation_status(&app, order_id).await,
        ReservationStatus::Reserved,
        "left for the release"
    );
}

#[tokio::test]
async fn a_ship_whose_append_fails_on_one_stream_writes_nothing_on_any() {
    let app = stocked_app(ExecutorOptions {
        max_attempts: 1,
        cached_states: 0,
        ..ExecutorOptions::default()
    })
    .await;
    let order_id = reserved_order(&app).await;
    // Receipts of B land while the ship waits to append, twice: B's stream
    // is then past the version the ship decided on, both on its first try
    // (which may have used a cached state, so it is retried at once) and on
    // the one attempt it is allowed on the stored state.
    let inventory_b = stream_id::<aggregates::inventory::Inventory>("B");
    let receipt = EncodedEvent::of(&InventoryEvent::Received {
        sku: sku("B"),
        warehouse: aggregates::values::Warehouse::parse("main").expect("warehouse"),
        quantity: 1,
    });
    let first = open_append(&app, &inventory_b, &receipt).await;
    let executor = app.executor.clone();
    let ship = tokio::spawn(async move { executor.ship_order(order_id, &request()).await });
    wait_for_blocked_appends(&app, 1).await;
    // Queued behind the ship: it takes the lock as the ship's first try
    // gives it up, before the retry can ask for it.
    let second = {
        let app_store = app.store.clone();
        let stream = inventory_b.clone();
        let receipt = receipt.clone();
        tokio::spawn(async move { open_append_on(&app_store, &stream, &receipt).await })
    };
    wait_for_blocked_appends(&app, 2).await;
    first.commit().await.expect("commit the first receipt");
    let second = second.await.expect("second receipt task");
    wait_for_blocked_appends(&app, 1).await;
    second.commit().await.expect("commit the second receipt");
    let outcome = ship.await.expect("ship task");
    assert!(
        matches!(&outcome, Err(ExecuteError::Conflict { stream_id, .. }) if stream_id == "inventory-B"),
        "{outcome:?}"
    );
    for event_type in ["OrderShipped", "InventoryCommitted", "StockCommitted"] {
        assert_eq!(count_events(&app, event_type).await, 0, "{event_type}");
    }
    assert_eq!(
        order_status(&app, order_id).await,
        Some(OrderStatus::Reserved)
    );
    assert_eq!(
        reservation_status(&app, order_id).await,
        ReservationStatus::Reserved
    );
    assert_eq!(stock_level(&app.executor, "A").await, (5, 2, 3));
    assert_eq!(stock_level(&app.executor, "B").await, (5, 1, 4));
}

#[tokio::test]
async fn a_cancel_that_lands_while_the_ship_waits_makes_the_ship_refuse_and_commit_nothing() {
    let app = stocked_app(ExecutorOptions {
        cached_states: 0,
        ..ExecutorOptions::default()
    })
    .await;
    let order_id = reserved_order(&app).await;
    let cancel = EncodedEvent::of(&OrderEvent::Cancelled {
        reason: "raced".into(),
    });
    let transaction = open_append(&app, &stream_id::<Order>(order_id), &cancel).await;
    let executor = app.executor.clone();
    let ship = tokio::spawn(async move { executor.ship_order(order_id, &request()).await });
    wait_for_blocked_appends(&app, 1).await;
    transaction.commit().await.expect("commit the cancel");
    let outcome = ship.await.expect("ship task");
    assert!(
        matches!(
            outcome,
            Err(ExecuteError::Domain(OrderError::CannotShip {
                status: OrderStatus::Cancelled
            }))
        ),
        "{outcome:?}"
    );
    for event_type in ["OrderShipped", "InventoryCommitted", "StockCommitted"] {
        assert_eq!(count_events(&app, event_type).await, 0, "{event_type}");
    }
    assert_eq!(stock_level(&app.executor, "A").await, (5, 2, 3));
}

#[tokio::test]
async fn shipping_an_order_that_is_not_reserved_is_refused() {
    let app = stocked_app(ExecutorOptions::default()).await;
    let order_id = Uuid::new_v4();
    let refused = app.executor.ship_order(order_id, &request()).await;
    assert!(
        matches!(refused, Err(ExecuteError::Domain(OrderError::NotPlaced))),
        "{refused:?}"
    );
    let order_id = reserved_order(&app).await;
    let pending = Uuid::new_v4();
    app.executor
        .execute::<Order>(
            &stream_id::<Order>(pending),
            &OrderCommand::Place(PlaceOrder {
                order_id: pending,
                customer_id: "c-1".into(),
                currency: Currency::Usd,
                lines: vec![line("A", 1)],
                payment_method: PaymentMethod::CardOk,
            }),
            &request(),
        )
        .await
        .expect("place");
    let refused = app.executor.ship_order(pending, &request()).await;
    assert!(
        matches!(
            refused,
            Err(ExecuteError::Domain(OrderError::CannotShip {
                status: OrderStatus::Pending
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(
        order_status(&app, order_id).await,
        Some(OrderStatus::Reserved)
    );
}

/// Another process's executor on the same store: its own, empty cache.
fn new_app_on(app: &TestApp) -> commands::CommandExecutor {
    commands::CommandExecutor::new(app.store.clone(), ExecutorOptions::default())
}
