//! The session settings of the store's connections: READ COMMITTED and a
//! statement timeout, whatever the database's own defaults say.

use std::time::{Duration, Instant};

use event_store::{EventStore, ExpectedVersion, FailureClass, StoreError, StoreOptions, MIGRATOR};
use sqlx::{Connection, PgConnection};
use test_support::TestDatabase;

use crate::helpers::event;

async fn show(store: &EventStore, setting: &str) -> String {
    sqlx::query_scalar(&format!("SHOW {setting}"))
        .fetch_one(store.pool())
        .await
        .expect("show")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeatable_read_database_default_still_gives_only_version_conflicts() {
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" SET default_transaction_isolation = 'repeatable read'",
        database.name()
    ))
    .execute(database.pool())
    .await
    .expect("alter database");
    // The database default bites a connection that does not override it.
    let mut plain = PgConnection::connect(database.url())
        .await
        .expect("connect");
    let default: String = sqlx::query_scalar("SHOW default_transaction_isolation")
        .fetch_one(&mut plain)
        .await
        .expect("show");
    assert_eq!(default, "repeatable read");
    plain.close().await.expect("close");

    let store = EventStore::connect(
        database.url(),
        &StoreOptions {
            max_connections: 24,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("connect");
    assert_eq!(
        show(&store, "default_transaction_isolation").await,
        "read committed"
    );

    const WRITERS: usize = 16;
    const EACH: usize = 10;
    let writers = (0..WRITERS).map(|writer| {
        let store = store.clone();
        tokio::spawn(async move {
            let (mut written, mut conflicts) = (0, 0);
            for round in 0..EACH {
                // Half the writers expect what they read, half expect nothing.
                let expected = if writer % 2 == 0 {
                    let version = store.stream_version("contended").await.expect("version");
                    ExpectedVersion::Exact(version)
                } else {
                    ExpectedVersion::Any
                };
                let label = format!("{writer}/{round}");
                match store
                    .append_to_stream("contended", expected, vec![event(&label)])
                    .await
                {
                    Ok(_) => written += 1,
                    Err(StoreError::WrongExpectedVersion { .. }) => conflicts += 1,
                    Err(other) => panic!("an append failed with {other:?}"),
                }
            }
            (written, conflicts)
        })
    });
    let mut written = 0;
    for outcome in futures::future::join_all(writers).await {
        let (ok, _conflicts) = outcome.expect("writer task");
        written += ok;
    }
    assert_eq!(
        store.stream_version("contended").await.expect("version"),
        written,
        "every successful append is one version"
    );
    // Every Any append succeeds.
    assert!(written >= (WRITERS / 2 * EACH) as i64);
}

#[tokio::test]
async fn a_statement_over_the_timeout_fails_with_a_typed_error_and_writes_nothing() {
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    let store = EventStore::connect(
        database.url(),
        &StoreOptions {
            statement_timeout: Duration::from_millis(300),
            ..StoreOptions::default()
        },
    )
    .await
    .expect("connect");
    assert_eq!(show(&store, "statement_timeout").await, "300ms");

    // Another session holds the stream's append lock (see append_events).
    let mut holder = PgConnection::connect(database.url())
        .await
        .expect("connect");
    sqlx::query("SELECT pg_advisory_lock(1, hashtext('held-1'))")
        .execute(&mut holder)
        .await
        .expect("lock");
    let started = Instant::now();
    let outcome = store
        .append_to_stream("held-1", ExpectedVersion::Any, vec![event("waits")])
        .await;
    let waited = started.elapsed();
    let error = outcome.expect_err("the append waits past the timeout");
    assert!(matches!(error, StoreError::Timeout(_)), "{error:?}");
    assert_eq!(error.class(), FailureClass::Contention);
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    // A plain slow query is the same typed error.
    let slow = sqlx::query("SELECT pg_sleep(5)")
        .execute(store.pool())
        .await
        .map_err(StoreError::from)
        .expect_err("cancelled");
    assert!(matches!(slow, StoreError::Timeout(_)), "{slow:?}");

    sqlx::query("SELECT pg_advisory_unlock(1, hashtext('held-1'))")
        .execute(&mut holder)
        .await
        .expect("unlock");
    assert_eq!(store.stream_version("held-1").await.expect("version"), 0);
    store
        .append_to_stream("held-1", ExpectedVersion::NoStream, vec![event("now")])
        .await
        .expect("the lock is free again");
}
