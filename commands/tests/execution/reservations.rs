//! Reserving an order across SKUs: all lines or none, in one append.

use aggregates::reservation::{Reservation, ReservationError, ReservationEvent};
use aggregates::stream_id;
use commands::{ExecuteError, ExecutorOptions, ReservationChange};
use uuid::Uuid;

use crate::helpers::{line, new_app, receive, request, stock_level};

#[tokio::test]
async fn an_order_whose_lines_all_fit_reserves_every_line_at_once() {
    let app = new_app(ExecutorOptions::default()).await;
    receive(&app, "A", "main", 5).await;
    receive(&app, "B", "east", 3).await;
    let order_id = Uuid::new_v4();
    let change = ReservationChange::Reserve {
        lines: vec![line("A", 2), line("B", 3)],
    };
    let decision = app
        .executor
        .change_reservation(order_id, &change, &request())
        .await
        .expect("reserve");
    assert!(matches!(
        decision.reservation[..],
        [ReservationEvent::Reserved { .. }]
    ));
    assert_eq!(stock_level(&app.executor, "A").await, (5, 2, 3));
    assert_eq!(stock_level(&app.executor, "B").await, (3, 3, 0));
    let again = app
        .executor
        .change_reservation(order_id, &change, &request())
        .await
        .expect("repeat");
    assert!(
        again.is_empty(),
        "a second reserve of the same order is a no-op"
    );
    assert_eq!(stock_level(&app.executor, "A").await, (5, 2, 3));
}

#[tokio::test]
async fn an_order_with_one_short_line_reserves_nothing() {
    let app = new_app(ExecutorOptions::default()).await;
    receive(&app, "A", "main", 5).await;
    receive(&app, "B", "main", 1).await;
    let order_id = Uuid::new_v4();
    let decision = app
        .executor
        .change_reservation(
            order_id,
            &ReservationChange::Reserve {
                lines: vec![line("A", 2), line("B", 3)],
            },
            &request(),
        )
        .await
        .expect("decided");
    assert!(matches!(
        decision.reservation[..],
        [ReservationEvent::Unavailable { .. }]
    ));
    assert!(decision.inventory.values().all(Vec::is_empty));
    assert_eq!(stock_level(&app.executor, "A").await, (5, 0, 5));
    assert_eq!(stock_level(&app.executor, "B").await, (1, 0, 1));
    let stream = stream_id::<Reservation>(order_id);
    assert_eq!(app.store.stream_version(&stream).await.expect("version"), 1);
}

#[tokio::test]
async fn release_gives_stock_back_and_commit_takes_it_off_hand() {
    let app = new_app(ExecutorOptions::default()).await;
    receive(&app, "A", "main", 5).await;
    let kept = Uuid::new_v4();
    let cancelled = Uuid::new_v4();
    for order_id in [kept, cancelled] {
        app.executor
            .change_reservation(
                order_id,
                &ReservationChange::Reserve {
                    lines: vec![line("A", 2)],
                },
                &request(),
            )
            .await
            .expect("reserve");
    }
    assert_eq!(stock_level(&app.executor, "A").await, (5, 4, 1));
    app.executor
        .change_reservation(cancelled, &ReservationChange::Release, &request())
        .await
        .expect("release");
    assert_eq!(stock_level(&app.executor, "A").await, (5, 2, 3));
    app.executor
        .change_reservation(kept, &ReservationChange::Commit, &request())
        .await
        .expect("commit");
    assert_eq!(stock_level(&app.executor, "A").await, (3, 0, 3));
    let refused = app
        .executor
        .change_reservation(kept, &ReservationChange::Release, &request())
        .await;
    assert!(
        matches!(
            refused,
            Err(ExecuteError::Domain(ReservationError::AlreadyCommitted))
        ),
        "{refused:?}"
    );
}
