use aggregates::order::OrderStatus;
use aggregates::values::PaymentMethod;
use projections::operations::{parked_events, request_replay_parked, subscription_statuses};
use projections::runtime::SubscriptionState;

use crate::helpers::{broker_url, declare_exchange, wait_until, BrokerProxy, Queue, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_message_is_retried_then_parked_and_replayed_once_a_queue_is_bound() {
    let app = TestApp::new().await;
    // The exchange exists, but no queue is bound to it: every publish returns.
    {
        let connection = rabbitmq_embedded::connect_amqp(&broker_url().await)
            .await
            .expect("connection");
        let channel = connection.create_channel().await.expect("channel");
        declare_exchange(&channel, &app.exchange).await;
        let _ = connection.close(200, "declared").await;
    }
    let runtime = app.start_relay_only(&broker_url().await);
    let order_id = app.place("SKU-1", 1, PaymentMethod::CardOk).await;
    wait_until("the relay parked the unroutable event", || async {
        app.relay_parked().await == 1
    })
    .await;
    let statuses = subscription_statuses(&app.store).await.expect("statuses");
    let relay_status = statuses
        .iter()
        .find(|status| status.name == relay::NAME)
        .expect("/subscriptions lists the relay once it has run");
    assert_eq!(relay_status.parked, 1);
    assert_ne!(relay_status.state, SubscriptionState::Stopped);
    let parked = parked_events(&app.store, relay::NAME, Default::default(), 10)
        .await
        .expect("parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].event_type, "OrderPlaced");
    assert_eq!(parked[0].attempts, 3, "retried up to max_attempts");
    assert!(
        parked[0].last_error.contains("no queue is bound"),
        "{}",
        parked[0].last_error
    );

    // Fixed: a queue is bound; the operator replays, and it is published.
    let queue = Queue::bind(&app.exchange).await;
    request_replay_parked(&app.store, relay::NAME)
        .await
        .expect("replay");
    let placed = app
        .log()
        .await
        .into_iter()
        .find(|event| event.event_type == "OrderPlaced")
        .expect("placed");
    queue
        .wait_for(&[(placed.event_id, "order.placed.v1", placed.stream_id.clone())])
        .await;
    wait_until("nothing is parked any more", || async {
        app.relay_parked().await == 0
    })
    .await;
    assert_eq!(queue.snapshot()[0].body["order_id"], order_id.to_string());
    runtime.shutdown().await;
    queue.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_reconnects_after_the_broker_goes_away_and_loses_nothing() {
    let app = TestApp::new().await;
    let queue = Queue::bind(&app.exchange).await;
    let mut proxy = BrokerProxy::start().await;
    app.receive("SKU-1", 100).await;
    let runtime = app.start(&proxy.url());
    let first = app.place("SKU-1", 1, PaymentMethod::CardOk).await;
    wait_until("the first order is paid", || async {
        app.status(first).await == Some(OrderStatus::Paid)
    })
    .await;
    queue.wait_for(&app.expected_messages().await).await;

    // The broker is gone: orders still flow through orderstream.
    proxy.down();
    let mut during = Vec::new();
    for _ in 0..5 {
        during.push(app.place("SKU-1", 1, PaymentMethod::CardOk).await);
    }
    for order_id in &during {
        wait_until("orders are paid while the broker is down", || async {
            app.status(*order_id).await == Some(OrderStatus::Paid)
        })
        .await;
    }
    let expected = app.expected_messages().await;
    let missing = expected
        .iter()
        .filter(|(id, _, _)| !queue.snapshot().iter().any(|m| m.message_id == *id))
        .count();
    assert!(
        missing > 0,
        "nothing can be published while the broker is down"
    );

    proxy.up().await;
    queue.wait_for(&expected).await;
    wait_until("the relay caught up", || async {
        let statuses = subscription_statuses(&app.store).await.expect("statuses");
        statuses
            .iter()
            .any(|status| status.name == relay::NAME && status.lag == 0)
    })
    .await;
    assert_eq!(app.relay_parked().await, 0, "an outage parks nothing");
    runtime.shutdown().await;
    queue.delete().await;
}
