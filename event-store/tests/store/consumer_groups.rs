//! Consumer groups in the store: a partitioned filter splits the log
//! between members, and a layout's lease takes over from another layout.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use event_store::{
    CheckpointLayout, ExpectedVersion, LogCursor, LogFilter, Partition, RecordedEvent, StoreError,
    SubscribeOptions,
};
use futures::StreamExt;

use crate::helpers::{all_visible, event, label, new_store};

const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn partitions_split_the_log_between_members_each_in_log_order() {
    let (_db, store) = new_store().await;
    for round in 0..3 {
        for entity in 0..20 {
            for category in ["order", "payment"] {
                let stream = format!("{category}-{entity}");
                store
                    .append_to_stream(
                        &stream,
                        ExpectedVersion::Any,
                        vec![event(&format!("{stream}/{round}"))],
                    )
                    .await
                    .expect("append");
            }
        }
    }
    all_visible(&store).await;
    let head = store.head().await.expect("head");
    let everything: Vec<RecordedEvent> =
        store.read_log(LogCursor::START, 1000).await.expect("read");
    assert_eq!(everything.len(), 120);

    let count = 3;
    let mut seen = Vec::new();
    let mut member_of_entity = HashMap::new();
    for index in 0..count {
        let partition = Partition::new(index, count).expect("a partition");
        let filter = LogFilter::Category("order".into()).partitioned(partition);
        let expected = store
            .count_between(LogCursor::START, head, &filter)
            .await
            .expect("count");
        let events = read_member(&store, filter, expected).await;
        assert!(
            events
                .windows(2)
                .all(|pair| pair[0].cursor() < pair[1].cursor()),
            "a member reads in log order"
        );
        for event in &events {
            assert!(event.stream_id.starts_with("order-"), "{}", event.stream_id);
            member_of_entity.insert(event.stream_id["order-".len()..].to_owned(), index);
        }
        // Without a category, the same split: an entity's streams of every
        // category go to one member.
        let all = LogFilter::All.partitioned(partition);
        let all_expected = store
            .count_between(LogCursor::START, head, &all)
            .await
            .expect("count");
        assert_eq!(all_expected, expected * 2, "order-N and payment-N together");
        for event in read_member(&store, all, all_expected).await {
            let entity = event.stream_id.split_once('-').expect("a category").1;
            assert_eq!(
                member_of_entity.get(entity),
                Some(&index),
                "{}",
                event.stream_id
            );
        }
        seen.extend(events.iter().map(label));
    }
    let orders: HashSet<String> = everything
        .iter()
        .filter(|event| event.stream_id.starts_with("order-"))
        .map(label)
        .collect();
    assert_eq!(
        seen.len(),
        orders.len(),
        "each event is read by one member only"
    );
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), orders);
    assert!(
        (0..count).all(|index| member_of_entity.values().any(|member| *member == index)),
        "20 entities spread over all 3 members: {member_of_entity:?}"
    );
}

/// The `expected` events a subscription with `filter` reads from the start.
async fn read_member(
    store: &event_store::EventStore,
    filter: LogFilter,
    expected: i64,
) -> Vec<RecordedEvent> {
    let mut subscription = store.subscribe(
        LogCursor::START,
        SubscribeOptions {
            filter,
            batch_size: 7,
            ..SubscribeOptions::default()
        },
    );
    let mut events = Vec::new();
    while (events.len() as i64) < expected {
        let event = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .expect("the member's events within the patience")
            .expect("subscriptions never end");
        events.push(event);
    }
    events
}

fn at(position: i64) -> LogCursor {
    LogCursor {
        transaction_id: 10,
        position,
    }
}

#[tokio::test]
async fn a_new_layout_starts_where_the_last_one_got_and_fences_it_off() {
    let (_db, store) = new_store().await;
    let whole = ["reactor".to_owned()];
    let split = ["reactor.0-of-2".to_owned(), "reactor.1-of-2".to_owned()];
    let layout = |members| CheckpointLayout {
        group: "reactor",
        members,
    };
    let (unsplit, _) = store
        .take_checkpoint_lease_in_layout("reactor", layout(&whole))
        .await
        .expect("lease");
    unsplit
        .advance(store.pool(), at(50))
        .await
        .expect("advance");

    // Split in two: both members start where the whole one got, and the
    // whole one's owner can commit nothing more.
    let (first, from) = store
        .take_checkpoint_lease_in_layout(&split[0], layout(&split))
        .await
        .expect("lease");
    assert_eq!(from, at(50));
    assert!(matches!(
        unsplit.advance(store.pool(), at(60)).await,
        Err(StoreError::Fenced { .. })
    ));
    let (second, from) = store
        .take_checkpoint_lease_in_layout(&split[1], layout(&split))
        .await
        .expect("lease");
    assert_eq!(from, at(50));
    // Members of one layout do not fence each other.
    first.advance(store.pool(), at(70)).await.expect("advance");
    second.advance(store.pool(), at(65)).await.expect("advance");

    // Back to one: it starts at the least of the members, which moved
    // since it did, and fences them both.
    let (whole_again, from) = store
        .take_checkpoint_lease_in_layout("reactor", layout(&whole))
        .await
        .expect("lease");
    assert_eq!(from, at(65));
    for member in [&first, &second] {
        assert!(matches!(
            member.confirm(store.pool()).await,
            Err(StoreError::Fenced { .. })
        ));
    }
    whole_again
        .advance(store.pool(), at(80))
        .await
        .expect("advance");

    // A member whose checkpoint moved after every other layout's keeps it.
    let (first_again, from) = store
        .take_checkpoint_lease_in_layout(&split[0], layout(&split))
        .await
        .expect("lease");
    assert_eq!(from, at(80), "the whole layout moved last: its place");
    first_again
        .advance(store.pool(), at(90))
        .await
        .expect("advance");
    let (_, from) = store
        .take_checkpoint_lease_in_layout(&split[0], layout(&split))
        .await
        .expect("lease");
    assert_eq!(from, at(90), "its own place: nothing moved since");
}
