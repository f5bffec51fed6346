//! Correlation ids as their callers gave them: stored as text, found by
//! that text, and refused by the database when they are not ids.

use event_store::{CorrelationId, ExpectedVersion, LogCursor};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{all_visible, correlated_event, label, new_store};

#[tokio::test]
async fn a_correlation_id_that_is_not_a_uuid_is_stored_and_found_as_given() {
    let (_db, store) = new_store().await;
    let flow = CorrelationId::new("order-import-42/abc").expect("an id");
    let other = CorrelationId::new("order-import-42/abd").expect("an id");
    for (stream, event) in [
        ("order-1", correlated_event("placed", flow.clone())),
        ("order-2", correlated_event("other", other)),
        ("reservation-1", correlated_event("reserved", flow.clone())),
        ("order-3", correlated_event("uuid", Uuid::new_v4())),
    ] {
        store
            .append_to_stream(stream, ExpectedVersion::Any, vec![event])
            .await
            .expect("append");
    }
    all_visible(&store).await;
    let events = store
        .read_correlation(&flow, LogCursor::START, 100)
        .await
        .expect("read");
    assert_eq!(
        events.iter().map(label).collect::<Vec<_>>(),
        ["placed", "reserved"]
    );
    assert_eq!(events[0].correlation_id.as_ref(), Some(&flow));
    assert_eq!(
        events[0].metadata["correlation_id"],
        json!("order-import-42/abc")
    );
    // Stored as sent, in the indexed column too.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT correlation_id FROM events WHERE correlation_id LIKE 'order-import-%' \
         ORDER BY position",
    )
    .fetch_all(store.pool())
    .await
    .expect("select");
    assert_eq!(
        stored,
        [
            "order-import-42/abc",
            "order-import-42/abd",
            "order-import-42/abc"
        ]
    );
}

#[tokio::test]
async fn the_database_refuses_a_correlation_id_of_another_shape() {
    let (_db, store) = new_store().await;
    for bad in ["", "two words", &"x".repeat(129)] {
        let refused = sqlx::query(
            "INSERT INTO events (transaction_id, stream_id, stream_version, event_id, \
                 event_type, schema_version, data, metadata, correlation_id, recorded_at) \
             VALUES (1, 'raw-1', 1, gen_random_uuid(), 'Raw', 1, '{}', '{}', $1, now())",
        )
        .bind(bad)
        .execute(store.pool())
        .await
        .expect_err("refused");
        let code = refused
            .as_database_error()
            .and_then(|error| error.code())
            .map(|code| code.into_owned());
        assert_eq!(code.as_deref(), Some("23514"), "{bad:?}: {refused}");
    }
}
