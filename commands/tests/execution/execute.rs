//! Single-aggregate commands: decide, append, metadata, idempotency.

use aggregates::order::{Order, OrderCommand, OrderError, OrderStatus, PlaceOrder};
use aggregates::stream_id;
use aggregates::values::{Currency, PaymentMethod};
use commands::{CommandContext, ExecuteError, ExecutorOptions};
use event_store::StreamRead;
use uuid::Uuid;

use crate::helpers::{line, new_app};

fn place(order_id: Uuid) -> OrderCommand {
    OrderCommand::Place(PlaceOrder {
        order_id,
        customer_id: "c-42".into(),
        currency: Currency::Usd,
        lines: vec![line("SKU-1", 2)],
        payment_method: PaymentMethod::CardOk,
    })
}

#[tokio::test]
async fn a_command_appends_its_events_with_the_contexts_metadata() {
    let app = new_app(ExecutorOptions::default()).await;
    let order_id = Uuid::new_v4();
    let stream = stream_id::<Order>(order_id);
    let context = CommandContext::from_request(Uuid::new_v4(), "api");
    let executed = app
        .executor
        .execute::<Order>(&stream, &place(order_id), &context)
        .await
        .expect("place");
    assert_eq!(executed.version, 1);
    assert_eq!(executed.state.status(), Some(OrderStatus::Pending));
    let stored = app
        .store
        .read_stream(&stream, StreamRead::default())
        .await
        .expect("read");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event_type, "OrderPlaced");
    assert_eq!(stored[0].correlation_id, Some(context.correlation_id));
    assert_eq!(stored[0].causation_id, Some(context.causation_id));
    assert_eq!(stored[0].metadata["actor"], "api");
}

#[tokio::test]
async fn a_refused_command_writes_nothing() {
    let app = new_app(ExecutorOptions::default()).await;
    let order_id = Uuid::new_v4();
    let stream = stream_id::<Order>(order_id);
    let refused = app
        .executor
        .execute::<Order>(&stream, &OrderCommand::Ship, &crate::helpers::request())
        .await;
    assert!(
        matches!(refused, Err(ExecuteError::Domain(OrderError::NotPlaced))),
        "{refused:?}"
    );
    assert_eq!(app.store.stream_version(&stream).await.expect("version"), 0);
}

#[tokio::test]
async fn a_command_caused_by_the_same_event_twice_has_one_effect() {
    let app = new_app(ExecutorOptions::default()).await;
    let order_id = Uuid::new_v4();
    let stream = stream_id::<Order>(order_id);
    app.executor
        .execute::<Order>(&stream, &place(order_id), &crate::helpers::request())
        .await
        .expect("place");
    let source_event = Uuid::new_v4();
    let context = CommandContext::caused_by_event("order-reactor", source_event, None);
    let first = app
        .executor
        .execute::<Order>(&stream, &OrderCommand::MarkReserved, &context)
        .await
        .expect("first delivery");
    assert_eq!(first.events.len(), 1);
    let second = app
        .executor
        .execute::<Order>(&stream, &OrderCommand::MarkReserved, &context)
        .await
        .expect("redelivery");
    assert!(second.events.is_empty());
    assert_eq!(app.store.stream_version(&stream).await.expect("version"), 2);
    let ids_again = CommandContext::caused_by_event("order-reactor", source_event, None);
    let reserved = aggregates::EncodedEvent::of(&first.events[0]);
    assert_eq!(
        ids_again.event_id(&stream, 0, &reserved),
        context.event_id(&stream, 0, &reserved)
    );
}

#[tokio::test]
async fn an_order_reads_as_it_was_at_an_earlier_version() {
    let app = new_app(ExecutorOptions::default()).await;
    let order_id = Uuid::new_v4();
    let stream = stream_id::<Order>(order_id);
    for command in [
        place(order_id),
        OrderCommand::MarkReserved,
        OrderCommand::Ship,
    ] {
        app.executor
            .execute::<Order>(&stream, &command, &crate::helpers::request())
            .await
            .expect("command");
    }
    let then = app
        .executor
        .load_as_of::<Order>(&stream, event_store::AsOf::Version(2))
        .await
        .expect("load");
    assert_eq!(then.state.status(), Some(OrderStatus::Reserved));
    let now = app.executor.load::<Order>(&stream).await.expect("load");
    assert_eq!(now.state.status(), Some(OrderStatus::Shipped));
}
