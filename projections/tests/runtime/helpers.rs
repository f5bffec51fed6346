//! Set-up shared by the runtime tests: a database, an executor, a running
//! runtime, and ways to drive orders and wait for outcomes.

use std::future::Future;
use std::time::Duration;

use aggregates::inventory::{Inventory, InventoryCommand};
use aggregates::order::{Order, OrderCommand, OrderLine, OrderStatus, PlaceOrder};
use aggregates::stream_id;
use aggregates::values::{Currency, PaymentMethod, Sku, Warehouse};
use commands::{CommandContext, CommandExecutor, ExecutorOptions};
use event_store::{EventStore, StoreOptions, MIGRATOR};
use projections::runtime::{RuntimeHandle, RuntimeOptions, SubscriptionRuntime, SubscriptionState};
use test_support::TestDatabase;
use uuid::Uuid;

pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct TestApp {
    #[allow(dead_code)] // keeps the database alive; some tests use its URL
    pub database: TestDatabase,
    pub store: EventStore,
    pub executor: CommandExecutor,
}

impl TestApp {
    pub async fn new() -> TestApp {
        let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
        let store = EventStore::connect(
            database.url(),
            &StoreOptions {
                max_connections: 40,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("connect");
        let executor = CommandExecutor::new(store.clone(), ExecutorOptions::default());
        TestApp {
            database,
            store,
            executor,
        }
    }

    /// Options that make tests quick: short pauses between tries.
    pub fn fast_options() -> RuntimeOptions {
        RuntimeOptions {
            retry_base: Duration::from_millis(5),
            retry_max: Duration::from_millis(50),
            ownership_interval: Duration::from_millis(200),
            ..RuntimeOptions::default()
        }
    }

    pub fn start(&self, options: RuntimeOptions) -> RuntimeHandle {
        SubscriptionRuntime::start(self.executor.clone(), options)
    }

    pub async fn receive(&self, sku: &str, warehouse: &str, quantity: u64) {
        let command = InventoryCommand::Receive {
            sku: Sku::parse(sku).expect("sku"),
            warehouse: Warehouse::parse(warehouse).expect("warehouse"),
            quantity,
        };
        self.executor
            .execute::<Inventory>(&stream_id::<Inventory>(sku), &command, &request())
            .await
            .expect("receive");
    }

    pub async fn place(&self, lines: &[(&str, u32)], method: PaymentMethod) -> Uuid {
        let order_id = Uuid::new_v4();
        let command = OrderCommand::Place(PlaceOrder {
            order_id,
            customer_id: "c-1".into(),
            currency: Currency::Usd,
            lines: lines
                .iter()
                .map(|(sku, quantity)| OrderLine {
                    sku: Sku::parse(*sku).expect("sku"),
                    quantity: *quantity,
                    unit_price: rust_decimal::Decimal::new(1250, 2),
                })
                .collect(),
            payment_method: method,
        });
        self.executor
            .execute::<Order>(&stream_id::<Order>(order_id), &command, &request())
            .await
            .expect("place");
        order_id
    }

    pub async fn status(&self, order_id: Uuid) -> Option<OrderStatus> {
        self.executor
            .load::<Order>(&stream_id::<Order>(order_id))
            .await
            .expect("load order")
            .state
            .status()
    }

    pub async fn wait_for_status(&self, order_id: Uuid, expected: OrderStatus) {
        wait_until(&format!("order {order_id} is {expected:?}"), || async {
            self.status(order_id).await == Some(expected)
        })
        .await;
    }

    /// (on hand, reserved, available) by folding the SKU's stream.
    pub async fn stock(&self, sku: &str) -> (u64, u64, u64) {
        let level = self
            .executor
            .load::<Inventory>(&stream_id::<Inventory>(sku))
            .await
            .expect("load inventory")
            .state
            .level();
        (level.on_hand, level.reserved, level.available)
    }

    pub async fn count_events(&self, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
            .bind(event_type)
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }

    /// Waits until every subscription has handled every visible event.
    pub async fn wait_until_idle(&self) {
        // The last event committed so far. The visible head (below every
        // open transaction) can trail it for a moment, and a lag measured
        // against such a head would say "caught up" too early.
        let last: Option<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id, position FROM events \
             ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .fetch_optional(self.store.pool())
        .await
        .expect("last event");
        wait_until("every subscription is caught up", || async {
            let head = self.store.head().await.expect("head");
            if last.is_some_and(|last| (head.transaction_id, head.position) < last) {
                return false;
            }
            let statuses = projections::operations::subscription_statuses(&self.store)
                .await
                .expect("statuses");
            statuses
                .iter()
                .all(|status| status.lag == 0 || status.state == SubscriptionState::Stopped)
                && statuses
                    .iter()
                    .any(|status| status.state != SubscriptionState::Stopped)
        })
        .await;
    }
}

pub fn request() -> CommandContext {
    CommandContext::from_request(Uuid::new_v4(), "test")
}

/// [`test_support::wait_until`] with these tests' [`PATIENCE`].
pub async fn wait_until<Fut>(what: &str, condition: impl FnMut() -> Fut)
where
    Fut: Future<Output = bool>,
{
    test_support::wait_until(PATIENCE, what, condition).await;
}
