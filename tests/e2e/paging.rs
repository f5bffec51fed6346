//! Everything that lists is paged: `limit` (1-1000) and a `Link: rel="next"`
//! that walks every row once; and `/events?after=P`, for a position P from
//! a write response, misses no event, whatever the writers' concurrency.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use event_store::{ExpectedVersion, NewEvent};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{wait_until, Answer, Options, TestServer};

/// The URL of the `Link: <...>; rel="next"` header, if any.
fn next_link(answer: &Answer) -> Option<String> {
    let link = answer.headers.get("link")?.to_str().ok()?;
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    let url = link.strip_prefix('<')?.split_once('>')?.0;
    Some(url.to_owned())
}

/// Every page of a list from `path` on, following `Link` headers.
async fn pages(server: &TestServer, path: &str, admin: bool) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(path) = next {
        let answer = if admin {
            server.admin(Method::GET, &path, None).await
        } else {
            server.get(&path).await
        }
        .expect(200);
        next = next_link(&answer);
        pages.push(answer.body.as_array().cloned().expect("an array of rows"));
        assert!(pages.len() <= 100, "the links never end");
    }
    pages
}

fn sizes(pages: &[Vec<Value>]) -> Vec<usize> {
    pages.iter().map(Vec::len).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_pages_with_a_limit_and_a_next_link_over_every_row_once() {
    let server = TestServer::start(Options::auto()).await;
    for _ in 0..60 {
        server.receive("PAGED-1", 1).await;
    }
    wait_until("the stock history has all 60 receipts", || async {
        server
            .get("/inventory/PAGED-1/history")
            .await
            .body
            .as_array()
            .map(Vec::len)
            == Some(60)
    })
    .await;

    // Stock history: limit=50 is 50 rows, and the link reads on.
    let whole = server.get("/inventory/PAGED-1/history").await.body;
    let paged = pages(&server, "/inventory/PAGED-1/history?limit=50", false).await;
    assert_eq!(sizes(&paged), [50, 10]);
    assert_eq!(Value::from(paged.concat()), whole);
    let paged = pages(&server, "/inventory/PAGED-1/history?limit=7", false).await;
    assert_eq!(paged.len(), 9);
    assert_eq!(Value::from(paged.concat()), whole);
    // The link keeps the other parameters: a window stays a window.
    let from = whole[10]["at"].as_str().expect("at").replace('+', "%2B");
    let window = pages(
        &server,
        &format!("/inventory/PAGED-1/history?from={from}&limit=20"),
        false,
    )
    .await;
    assert_eq!(
        Value::from(window.concat()),
        Value::from(whole.as_array().expect("rows")[10..].to_vec())
    );

    // Order history and timeline.
    let order_id = server.place(&[("PAGED-1", 1)], "card_ok").await;
    server.wait_for_status(&order_id, "paid").await;
    // The timeline lists other streams' events only once the log shows
    // them (no older transaction anywhere in the cluster still runs: a
    // parallel test's CREATE DATABASE counts); page it once all ten are.
    let timeline = format!("/orders/{order_id}/timeline");
    wait_until("the whole flow is in the timeline", || async {
        server
            .get(&timeline)
            .await
            .expect(200)
            .body
            .as_array()
            .is_some_and(|events| events.len() == 10)
    })
    .await;
    for list in ["history", "timeline"] {
        let path = format!("/orders/{order_id}/{list}");
        let whole = server.get(&path).await.expect(200).body;
        let count = whole.as_array().map_or(0, Vec::len);
        assert!(count >= 3, "{list}: {whole}");
        let paged = pages(&server, &format!("{path}?limit=2"), false).await;
        assert_eq!(paged.len(), count.div_ceil(2), "{list}");
        assert_eq!(Value::from(paged.concat()), whole, "{list}");
    }

    // A stream: the body says the next page's from_version, and so does
    // the link, in either direction.
    let first = server
        .get("/streams/inventory-PAGED-1?limit=25")
        .await
        .expect(200);
    assert_eq!(first.body["events"].as_array().map(Vec::len), Some(25));
    assert_eq!(first.body["next_from_version"], 26);
    let link = next_link(&first).expect("a next link");
    assert!(link.contains("from_version=26"), "{link}");
    let backward = server
        .get("/streams/inventory-PAGED-1?direction=backward&from_version=30&limit=10")
        .await
        .expect(200);
    assert_eq!(backward.body["next_from_version"], 20);
    let last = server
        .get("/streams/inventory-PAGED-1?from_version=50")
        .await
        .expect(200);
    assert!(last.body["next_from_version"].is_null());
    assert!(next_link(&last).is_none());

    // Parked events: three undecodable events park three rows.
    for n in 1..=3 {
        server
            .store
            .append_to_stream(
                &format!("inventory-BROKEN-{n}"),
                ExpectedVersion::Any,
                vec![NewEvent::new("NotAnInventoryEvent", json!({}))],
            )
            .await
            .expect("append");
    }
    wait_until("the stock projection parked all three", || async {
        server
            .admin(Method::GET, "/subscriptions/stock/parked", None)
            .await
            .body
            .as_array()
            .map(Vec::len)
            == Some(3)
    })
    .await;
    let whole = server
        .admin(Method::GET, "/subscriptions/stock/parked", None)
        .await
        .body;
    let paged = pages(&server, "/subscriptions/stock/parked?limit=2", true).await;
    assert_eq!(sizes(&paged), [2, 1]);
    assert_eq!(Value::from(paged.concat()), whole);

    // Limits outside 1-1000 and foreign cursors are refused, naming why.
    for path in [
        "/inventory/PAGED-1/history?limit=1001".to_owned(),
        format!("/orders/{order_id}/history?limit=0"),
        format!("/orders/{order_id}/timeline?limit=5000"),
        "/streams/inventory-PAGED-1?limit=1001".to_owned(),
        "/events?limit=1001".to_owned(),
    ] {
        let problem = server.get(&path).await.expect_problem(400);
        let detail = problem.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("1000"), "{path}: {detail}");
    }
    for path in [
        "/inventory/PAGED-1/history?after=yesterday".to_owned(),
        format!("/orders/{order_id}/timeline?after=12"),
        "/events?after=1_2_3".to_owned(),
    ] {
        server.get(&path).await.expect_problem(400);
    }
    server
        .admin(Method::GET, "/subscriptions/stock/parked?limit=1001", None)
        .await
        .expect_problem(400);
    server.stop().await;
}

/// Reads `/events` from `after` to the end, following `next`.
async fn log_from(server: &TestServer, after: &str) -> Vec<i64> {
    let mut after = after.to_owned();
    let mut positions = Vec::new();
    loop {
        let page = server
            .get(&format!("/events?after={after}&limit=100"))
            .await
            .expect(200)
            .body;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return positions;
        }
        positions.extend(events.iter().filter_map(|event| event["position"].as_i64()));
        after = page["next"].as_str().expect("next is a string").to_owned();
    }
}

/// A writer whose transaction took its id before the others wrote, and
/// writes after them: its event sorts before theirs in the log but takes a
/// greater position (what a long multi-event append does under load;
/// concurrent HTTP writers alone make that rare on a small machine).
async fn slow_writer(server: &TestServer) -> sqlx::PgConnection {
    let mut connection = sqlx::PgConnection::connect(server.database_url())
        .await
        .expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut connection)
        .await
        .expect("begin");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut connection)
        .await
        .expect("take a transaction id");
    connection
}

async fn finish_slow_write(mut connection: sqlx::PgConnection, stream: &str) {
    sqlx::query(
        "INSERT INTO events (transaction_id, stream_id, stream_version, event_id, event_type, \
                             schema_version, data, metadata, recorded_at) \
         SELECT log_epoch_offset() + pg_current_xact_id()::text::bigint, $1, 1, $2, \
                'SlowWrite', 1, '{}', '{}', now()",
    )
    .bind(stream)
    .bind(uuid::Uuid::new_v4())
    .execute(&mut connection)
    .await
    .expect("insert");
    sqlx::query("COMMIT")
        .execute(&mut connection)
        .await
        .expect("commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_from_a_write_response_misses_no_event_under_concurrent_writers() {
    const WRITERS: usize = 24;
    const WRITES: usize = 8;
    const SLOW: usize = 3;
    let server = Arc::new(TestServer::start(Options::api_only()).await);
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        slow.push(slow_writer(&server).await);
    }
    let writers = (0..WRITERS).map(|writer| {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let mut positions = Vec::new();
            for _ in 0..WRITES {
                let answer = server.receive(&format!("RACE-{writer}"), 1).await;
                positions.push(answer.body["position"].as_i64().expect("position"));
            }
            positions
        })
    });
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.expect("writer"));
    }
    for (n, connection) in slow.into_iter().enumerate() {
        finish_slow_write(connection, &format!("slow-{n}")).await;
    }
    let total = WRITERS * WRITES + SLOW;
    wait_until("every write is visible in the log", || async {
        log_from(&server, "0").await.len() == total
    })
    .await;
    let log = log_from(&server, "0").await;
    let place: HashMap<i64, usize> = log.iter().enumerate().map(|(i, &p)| (p, i)).collect();
    let out_of_order = log.windows(2).filter(|pair| pair[0] > pair[1]).count();

    let mut missed = Vec::new();
    for &held in &written {
        let read = log_from(&server, &held.to_string()).await;
        let seen: BTreeSet<i64> = read.iter().copied().collect();
        assert_eq!(
            seen.len(),
            read.len(),
            "after={held}: an event twice: {read:?}"
        );
        let after_it = &log[place[&held] + 1..];
        let wanted: BTreeSet<i64> = log
            .iter()
            .copied()
            .filter(|position| *position > held)
            .chain(after_it.iter().copied())
            .collect();
        let missing: Vec<i64> = wanted.difference(&seen).copied().collect();
        if !missing.is_empty() {
            missed.push((held, missing));
        }
    }
    assert!(
        missed.is_empty(),
        "{} of {} positions missed events ({out_of_order} inversions in the log): {missed:?}",
        missed.len(),
        written.len()
    );
    match Arc::try_unwrap(server) {
        Ok(server) => server.stop().await,
        Err(_) => panic!("a writer still holds the server"),
    }
}
