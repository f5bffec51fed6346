//! The operator console in a real browser (issue 13): each test serves
//! the debug binary on a database of its own, sets the scene through the
//! API (or injects a fault in the database), then runs one scenario script
//! of this directory in headless Chromium. The scripts save screenshots of
//! each page under `target/console-screenshots/`.
//!
//! Needs Debian's `chromium`, Node.js and `npm ci` in this directory;
//! `scripts/test.sh` installs them. Without them the tests fail saying so.

mod finance;
mod harness;

use std::time::Duration;

use harness::Served;
use serde_json::{json, Value};

fn order(customer: &str, sku: &str, quantity: i64) -> Value {
    json!({
        "customer_id": customer,
        "currency": "USD",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "9.99"}],
        "payment_method": "card_ok",
    })
}

async fn receive(served: &Served, sku: &str, quantity: i64, warehouse: &str) {
    let (status, body) = served
        .post(
            &format!("/inventory/{sku}/receipts"),
            json!({"quantity": quantity, "warehouse": warehouse}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_with_the_admin_token_opens_the_live_console_and_logging_out_closes_it() {
    let served = Served::start("auto").await;
    receive(&served, "LOGIN-1", 5, "main").await;
    served.browser("login.mjs", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_the_finance_consumer_up_with_no_dead_letters() {
    let client = reqwest::Client::new();
    let finance = finance::Finance::start(&client).await;
    let served = Served::start_with("auto", &[("ORDERSTREAM_FINANCE_URL", &finance.base)]).await;
    served
        .browser("finance.mjs", &[("FINANCE_URL", finance.base.clone())])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reaches_paid_on_its_page_without_reloading_and_its_swimlanes_show_every_event() {
    // Manual fulfilment: the order waits as `reserved` until the scenario
    // ships it, so the page is open before it moves on.
    let served = Served::start("manual").await;
    receive(&served, "ORDER-1", 10, "main").await;
    served.browser("order.mjs", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swimlanes_show_the_integration_messages_the_relay_published() {
    let served = Served::start("auto").await;
    receive(&served, "RELAY-1", 5, "main").await;
    let (status, body) = served.post("/orders", order("c-relay", "RELAY-1", 1)).await;
    assert_eq!(status, 201, "{body}");
    let order_id = body["order_id"].as_str().expect("order id").to_owned();
    served
        .wait_until("the order is paid", || async {
            served.get(&format!("/orders/{order_id}")).await["status"] == "paid"
        })
        .await;
    let swimlanes = || async {
        let answer = served
            .client
            .post(served.url("/console/session"))
            .json(&json!({"token": harness::TOKEN}))
            .send()
            .await
            .expect("log in");
        let cookie = answer.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .split(';')
            .next()
            .expect("name=value")
            .to_owned();
        served
            .client
            .get(served.url(&format!("/console/data/orders/{order_id}/swimlanes")))
            .header("cookie", cookie)
            .send()
            .await
            .expect("swimlanes")
            .text()
            .await
            .expect("svg")
    };
    // The relay never ran here: no lane.
    assert!(!swimlanes().await.contains("integration messages"));
    // A relay that has published everything (its checkpoint at the head):
    // each event's contracts, from the contracts' own mapping.
    let store = event_store::EventStore::from_pool(served.db.pool().clone());
    let head = store.head().await.expect("head");
    store
        .save_checkpoint(projections::catalogue::INTEGRATION_RELAY, head)
        .await
        .expect("checkpoint");
    let svg = swimlanes().await;
    for contract in [
        "order.placed.v1",
        "inventory.reserved.v1",
        "order.shipped.v1",
        "payment.captured.v1",
        "order.paid.v1",
        "stock.changed.v1",
    ] {
        assert!(svg.contains(contract), "{contract} in {svg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sku_chart_shows_what_the_temporal_query_answers_at_three_instants() {
    let served = Served::start("auto").await;
    // Changes a few milliseconds apart, in two warehouses, with a
    // reservation and a commitment by an order.
    let pause = || tokio::time::sleep(Duration::from_millis(30));
    receive(&served, "CHART-1", 10, "main").await;
    pause().await;
    receive(&served, "CHART-1", 6, "east").await;
    pause().await;
    let (status, body) = served
        .post(
            "/inventory/CHART-1/adjustments",
            json!({"quantity": -2, "reason": "damaged", "warehouse": "main"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    pause().await;
    let (status, body) = served.post("/orders", order("c-chart", "CHART-1", 3)).await;
    assert_eq!(status, 201, "{body}");
    let order_id = body["order_id"].as_str().expect("order id").to_owned();
    served
        .wait_until("the order is paid", || async {
            served.get(&format!("/orders/{order_id}")).await["status"] == "paid"
        })
        .await;
    pause().await;
    receive(&served, "CHART-1", 4, "east").await;
    served
        .browser("sku.mjs", &[("SKU", "CHART-1".into())])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_event_is_replayed_from_the_console_and_disappears() {
    let served = Served::start("auto").await;
    receive(&served, "PARK-1", 5, "main").await;
    // The injected fault: the orders projection cannot write this
    // customer's orders, so their first event fails until it is parked.
    sqlx::raw_sql(
        "CREATE FUNCTION console_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.customer_id = 'c-poison' THEN \
           RAISE EXCEPTION 'injected fault: customer c-poison is refused'; \
         END IF; RETURN NEW; END $$; \
         CREATE TRIGGER console_test_fault BEFORE INSERT OR UPDATE ON order_summaries \
           FOR EACH ROW EXECUTE FUNCTION console_test_fault();",
    )
    .execute(served.db.pool())
    .await
    .expect("inject the fault");
    let (status, body) = served.post("/orders", order("c-poison", "PARK-1", 1)).await;
    assert_eq!(status, 201, "{body}");
    let order_id = body["order_id"].as_str().expect("order id").to_owned();
    served
        .wait_until(
            "the orders projection parked the order's events",
            || async {
                served
                    .get("/subscriptions/orders/parked")
                    .await
                    .as_array()
                    .is_some_and(|parked| !parked.is_empty())
            },
        )
        .await;
    sqlx::raw_sql("DROP TRIGGER console_test_fault ON order_summaries")
        .execute(served.db.pool())
        .await
        .expect("remove the fault");
    served
        .browser("parked.mjs", &[("ORDER_ID", order_id.clone())])
        .await;
    assert_eq!(served.get("/subscriptions/orders/parked").await, json!([]));
    let summary = projections::read_models::orders::find_order(
        served.db.pool(),
        order_id.parse().expect("uuid"),
    )
    .await
    .expect("read the summary")
    .expect("the replayed event made the summary");
    assert_eq!(summary.customer_id, "c-poison");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_parked_event_is_replayed_alone_from_the_console_and_the_next_may_follow() {
    let served = Served::start("auto").await;
    receive(&served, "PARK-2", 5, "main").await;
    // The injected fault: the orders projection cannot write this
    // customer's order, so its events are parked, all behind the first.
    sqlx::raw_sql(
        "CREATE FUNCTION console_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.customer_id = 'c-poison' THEN \
           RAISE EXCEPTION 'injected fault: customer c-poison is refused'; \
         END IF; RETURN NEW; END $$; \
         CREATE TRIGGER console_test_fault BEFORE INSERT OR UPDATE ON order_summaries \
           FOR EACH ROW EXECUTE FUNCTION console_test_fault();",
    )
    .execute(served.db.pool())
    .await
    .expect("inject the fault");
    let (status, body) = served.post("/orders", order("c-poison", "PARK-2", 1)).await;
    assert_eq!(status, 201, "{body}");
    let order_id = body["order_id"].as_str().expect("order id").to_owned();
    // Placed, reserved and paid: three events of the order's stream.
    served
        .wait_until(
            "the orders projection parked three of the order's events",
            || async {
                served
                    .get("/subscriptions/orders/parked")
                    .await
                    .as_array()
                    .is_some_and(|parked| parked.len() >= 3)
            },
        )
        .await;
    sqlx::raw_sql("DROP TRIGGER console_test_fault ON order_summaries")
        .execute(served.db.pool())
        .await
        .expect("remove the fault");
    let before = served.get("/subscriptions/orders/parked").await;
    served
        .browser("parked-one.mjs", &[("ORDER_ID", order_id.clone())])
        .await;
    let after = served.get("/subscriptions/orders/parked").await;
    let count = |parked: &Value| parked.as_array().map_or(0, Vec::len);
    assert_eq!(count(&after), count(&before) - 1, "{after}");
    assert_eq!(after[0]["position"], before[1]["position"]);
    let summary = projections::read_models::orders::find_order(
        served.db.pool(),
        order_id.parse().expect("uuid"),
    )
    .await
    .expect("read the summary")
    .expect("the replayed OrderPlaced made the summary");
    assert_eq!(summary.customer_id, "c-poison");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_started_from_the_console_shows_progress_and_completes() {
    let served = Served::start("auto").await;
    // Enough inventory events that the rebuild of `stock` takes ten
    // of its batches (2000 events each), appended straight to the store:
    // the events the domain would write for receipts.
    let store = event_store::EventStore::from_pool(served.db.pool().clone());
    for stream in 0..REBUILD_STREAMS {
        let sku = format!("REBUILD-{stream}");
        let events = (0..REBUILD_EVENTS_PER_STREAM)
            .map(|_| {
                event_store::NewEvent::new(
                    "StockReceived",
                    json!({"sku": sku, "warehouse": "main", "quantity": 1}),
                )
            })
            .collect();
        store
            .append_to_stream(
                &format!("inventory-{sku}"),
                event_store::ExpectedVersion::Any,
                events,
            )
            .await
            .expect("append receipts");
    }
    served
        .wait_until("stock has caught up", || async {
            served
                .get("/subscriptions")
                .await
                .as_array()
                .is_some_and(|rows| rows.iter().all(|row| row["lag"] == 0))
        })
        .await;
    served.browser("rebuild.mjs", &[]).await;
    let subscriptions = served.get("/subscriptions").await;
    let stock = subscriptions
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["name"] == "stock"))
        .expect("stock");
    assert_eq!(stock["state"], "running", "{subscriptions}");
}

const REBUILD_STREAMS: usize = 40;
const REBUILD_EVENTS_PER_STREAM: usize = 500;
