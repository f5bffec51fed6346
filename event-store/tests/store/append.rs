//! Appends: expected versions, idempotency, atomic multi-stream appends,
//! and the append-only guarantee.

use event_store::{ExpectedVersion, StoreError, StreamAppend, StreamRead};

use crate::helpers::{event, label, new_store};

#[tokio::test]
async fn versions_count_a_streams_events_from_one() {
    let (_db, store) = new_store().await;
    let result = store
        .append_to_stream(
            "order-1",
            ExpectedVersion::NoStream,
            vec![event("a"), event("b")],
        )
        .await
        .expect("append");
    assert!(result.written);
    assert_eq!(result.stream_version("order-1"), Some(2));
    let events = store
        .read_stream("order-1", StreamRead::default())
        .await
        .expect("read");
    let versions: Vec<i64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(store.stream_version("order-1").await.expect("version"), 2);
    assert_eq!(store.stream_version("order-2").await.expect("version"), 0);
}

#[tokio::test]
async fn each_expectation_accepts_and_refuses_what_it_should() {
    let (_db, store) = new_store().await;
    let append = |expected| store.append_to_stream("s-1", expected, vec![event("x")]);

    let refused = append(ExpectedVersion::StreamExists).await;
    assert!(matches!(
        refused,
        Err(StoreError::WrongExpectedVersion {
            actual: 0,
            expected: ExpectedVersion::StreamExists,
            ..
        })
    ));
    append(ExpectedVersion::NoStream)
        .await
        .expect("no stream on an empty stream");
    assert!(matches!(
        append(ExpectedVersion::NoStream).await,
        Err(StoreError::WrongExpectedVersion { actual: 1, .. })
    ));
    append(ExpectedVersion::StreamExists)
        .await
        .expect("stream exists");
    append(ExpectedVersion::Exact(2)).await.expect("exact 2");
    match append(ExpectedVersion::Exact(2)).await {
        Err(StoreError::WrongExpectedVersion {
            stream_id,
            expected,
            actual,
        }) => {
            assert_eq!(stream_id, "s-1");
            assert_eq!(expected, ExpectedVersion::Exact(2));
            assert_eq!(actual, 3);
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
    append(ExpectedVersion::Any).await.expect("any");
    assert_eq!(store.stream_version("s-1").await.expect("version"), 4);
}

#[tokio::test]
async fn the_conflict_error_names_expected_and_actual_versions() {
    let (_db, store) = new_store().await;
    store
        .append_to_stream("s-1", ExpectedVersion::Any, vec![event("a")])
        .await
        .expect("append");
    let error = store
        .append_to_stream("s-1", ExpectedVersion::Exact(7), vec![event("b")])
        .await
        .expect_err("conflict");
    assert_eq!(
        error.to_string(),
        "wrong expected version for stream s-1: expected version 7, actual version 1"
    );
}

#[tokio::test]
async fn re_appending_the_same_events_succeeds_and_writes_nothing() {
    let (_db, store) = new_store().await;
    let events = vec![event("a"), event("b")];
    let first = store
        .append_to_stream("s-1", ExpectedVersion::NoStream, events.clone())
        .await
        .expect("first append");
    // The same append again: its expectation no longer holds, but as a
    // repeat it must still succeed, reporting where the events are.
    let again = store
        .append_to_stream("s-1", ExpectedVersion::NoStream, events)
        .await
        .expect("repeat");
    assert!(!again.written);
    assert_eq!(again.events, first.events);
    assert_eq!(store.stream_version("s-1").await.expect("version"), 2);
}

#[tokio::test]
async fn re_appending_an_event_id_with_other_content_is_refused() {
    let (_db, store) = new_store().await;
    let original = event("a");
    store
        .append_to_stream("s-1", ExpectedVersion::Any, vec![original.clone()])
        .await
        .expect("append");
    let impostor = event("changed").with_id(original.event_id);
    let error = store
        .append_to_stream("s-1", ExpectedVersion::Any, vec![impostor])
        .await
        .expect_err("conflicting content");
    assert!(
        matches!(error, StoreError::EventIdConflict { event_id } if event_id == original.event_id),
        "{error:?}"
    );
    let same_id_other_stream = original.clone();
    let error = store
        .append_to_stream("s-2", ExpectedVersion::Any, vec![same_id_other_stream])
        .await
        .expect_err("same id in another stream");
    assert!(
        matches!(error, StoreError::EventIdConflict { .. }),
        "{error:?}"
    );
    let partial = store
        .append_to_stream("s-1", ExpectedVersion::Any, vec![original, event("new")])
        .await
        .expect_err("partial repeat");
    assert!(matches!(partial, StoreError::PartialRepeat), "{partial:?}");
    assert_eq!(store.stream_version("s-1").await.expect("version"), 1);
    assert_eq!(store.stream_version("s-2").await.expect("version"), 0);
}

#[tokio::test]
async fn a_multi_stream_append_writes_every_stream_or_none() {
    let (_db, store) = new_store().await;
    store
        .append_to_stream("inventory-b", ExpectedVersion::Any, vec![event("stock")])
        .await
        .expect("seed");
    let conflicting = [
        StreamAppend::new("reservation-1", ExpectedVersion::NoStream, vec![event("r")]),
        StreamAppend::new("inventory-a", ExpectedVersion::NoStream, vec![event("a")]),
        StreamAppend::new("inventory-b", ExpectedVersion::NoStream, vec![event("b")]),
    ];
    let error = store
        .append_to_streams(&conflicting)
        .await
        .expect_err("inventory-b is not new");
    assert!(
        matches!(&error, StoreError::WrongExpectedVersion { stream_id, actual: 1, .. } if stream_id == "inventory-b"),
        "{error:?}"
    );
    for stream in ["reservation-1", "inventory-a"] {
        assert_eq!(
            store.stream_version(stream).await.expect("version"),
            0,
            "{stream}"
        );
    }

    let fitting = [
        StreamAppend::new("reservation-1", ExpectedVersion::NoStream, vec![event("r")]),
        StreamAppend::new(
            "inventory-a",
            ExpectedVersion::NoStream,
            vec![event("a1"), event("a2")],
        ),
        StreamAppend::new("inventory-b", ExpectedVersion::Exact(1), vec![event("b")]),
    ];
    let result = store.append_to_streams(&fitting).await.expect("all fit");
    assert_eq!(result.stream_version("reservation-1"), Some(1));
    assert_eq!(result.stream_version("inventory-a"), Some(2));
    assert_eq!(result.stream_version("inventory-b"), Some(2));
    let transactions: std::collections::HashSet<i64> =
        result.events.iter().map(|e| e.transaction_id).collect();
    assert_eq!(transactions.len(), 1, "one append is one transaction");
}

#[tokio::test]
async fn malformed_appends_are_refused_before_reaching_the_database() {
    let (_db, store) = new_store().await;
    let twice = event("a");
    let cases = [
        vec![StreamAppend::new(
            "",
            ExpectedVersion::Any,
            vec![event("a")],
        )],
        vec![
            StreamAppend::new("s-1", ExpectedVersion::Any, vec![event("a")]),
            StreamAppend::new("s-1", ExpectedVersion::Any, vec![event("b")]),
        ],
        vec![StreamAppend::new(
            "s-1",
            ExpectedVersion::Any,
            vec![twice.clone(), twice],
        )],
        vec![StreamAppend::new(
            "s-1",
            ExpectedVersion::Exact(-1),
            vec![event("a")],
        )],
        vec![],
    ];
    for appends in cases {
        let outcome = store.append_to_streams(&appends).await;
        assert!(
            matches!(outcome, Err(StoreError::InvalidRequest(_))),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn the_database_refuses_to_update_delete_or_truncate_events() {
    let (_db, store) = new_store().await;
    store
        .append_to_stream("s-1", ExpectedVersion::Any, vec![event("a")])
        .await
        .expect("append");
    for statement in [
        "UPDATE events SET data = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let error = sqlx::query(statement)
            .execute(store.pool())
            .await
            .expect_err(statement);
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.to_string());
        assert_eq!(code.as_deref(), Some("OS010"), "{statement}: {error}");
    }
    let events = store
        .read_stream("s-1", StreamRead::default())
        .await
        .expect("read");
    assert_eq!(events.iter().map(label).collect::<Vec<_>>(), ["a"]);
}

#[tokio::test]
async fn the_service_role_may_only_insert_and_select_events() {
    let (_db, store) = new_store().await;
    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query("SET LOCAL ROLE orderstream_app")
        .execute(&mut *tx)
        .await
        .expect("set role");
    sqlx::query("SELECT count(*) FROM events")
        .execute(&mut *tx)
        .await
        .expect("select is allowed");
    let update = sqlx::query("UPDATE events SET data = '{}'")
        .execute(&mut *tx)
        .await;
    let code = update
        .expect_err("update must be refused")
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("42501"), "insufficient privilege");
}
