//! Set-up shared by the execution tests.

use aggregates::inventory::{Inventory, InventoryCommand};
use aggregates::order::OrderLine;
use aggregates::stream_id;
use aggregates::values::{Sku, Warehouse};
use commands::{CommandContext, CommandExecutor, ExecutorOptions};
use event_store::{EventStore, StoreOptions, MIGRATOR};
use test_support::TestDatabase;
use uuid::Uuid;

pub struct TestApp {
    pub _database: TestDatabase,
    pub store: EventStore,
    pub executor: CommandExecutor,
}

pub async fn new_app(options: ExecutorOptions) -> TestApp {
    let database = TestDatabase::new(&MIGRATOR).await.expect("test database");
    let store = EventStore::connect(
        database.url(),
        &StoreOptions {
            max_connections: 30,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("connect");
    TestApp {
        _database: database,
        executor: CommandExecutor::new(store.clone(), options),
        store,
    }
}

pub fn sku(name: &str) -> Sku {
    Sku::parse(name).expect("valid sku")
}

pub fn request() -> CommandContext {
    CommandContext::from_request(Uuid::new_v4(), "test")
}

pub fn line(name: &str, quantity: u32) -> OrderLine {
    OrderLine {
        sku: sku(name),
        quantity,
        unit_price: rust_decimal::Decimal::new(999, 2),
    }
}

/// Receives `quantity` of `name` into `warehouse`.
pub async fn receive(app: &TestApp, name: &str, warehouse: &str, quantity: u64) {
    let command = InventoryCommand::Receive {
        sku: sku(name),
        warehouse: Warehouse::parse(warehouse).expect("valid warehouse"),
        quantity,
    };
    app.executor
        .execute::<Inventory>(&stream_id::<Inventory>(name), &command, &request())
        .await
        .expect("receive");
}

/// (on hand, reserved, available) of `name`, as stored.
pub async fn stock_level(executor: &CommandExecutor, name: &str) -> (u64, u64, u64) {
    let level = executor
        .load::<Inventory>(&stream_id::<Inventory>(name))
        .await
        .expect("load")
        .state
        .level();
    (level.on_hand, level.reserved, level.available)
}
