//! Many orders competing for little stock.

use aggregates::order::OrderStatus;
use aggregates::values::PaymentMethod;
use projections::read_models::stock;

use crate::helpers::{wait_until, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_orders_for_fifty_units_make_fifty_paid_and_fifty_rejected() {
    let app = TestApp::new().await;
    app.receive("SKU-1", "main", 30).await;
    app.receive("SKU-1", "east", 20).await;
    let runtime = app.start(TestApp::fast_options());
    let placing = (0..100).map(|_| app.place(&[("SKU-1", 1)], PaymentMethod::CardOk));
    let orders = futures::future::join_all(placing).await;
    wait_until("every order reached a final state", || async {
        let mut final_states = 0;
        for order_id in &orders {
            if matches!(
                app.status(*order_id).await,
                Some(OrderStatus::Paid | OrderStatus::Rejected)
            ) {
                final_states += 1;
            }
        }
        final_states == orders.len()
    })
    .await;
    let mut paid = 0;
    for order_id in &orders {
        if app.status(*order_id).await == Some(OrderStatus::Paid) {
            paid += 1;
        }
    }
    assert_eq!(paid, 50);
    assert_eq!(app.stock("SKU-1").await, (0, 0, 0));
    app.wait_until_idle().await;
    let history = stock::stock_history(app.store.pool(), "SKU-1", stock::HistoryRange::first(1000))
        .await
        .expect("history");
    assert!(
        history.len() >= 2 + 50 + 50,
        "one row per change: {}",
        history.len()
    );
    assert!(history
        .iter()
        .all(|row| row.available >= 0 && row.on_hand >= row.reserved));
    runtime.shutdown().await;
}
