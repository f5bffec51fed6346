//! Per-stream order when a message fails: with hundreds of streams and an
//! event's messages in flight at once, nothing of a stream after a returned
//! message reaches the broker until the operator fixes the routing and
//! replays, and then everything arrives once, in log order.

use std::collections::HashMap;

use aggregates::order::{Order, OrderStatus};
use aggregates::stream_id;
use aggregates::values::PaymentMethod;
use projections::operations::{parked_events, request_replay_parked, subscription_statuses};

use crate::helpers::{broker_url, wait_until, Queue, TestApp};

/// Every contract but `order.placed.v1`.
const ALL_BUT_PLACED: &[&str] = &[
    "order.shipped.#",
    "order.paid.#",
    "order.cancelled.#",
    "inventory.#",
    "stock.#",
    "payment.#",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_message_holds_back_the_rest_of_its_stream_until_replayed() {
    let app = TestApp::new().await;
    let queue = Queue::bind_keys(&app.exchange, ALL_BUT_PLACED).await;
    app.receive("SKU-1", 10).await;
    let runtime = app.start(&broker_url().await);
    let order_id = app.place("SKU-1", 1, PaymentMethod::CardOk).await;
    let stream = stream_id::<Order>(order_id);
    wait_until("the order is paid", || async {
        app.status(order_id).await == Some(OrderStatus::Paid)
    })
    .await;
    wait_until("the relay has handled the whole log", || async {
        subscription_statuses(&app.store)
            .await
            .expect("statuses")
            .iter()
            .any(|status| status.name == relay::NAME && status.lag == 0)
    })
    .await;

    // The other streams' messages went out (payment, reservation, stock)...
    let expected = app.expected_messages().await;
    let (of_stream, others): (Vec<_>, Vec<_>) = expected
        .into_iter()
        .partition(|(_, _, stream_id)| *stream_id == stream);
    assert!(
        of_stream.len() >= 4,
        "placed, shipped (v1 and v2), paid: {of_stream:?}"
    );
    queue.wait_for(&others).await;
    // ...but not one of the order stream's: its first was returned and
    // everything after it waits parked behind it.
    assert!(
        queue.snapshot().iter().all(|m| m.stream_id() != stream),
        "nothing of the stream may overtake its returned message"
    );
    let parked = parked_events(&app.store, relay::NAME, Default::default(), 100)
        .await
        .expect("parked");
    let stream_events = app
        .log()
        .await
        .into_iter()
        .filter(|event| event.stream_id == stream)
        .count();
    assert_eq!(parked.len(), stream_events, "{parked:?}");
    assert!(parked.iter().all(|p| p.stream_id == stream));
    assert!(
        parked[0].last_error.contains("order.placed.v1"),
        "{parked:?}"
    );
    assert!(parked[1..]
        .iter()
        .all(|p| p.blocked_by == Some(parked[0].position)));

    // Fixed and replayed: the whole stream, once each, in log order.
    queue.add_key("order.placed.v1").await;
    request_replay_parked(&app.store, relay::NAME)
        .await
        .expect("replay");
    queue.wait_for(&of_stream).await;
    wait_until("nothing is parked any more", || async {
        app.relay_parked().await == 0
    })
    .await;
    let received: Vec<_> = queue
        .snapshot()
        .into_iter()
        .filter(|m| m.stream_id() == stream)
        .collect();
    let mut copies: HashMap<_, usize> = HashMap::new();
    for message in &received {
        *copies.entry(message.message_id).or_default() += 1;
    }
    assert!(
        copies.values().all(|&n| n == 1),
        "each message once: {copies:?}"
    );
    let positions: Vec<i64> = received.iter().map(|m| m.log_position()).collect();
    assert!(
        positions.is_sorted(),
        "the stream's messages arrive in log order: {positions:?}"
    );
    assert_eq!(received[0].routing_key, "order.placed.v1");
    runtime.shutdown().await;
    queue.delete().await;
}
