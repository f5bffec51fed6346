//! What must hold once a fault test's load has stopped: every
//! acknowledged order final, its read model agreeing with its stream, stock
//! balancing with its events, every paid order captured exactly once,
//! nothing parked, no 5xx but 503.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use super::harness::{
    final_status, order_plan, subscriptions, wait_for, System, DRAIN_PATIENCE, RECEIVED,
};

/// Stock per SKU, folded from the inventory streams' events.
#[derive(Debug, Default)]
struct StockFromEvents {
    received: i64,
    committed: i64,
    adjusted: i64,
    reserved: i64,
    events: i64,
}

fn allocated(data: &Value) -> i64 {
    data["allocations"]
        .as_array()
        .expect("allocations")
        .iter()
        .map(|allocation| allocation["quantity"].as_i64().expect("quantity"))
        .sum()
}

/// Waits until every acknowledged order is final, every operator request
/// done and every subscription running with lag 0.
pub(super) async fn wait_until_settled(system: &System, acknowledged: &BTreeMap<usize, String>) {
    let pool = system.pool.clone();
    let http = system.http.clone();
    let logs_at = system.logs.dir.as_path();
    let settled = || async {
        let last = last_events(&pool).await;
        let all_final = acknowledged.values().all(|order_id| {
            last.get(&format!("order-{order_id}"))
                .is_some_and(|(event_type, _)| final_status(event_type).is_some())
        });
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM subscription_requests WHERE done_at IS NULL")
                .fetch_one(&pool)
                .await
                .unwrap_or(-1);
        all_final
            && pending == 0
            && subscriptions(&http)
                .await
                .iter()
                .all(|s| s["lag"] == 0 && s["state"] == "running")
    };
    let drained = Instant::now();
    wait_for(
        "every acknowledged order is final, every operator request done and every \
         subscription running with lag 0",
        DRAIN_PATIENCE,
        logs_at,
        settled,
    )
    .await;
    eprintln!(
        "faults: settled {:?} after the load stopped",
        drained.elapsed()
    );
}

/// Checks every outcome of the orders in `acknowledged` (see the module).
pub(super) async fn check_outcomes(system: &System, acknowledged: &BTreeMap<usize, String>) {
    let pool = system.pool.clone();
    let http = system.http.clone();
    // Every acknowledged order is final; its read model agrees with its
    // stream's last event; no order was placed that was not acknowledged.
    let last = last_events(&pool).await;
    assert_eq!(
        last.len(),
        acknowledged.len(),
        "order streams vs acknowledged orders"
    );
    let mut statuses: BTreeMap<usize, &'static str> = BTreeMap::new();
    for (i, order_id) in acknowledged {
        let (event_type, version) = &last[&format!("order-{order_id}")];
        let status = final_status(event_type).expect("final");
        let read_model = http
            .expect(Method::GET, &format!("/orders/{order_id}"), None, 200)
            .await;
        assert_eq!(
            read_model["status"], status,
            "order #{i} {order_id}: the stream ends with {event_type}; read model {read_model}"
        );
        assert_eq!(
            read_model["version"], *version,
            "order #{i} {order_id}: read model {read_model}"
        );
        let (_, method) = order_plan(*i);
        if method == "card_declined" {
            assert_ne!(status, "paid", "order #{i}: a declined card never pays");
        } else {
            assert_ne!(status, "payment_failed", "order #{i} ({method})");
        }
        statuses.insert(*i, status);
    }
    let count = |wanted: &str| statuses.values().filter(|s| **s == wanted).count();
    eprintln!(
        "faults: {} paid, {} rejected, {} payment_failed",
        count("paid"),
        count("rejected"),
        count("payment_failed")
    );
    assert!(count("paid") > 0, "some orders are paid");
    assert!(count("rejected") > 0, "some orders are rejected");
    assert!(count("payment_failed") > 0, "some orders fail payment");

    // Stock: on hand = received - shipped, nothing reserved, in the table,
    // the history and the API.
    let inventory_events = sqlx::query_as::<_, (String, String, Value)>(
        "SELECT stream_id, event_type, data FROM events WHERE stream_id LIKE 'inventory-%'",
    )
    .fetch_all(&pool)
    .await
    .expect("inventory events");
    let mut stock: BTreeMap<String, StockFromEvents> = BTreeMap::new();
    for (stream, event_type, data) in inventory_events {
        let sku = stream.trim_start_matches("inventory-").to_owned();
        let entry = stock.entry(sku).or_default();
        entry.events += 1;
        match event_type.as_str() {
            "StockReceived" => entry.received += data["quantity"].as_i64().expect("quantity"),
            "StockAdjusted" => entry.adjusted += data["delta"].as_i64().expect("delta"),
            "StockReserved" => entry.reserved += allocated(&data),
            "StockReleased" => entry.reserved -= allocated(&data),
            "StockCommitted" => {
                entry.reserved -= allocated(&data);
                entry.committed += allocated(&data);
            }
            other => panic!("unknown inventory event {other}"),
        }
    }
    assert_eq!(stock.len(), RECEIVED.len(), "SKUs: {stock:?}");
    for (sku, received) in RECEIVED {
        let events = &stock[sku];
        assert_eq!(events.received, received, "{sku}: {events:?}");
        assert_eq!(events.reserved, 0, "{sku}: open reservations: {events:?}");
        let on_hand = events.received + events.adjusted - events.committed;
        let (level_on_hand, level_reserved): (i64, i64) = sqlx::query_as(
            "SELECT sum(on_hand)::bigint, sum(reserved)::bigint FROM stock_levels WHERE sku = $1",
        )
        .bind(sku)
        .fetch_one(&pool)
        .await
        .expect("stock level");
        assert_eq!(
            (level_on_hand, level_reserved),
            (on_hand, 0),
            "{sku}: stock_levels (on hand, reserved) vs events {events:?}"
        );
        let api_level = http
            .expect(Method::GET, &format!("/inventory/{sku}"), None, 200)
            .await;
        assert_eq!(api_level["on_hand"], on_hand, "{sku}: {api_level}");
        assert_eq!(api_level["reserved"], 0, "{sku}: {api_level}");
        assert_eq!(api_level["available"], on_hand, "{sku}: {api_level}");
        let history_rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM stock_history WHERE sku = $1")
                .bind(sku)
                .fetch_one(&pool)
                .await
                .expect("stock history rows");
        assert_eq!(
            history_rows, events.events,
            "{sku}: one stock_history row per inventory event"
        );
        let (last_on_hand, last_reserved): (i64, i64) = sqlx::query_as(
            "SELECT on_hand, reserved FROM stock_history WHERE sku = $1 \
              ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .bind(sku)
        .fetch_one(&pool)
        .await
        .expect("last stock history row");
        assert_eq!(
            (last_on_hand, last_reserved),
            (on_hand, 0),
            "{sku}: the last stock_history row is the current level"
        );
    }

    // One capture per paid order, none for the others.
    let captured: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT stream_id, count(*) FROM events WHERE event_type = 'PaymentCaptured' \
          GROUP BY stream_id",
    )
    .fetch_all(&pool)
    .await
    .expect("captures")
    .into_iter()
    .collect();
    for (i, order_id) in acknowledged {
        let captures = captured
            .get(&format!("payment-{order_id}"))
            .copied()
            .unwrap_or(0);
        let expected = i64::from(statuses[i] == "paid");
        assert_eq!(
            captures, expected,
            "order #{i} {order_id} is {} with {captures} captures",
            statuses[i]
        );
    }
    assert_eq!(captured.len(), count("paid"), "captures: {captured:?}");

    // Nothing parked.
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM parked_events")
        .fetch_one(&pool)
        .await
        .expect("parked events");
    let listed = subscriptions(&http).await;
    assert_eq!(parked, 0, "parked events; subscriptions: {listed:?}");
    assert!(
        listed.iter().all(|s| s["parked"] == 0),
        "subscriptions: {listed:?}"
    );

    // No 5xx but 503.
    let server_errors = http.server_errors.lock().expect("server errors").clone();
    assert!(
        server_errors.is_empty(),
        "5xx answers other than 503: {server_errors:#?}"
    );
}

/// Each order stream's last event: its type and the stream's version.
async fn last_events(pool: &PgPool) -> HashMap<String, (String, i64)> {
    sqlx::query_as::<_, (String, String, i64)>(
        "SELECT DISTINCT ON (stream_id) stream_id, event_type, stream_version FROM events \
          WHERE stream_id LIKE 'order-%' ORDER BY stream_id, stream_version DESC",
    )
    .fetch_all(pool)
    .await
    .map(|rows| {
        rows.into_iter()
            .map(|(stream, event_type, version)| (stream, (event_type, version)))
            .collect()
    })
    .unwrap_or_default()
}
