//! The service run as the least-privilege role README describes: a login
//! role that is a member of `orderstream_app`, in a database migrated by
//! its owner. Everything the service does works (appends, subscriptions,
//! the choreography, `/ready`, rebuilds, resets); nothing that rewrites
//! history or changes the schema does.

use std::time::Duration;

use event_store::MIGRATOR;
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;
use test_support::TestDatabase;

use crate::helpers::{order_body, wait_until, Options, TestServer};

const PASSWORD: &str = "service-password";
const READ_MODELS: [&str; 3] = ["orders", "stock", "payments"];

/// A login role created exactly as README says, unique to this test (roles
/// belong to the cluster, shared by every test).
struct ServiceRole {
    name: String,
}

impl ServiceRole {
    async fn create(owner: &PgPool) -> ServiceRole {
        let name = format!(
            "orderstream_e2e_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        for statement in [
            format!("CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}' IN ROLE orderstream_app"),
            format!("ALTER ROLE {name} SET role = 'orderstream_app'"),
        ] {
            sqlx::query(&statement)
                .execute(owner)
                .await
                .expect("create the service role");
        }
        ServiceRole { name }
    }

    /// `owner_url` with this role's name and password in it.
    fn url(&self, owner_url: &str) -> String {
        let mut url = url::Url::parse(owner_url).expect("database URL");
        url.set_username(&self.name).expect("user in URL");
        url.set_password(Some(PASSWORD)).expect("password in URL");
        url.to_string()
    }

    /// Best effort: a role left behind by a failed test harms nothing.
    async fn drop(self, owner: &PgPool) {
        if let Err(error) = sqlx::query(&format!("DROP ROLE IF EXISTS {}", self.name))
            .execute(owner)
            .await
        {
            eprintln!("could not drop role {}: {error}", self.name);
        }
    }
}

/// Every read model's rows, in a fixed order.
async fn read_models(pool: &PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for (table, order) in [
        ("order_summaries", "order_id"),
        ("stock_levels", "sku, warehouse"),
        ("stock_history", "sku, at, transaction_id, position"),
        ("payments", "order_id"),
    ] {
        let table_rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM {table} t ORDER BY {order}"
        ))
        .fetch_all(pool)
        .await
        .expect("read model rows");
        rows.push(format!("{table}: {}", table_rows.join("\n")));
    }
    rows
}

async fn table_oids(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT oid::bigint FROM pg_class WHERE oid = ANY (ARRAY['order_summaries', \
         'stock_levels', 'stock_history', 'payments']::regclass[]) ORDER BY relname",
    )
    .fetch_all(pool)
    .await
    .expect("table oids")
}

async fn stock_changes(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM stock_history WHERE sku = 'SKU-1'")
        .fetch_one(pool)
        .await
        .expect("stock history")
}

/// Waits until every subscription has handled every committed event.
async fn wait_until_caught_up(server: &TestServer) {
    let last: (i64, i64) = sqlx::query_as(
        "SELECT transaction_id, position FROM events \
         ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .fetch_one(server.store.pool())
    .await
    .expect("last event");
    wait_until("every subscription is caught up", || async {
        let head = server.store.head().await.expect("head");
        if (head.transaction_id, head.position) < last {
            return false;
        }
        projections::operations::subscription_statuses(&server.store)
            .await
            .expect("statuses")
            .iter()
            .all(|status| status.lag == 0)
    })
    .await;
}

/// Waits until every request of `kind` is carried out; returns the outcomes.
async fn outcomes_of(server: &TestServer, kind: &str, expected: usize) -> Vec<String> {
    let query = "SELECT coalesce(outcome, '') FROM subscription_requests \
                 WHERE kind = $1 AND done_at IS NOT NULL ORDER BY id";
    wait_until(&format!("every {kind} is carried out"), || async {
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT FROM subscription_requests WHERE kind = $1 AND done_at IS NULL)",
        )
        .bind(kind)
        .fetch_one(server.store.pool())
        .await
        .expect("pending requests");
        !pending
    })
    .await;
    let outcomes: Vec<String> = sqlx::query_scalar(query)
        .bind(kind)
        .fetch_all(server.store.pool())
        .await
        .expect("outcomes");
    assert_eq!(outcomes.len(), expected, "{outcomes:?}");
    outcomes
}

/// The SQLSTATE `statement` fails with as the service role (panics if it
/// succeeds).
async fn refused(pool: &PgPool, statement: &str) -> String {
    match sqlx::query(statement).execute(pool).await {
        Ok(_) => panic!("the service role may run {statement:?}"),
        Err(sqlx::Error::Database(error)) => error.code().unwrap_or_default().into_owned(),
        Err(error) => panic!("{statement:?}: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_orders_rebuilds_and_resets_as_the_app_role_which_cannot_rewrite_history()
{
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    let owner = database.pool().clone();
    let role = ServiceRole::create(&owner).await;
    let url = role.url(database.url());
    let server = TestServer::start_on(database, &url, Options::auto()).await;
    let app = server.store.pool().clone();

    // The service really is the app role, and no superuser.
    let (current, session, superuser): (String, String, bool) = sqlx::query_as(
        "SELECT current_user::text, session_user::text, \
                (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)",
    )
    .fetch_one(&app)
    .await
    .expect("who am I");
    assert_eq!(
        (current.as_str(), session.as_str(), superuser),
        ("orderstream_app", role.name.as_str(), false)
    );

    // Readiness reads the applied migrations.
    server.get("/ready").await.expect(200);

    // The choreography: stock in, orders placed, reserved, paid.
    server.receive("SKU-1", 10).await;
    server.receive("SKU-2", 5).await;
    let mut orders = Vec::new();
    for lines in [
        vec![("SKU-1", 2)],
        vec![("SKU-1", 1), ("SKU-2", 2)],
        vec![("SKU-2", 1)],
    ] {
        orders.push(server.place(&lines, "card_ok").await);
    }
    let declined = server.place(&[("SKU-1", 1)], "card_declined").await;
    // An idempotent placement stores its key; its repeat finds it.
    let keyed = order_body(&[("SKU-2", 1)], "card_ok");
    let mut keyed_ids = Vec::new();
    for _ in 0..2 {
        let request = server
            .client
            .post(server.url("/orders"))
            .header("Idempotency-Key", "least-privilege-1")
            .json(&keyed);
        let answer = server.send(request).await;
        assert!(
            answer.status.is_success(),
            "{}: {}",
            answer.status,
            answer.text
        );
        keyed_ids.push(
            answer.body["order_id"]
                .as_str()
                .expect("order_id")
                .to_owned(),
        );
    }
    assert_eq!(keyed_ids[0], keyed_ids[1], "the repeat gets the same order");
    orders.push(keyed_ids[0].clone());
    for order_id in &orders {
        server.wait_for_status(order_id, "paid").await;
    }
    server.wait_for_status(&declined, "payment_failed").await;
    wait_until_caught_up(&server).await;
    let live = read_models(&app).await;
    let live_tables = table_oids(&app).await;

    // A rebuild of every read model, carried out by the service as the
    // app role: fresh tables swapped in.
    for name in READ_MODELS {
        server
            .admin(Method::POST, &format!("/projections/{name}/rebuild"), None)
            .await
            .expect(202);
    }
    let rebuilt = outcomes_of(&server, "rebuild", READ_MODELS.len()).await;
    assert!(
        rebuilt.iter().all(|outcome| outcome == "rebuilt"),
        "{rebuilt:?}"
    );
    wait_until_caught_up(&server).await;
    let new_tables = table_oids(&app).await;
    assert_eq!(new_tables.len(), 4);
    assert!(
        live_tables.iter().all(|oid| !new_tables.contains(oid)),
        "every read-model table is a new one: {live_tables:?} -> {new_tables:?}"
    );
    assert_eq!(read_models(&app).await, live, "the rebuilt read models");

    // A reset of every subscription to the start: redelivered, no-ops.
    let subscriptions = server
        .admin(Method::GET, "/subscriptions", None)
        .await
        .expect(200);
    let names: Vec<String> = subscriptions
        .body
        .as_array()
        .expect("subscriptions")
        .iter()
        .filter_map(|subscription| subscription["name"].as_str().map(str::to_owned))
        .collect();
    for name in &names {
        server
            .admin(
                Method::POST,
                &format!("/subscriptions/{name}/reset"),
                Some(&json!({"position": 0})),
            )
            .await
            .expect(202);
    }
    let reset = outcomes_of(&server, "reset", names.len()).await;
    assert!(
        reset.iter().all(|outcome| outcome == "reset to position 0"),
        "{reset:?}"
    );
    wait_until_caught_up(&server).await;
    assert_eq!(
        read_models(&app).await,
        live,
        "the read models after a reset"
    );

    // Replaying parked events (none here) is carried out too.
    server
        .admin(Method::POST, "/subscriptions/orders/parked/replay", None)
        .await
        .expect(202);
    let replayed = outcomes_of(&server, "replay_parked", 1).await;
    assert_eq!(replayed, ["replayed"]);
    server
        .admin(Method::GET, "/subscriptions/orders/parked", None)
        .await
        .expect(200);

    // The command line as the app role: a rebuild, waited for.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderstream"))
        .args(["projections", "rebuild", "stock"])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run orderstream projections rebuild");
    assert!(
        output.status.success(),
        "exit status {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    wait_until_caught_up(&server).await;
    assert_eq!(
        read_models(&app).await,
        live,
        "after the command line's rebuild"
    );

    // The swapped-in tables kept the service's privileges.
    let stock_changes_before = stock_changes(&app).await;
    server.receive("SKU-1", 1).await;
    let after = server.place(&[("SKU-1", 1)], "card_ok").await;
    server.wait_for_status(&after, "paid").await;
    wait_until_caught_up(&server).await;
    let (status, payment): (String, String) = sqlx::query_as(
        "SELECT o.status, p.status FROM order_summaries o JOIN payments p USING (order_id) \
         WHERE order_id = $1::uuid",
    )
    .bind(&after)
    .fetch_one(&app)
    .await
    .expect("the new order in the rebuilt read models");
    assert_eq!((status.as_str(), payment.as_str()), ("paid", "captured"));
    let stock_changes_after = stock_changes(&app).await;
    assert!(
        stock_changes_after >= stock_changes_before + 2,
        "the receipt and the new order's reservation are in the rebuilt stock history: \
         {stock_changes_after} rows, {stock_changes_before} before"
    );

    // History cannot be rewritten, the schema not changed.
    for statement in [
        "ALTER TABLE events DISABLE TRIGGER ALL",
        "UPDATE events SET event_type = 'Forged'",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE log_epoch SET transaction_id_offset = 0",
        "CREATE TABLE public.forged (id INT)",
        "CREATE SCHEMA forged",
        "DROP TABLE order_summaries",
        "INSERT INTO rebuildable_tables (table_name) VALUES ('events')",
    ] {
        assert_eq!(refused(&app, statement).await, "42501", "{statement}");
    }
    // The rebuild functions only touch listed read-model tables.
    assert_eq!(
        refused(&app, "SELECT rebuild_prepare('orders', ARRAY['events'])").await,
        "42501"
    );
    assert_eq!(
        refused(
            &app,
            "SELECT rebuild_swap('orders', ARRAY['subscription_checkpoints'])"
        )
        .await,
        "42501"
    );
    assert_eq!(
        refused(
            &app,
            "SELECT rebuild_prepare('x; DROP TABLE events', ARRAY['payments'])"
        )
        .await,
        "22023"
    );

    server.stop().await;
    // The pool's connections are gone once the server is: then the role
    // can go.
    tokio::time::timeout(Duration::from_secs(10), app.close())
        .await
        .expect("pool closes");
    role.drop(&owner).await;
}
