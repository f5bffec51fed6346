//! Cached and presumed states: two executors on one database stand for two
//! processes, each with its own cache, so each sees the other's writes only
//! through the store. A stale state must never decide a command.

use aggregates::inventory::{Inventory, InventoryCommand, InventoryError};
use aggregates::order::{Order, OrderCommand, OrderError, PlaceOrder};
use aggregates::stream_id;
use aggregates::values::{Currency, PaymentMethod};
use commands::{CommandExecutor, ExecuteError, ExecutorOptions, ReservationChange};
use uuid::Uuid;

use crate::helpers::{line, new_app, receive, request, sku, stock_level};

fn reserve(order_id: Uuid, quantity: u64) -> InventoryCommand {
    InventoryCommand::Reserve {
        sku: sku("SKU-1"),
        order_id,
        quantity,
    }
}

#[tokio::test]
async fn a_stale_cached_state_neither_oversells_nor_wrongly_refuses() {
    let app = new_app(ExecutorOptions::default()).await;
    let ours = app.executor.clone();
    let theirs = CommandExecutor::new(app.store.clone(), ExecutorOptions::default());
    let stream = stream_id::<Inventory>("SKU-1");
    // Ours caches the inventory with 5 available.
    receive(&app, "SKU-1", "main", 5).await;
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    theirs
        .execute::<Inventory>(&stream, &reserve(first, 5), &request())
        .await
        .expect("their reservation");

    // Our cache still says 5 are available: the append must catch it.
    let refused = ours
        .execute::<Inventory>(&stream, &reserve(second, 1), &request())
        .await;
    assert!(
        matches!(
            refused,
            Err(ExecuteError::Domain(InventoryError::InsufficientStock {
                requested: 1,
                available: 0,
                ..
            }))
        ),
        "{refused:?}"
    );

    // Now our cache says none are available, and they release theirs: the
    // refusal a stale state would give must be decided again on the store.
    theirs
        .execute::<Inventory>(
            &stream,
            &InventoryCommand::Release {
                sku: sku("SKU-1"),
                order_id: first,
            },
            &request(),
        )
        .await
        .expect("their release");
    let reserved = ours
        .execute::<Inventory>(&stream, &reserve(second, 1), &request())
        .await
        .expect("reserved once the stock is back");
    assert_eq!(reserved.events.len(), 1);
    assert_eq!(stock_level(&theirs, "SKU-1").await, (5, 1, 4));
}

#[tokio::test]
async fn a_stream_presumed_new_that_exists_is_decided_on_the_store() {
    let app = new_app(ExecutorOptions::default()).await;
    let theirs = CommandExecutor::new(app.store.clone(), ExecutorOptions::default());
    let order_id = Uuid::new_v4();
    let stream = stream_id::<Order>(order_id);
    let place = OrderCommand::Place(PlaceOrder {
        order_id,
        customer_id: "c-1".into(),
        currency: Currency::Usd,
        lines: vec![line("SKU-1", 1)],
        payment_method: PaymentMethod::default(),
    });
    let placed = app
        .executor
        .execute_new::<Order>(&stream, &place, &request())
        .await
        .expect("placed");
    assert_eq!((placed.version, placed.appended.len()), (1, 1));
    for executor in [&app.executor, &theirs] {
        let again = executor
            .execute_new::<Order>(&stream, &place, &request())
            .await;
        assert!(
            matches!(again, Err(ExecuteError::Domain(OrderError::AlreadyPlaced))),
            "{again:?}"
        );
    }
    assert_eq!(app.store.stream_version(&stream).await.expect("version"), 1);
}

#[tokio::test]
async fn a_reservation_redelivered_to_another_process_reserves_once() {
    let app = new_app(ExecutorOptions::default()).await;
    let theirs = CommandExecutor::new(app.store.clone(), ExecutorOptions::default());
    receive(&app, "SKU-1", "main", 10).await;
    let order_id = Uuid::new_v4();
    let change = ReservationChange::Reserve {
        lines: vec![line("SKU-1", 3)],
    };
    let decision = app
        .executor
        .change_reservation(order_id, &change, &request())
        .await
        .expect("reserved");
    assert!(!decision.is_empty());
    // Theirs presumes the reservation is new and has no inventory cached;
    // ours has both cached. Neither reserves a second time.
    for executor in [&theirs, &app.executor] {
        let again = executor
            .change_reservation(order_id, &change, &request())
            .await
            .expect("a repeat is not an error");
        assert!(again.is_empty(), "{again:?}");
    }
    assert_eq!(stock_level(&theirs, "SKU-1").await, (10, 3, 7));
    // Ours releases on a cached reservation that theirs has not touched.
    app.executor
        .change_reservation(order_id, &ReservationChange::Release, &request())
        .await
        .expect("released");
    assert_eq!(stock_level(&theirs, "SKU-1").await, (10, 0, 10));
}
