//! Consumer groups: two runtimes (as two processes would) split every
//! reactor's members between them; when one dies, the other takes its
//! members; every order is handled once, in order.

use std::collections::{BTreeSet, HashMap};

use aggregates::order::OrderStatus;
use aggregates::values::PaymentMethod;
use projections::operations::subscription_statuses;
use projections::reactors::{fulfilment, inventory, order, payment};
use projections::runtime::{RuntimeOptions, SubscriptionState};
use uuid::Uuid;

use crate::helpers::{wait_until, TestApp};

const REACTORS: [&str; 4] = [
    inventory::NAME,
    order::NAME,
    fulfilment::NAME,
    payment::NAME,
];
const MEMBERS: u32 = 4;

fn split_options() -> RuntimeOptions {
    RuntimeOptions {
        reactor_partitions: MEMBERS,
        ..TestApp::fast_options()
    }
}

/// Each reactor's members, by name, with their owner while one is at work.
async fn owners(app: &TestApp) -> HashMap<String, Option<String>> {
    subscription_statuses(&app.store)
        .await
        .expect("statuses")
        .into_iter()
        .filter(|status| {
            REACTORS
                .iter()
                .any(|reactor| status.name.starts_with(reactor))
        })
        .map(|status| {
            let owner = (status.state != SubscriptionState::Stopped)
                .then_some(status.owner)
                .flatten();
            (status.name, owner)
        })
        .collect()
}

async fn place_orders(app: &TestApp, count: usize) -> Vec<Uuid> {
    let mut orders = Vec::with_capacity(count);
    for _ in 0..count {
        orders.push(app.place(&[("sku-a", 1)], PaymentMethod::CardOk).await);
    }
    orders
}

#[tokio::test]
async fn two_runtimes_share_the_members_and_the_survivor_takes_over_a_crashed_ones() {
    let app = TestApp::new().await;
    app.receive("sku-a", "wh-1", 1_000).await;
    let first = app.start(split_options());
    let second = app.start(split_options());
    let both: BTreeSet<String> = [first.owner().to_owned(), second.owner().to_owned()].into();

    // Every member of every reactor is owned, half by each runtime.
    wait_until(
        "each runtime owns half of each reactor's members",
        || async {
            let owners = owners(&app).await;
            REACTORS.iter().all(|reactor| {
                let of_reactor: Vec<&Option<String>> = owners
                    .iter()
                    .filter(|(name, _)| name.starts_with(&format!("{reactor}.")))
                    .map(|(_, owner)| owner)
                    .collect();
                of_reactor.len() == MEMBERS as usize
                    && both.iter().all(|runtime| {
                        of_reactor
                            .iter()
                            .filter(|owner| owner.as_deref() == Some(runtime.as_str()))
                            .count()
                            == (MEMBERS / 2) as usize
                    })
            })
        },
    )
    .await;
    let mut orders = place_orders(&app, 30).await;
    for order_id in &orders {
        app.wait_for_status(*order_id, OrderStatus::Paid).await;
    }

    // The first dies as a crash would; the second takes every member.
    let gone = first.owner().to_owned();
    first.abort().await;
    let survivor = second.owner().to_owned();
    wait_until("the survivor owns every member", || async {
        let owners = owners(&app).await;
        owners.len() == REACTORS.len() * MEMBERS as usize
            && owners
                .values()
                .all(|owner| owner.as_deref() == Some(survivor.as_str()))
    })
    .await;
    orders.extend(place_orders(&app, 30).await);
    for order_id in &orders {
        app.wait_for_status(*order_id, OrderStatus::Paid).await;
    }
    app.wait_until_idle().await;
    assert!(!owners(&app)
        .await
        .values()
        .any(|owner| owner.as_deref() == Some(gone.as_str())));

    // Once and in order: each order's own streams hold exactly the flow.
    for order_id in &orders {
        assert_eq!(
            event_types(&app, &format!("order-{order_id}")).await,
            ["OrderPlaced", "OrderReserved", "OrderShipped", "OrderPaid"],
            "order {order_id}"
        );
        assert_eq!(
            event_types(&app, &format!("reservation-{order_id}")).await,
            ["InventoryReserved", "InventoryCommitted"]
        );
        assert_eq!(
            event_types(&app, &format!("payment-{order_id}")).await,
            ["PaymentRequested", "PaymentCaptured"]
        );
    }
    let (on_hand, reserved, _) = app.stock("sku-a").await;
    assert_eq!((on_hand, reserved), (1_000 - orders.len() as u64, 0));
    second.shutdown().await;
}

async fn event_types(app: &TestApp, stream: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT event_type FROM events WHERE stream_id = $1 ORDER BY stream_version")
        .bind(stream)
        .fetch_all(app.store.pool())
        .await
        .expect("events")
}
