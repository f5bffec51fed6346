//! The subscription runtime: one worker per subscription, each catching up
//! from its checkpoint and then following the log live.
//!
//! - Ownership: a worker only runs while it holds its subscription's
//!   advisory lock (`ownership.rs`), so several processes can run the same
//!   runtime against one database: one owner per subscription, and another
//!   takes over within seconds when the owner dies. Every commit is fenced
//!   by the owner's checkpoint lease, so a stale owner commits nothing.
//! - Failures: a failing event is retried with exponential backoff and
//!   jitter, then parked (`parking.rs`); later events of its stream are
//!   parked behind it, other streams go on. An unreachable database or a
//!   lost race is waited out and never parks anything (`retry.rs`).
//! - Operator requests (replay parked, reset, rebuild) are rows the owner
//!   picks up (`requests.rs`), so they never race the live loop.

mod check_ins;
mod error;
mod fenced_commit;
mod group_registry;
mod ownership;
mod parking;
mod rebuild;
mod requests;
mod retry;
mod status;
mod worker;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use commands::CommandExecutor;
use event_store::{EventStore, RecordedEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::check_ins::CheckIns;
use crate::consumer_groups::Member;
use crate::gateway::{PaymentGateway, SimulatedGateway};
use crate::reactors::fulfilment::FulfilmentReactor;
use crate::reactors::inventory::InventoryReactor;
use crate::reactors::order::OrderReactor;
use crate::reactors::payment::PaymentReactor;
use crate::read_models::orders::OrderSummaries;
use crate::read_models::payments::Payments;
use crate::read_models::stock::StockLevels;
use crate::{Projection, Reactor};

pub use fenced_commit::FencedCommit;
pub(crate) use parking::{parked_at, PARKED_COUNT_SQL};
pub use requests::RequestOutcome;
pub(crate) use requests::{enqueue_request, outcome_of, RequestKind};
pub use status::SubscriptionState;

/// Whether reserved orders ship at once or wait for `POST .../ship`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fulfilment {
    #[default]
    Auto,
    Manual,
}

impl FromStr for Fulfilment {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "auto" => Ok(Fulfilment::Auto),
            "manual" => Ok(Fulfilment::Manual),
            other => Err(format!(
                "fulfilment mode must be auto or manual, got {other:?}"
            )),
        }
    }
}

/// A test hook: called after a batch's effects and before its checkpoint;
/// returning true makes the worker stop right there, as a crash would.
pub type CrashHook = Arc<dyn Fn(&str, &RecordedEvent) -> bool + Send + Sync>;

#[derive(Clone)]
pub struct RuntimeOptions {
    pub fulfilment: Fulfilment,
    pub gateway: Arc<dyn PaymentGateway>,
    /// Failures of the handler itself at one event before it is parked.
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// The longest pause between tries while the database is unreachable
    /// (or a race keeps being lost): such tries are not counted.
    pub outage_retry_max: Duration,
    /// Events handled per transaction (projections) or per checkpoint
    /// (reactors) while catching up.
    pub batch_size: usize,
    /// Events per transaction while a rebuild fills its fresh tables.
    pub rebuild_batch_size: i64,
    /// How often a worker without its lock tries to take it, and how often
    /// the runtime checks in all its owners at once: that each still has
    /// its lock and lease, its heartbeat, and operator requests from other
    /// processes (this process's own are carried out at once). Fencing,
    /// not this check, keeps a stale owner from committing.
    pub ownership_interval: Duration,
    /// Streams a reactor handles at once (events of one stream are always
    /// handled in order).
    pub reactor_concurrency: usize,
    /// Members every reactor is split into (a consumer group,
    /// `consumer_groups.rs`): 1 runs each reactor whole. Every process of
    /// one database should use the same number: processes of two layouts
    /// fence each other off in turn.
    pub reactor_partitions: u32,
    pub crash_before_checkpoint: Option<CrashHook>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            fulfilment: Fulfilment::Auto,
            gateway: Arc::new(SimulatedGateway),
            max_attempts: 5,
            retry_base: Duration::from_millis(20),
            retry_max: Duration::from_secs(2),
            outage_retry_max: Duration::from_secs(3),
            batch_size: 500,
            rebuild_batch_size: 2000,
            ownership_interval: Duration::from_secs(5),
            reactor_concurrency: 8,
            reactor_partitions: 1,
            crash_before_checkpoint: None,
        }
    }
}

impl std::fmt::Debug for RuntimeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeOptions")
            .field("fulfilment", &self.fulfilment)
            .field("max_attempts", &self.max_attempts)
            .field("batch_size", &self.batch_size)
            .field("reactor_partitions", &self.reactor_partitions)
            .finish_non_exhaustive()
    }
}

/// Something the runtime drives.
#[derive(Clone)]
pub enum Subscriber {
    Projection(Arc<dyn Projection>),
    Reactor(Arc<dyn Reactor>),
}

impl Subscriber {
    pub fn name(&self) -> &'static str {
        match self {
            Subscriber::Projection(projection) => projection.name(),
            Subscriber::Reactor(reactor) => reactor.name(),
        }
    }

    /// The one stream category it reads; `None` for several.
    pub fn category(&self) -> Option<&'static str> {
        match self {
            Subscriber::Projection(projection) => Some(projection.category()),
            Subscriber::Reactor(reactor) => reactor.category(),
        }
    }

    /// Whether the runtime splits it into members: reactors, when asked
    /// to; never a projection (a rebuild needs one owner of every stream).
    fn is_split(&self, options: &RuntimeOptions) -> bool {
        matches!(self, Subscriber::Reactor(_)) && options.reactor_partitions > 1
    }
}

/// Every subscription of orderstream: the read models and the reactors.
pub fn standard_subscribers(
    executor: &CommandExecutor,
    options: &RuntimeOptions,
) -> Vec<Subscriber> {
    let mut subscribers = vec![
        Subscriber::Projection(Arc::new(OrderSummaries)),
        Subscriber::Projection(Arc::new(StockLevels)),
        Subscriber::Projection(Arc::new(Payments)),
        Subscriber::Reactor(Arc::new(InventoryReactor {
            executor: executor.clone(),
        })),
        Subscriber::Reactor(Arc::new(OrderReactor {
            executor: executor.clone(),
        })),
        Subscriber::Reactor(Arc::new(PaymentReactor {
            executor: executor.clone(),
            gateway: options.gateway.clone(),
        })),
    ];
    if options.fulfilment == Fulfilment::Auto {
        subscribers.push(Subscriber::Reactor(Arc::new(FulfilmentReactor {
            executor: executor.clone(),
        })));
    }
    subscribers
}

pub struct SubscriptionRuntime;

impl SubscriptionRuntime {
    /// Starts every standard subscription.
    pub fn start(executor: CommandExecutor, options: RuntimeOptions) -> RuntimeHandle {
        let subscribers = standard_subscribers(&executor, &options);
        Self::start_with(executor.store().clone(), subscribers, options)
    }

    /// Starts the given subscribers (tests use their own).
    pub fn start_with(
        store: EventStore,
        subscribers: Vec<Subscriber>,
        options: RuntimeOptions,
    ) -> RuntimeHandle {
        let (stop, stopped) = watch::channel(false);
        let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let split: Vec<&'static str> = subscribers
            .iter()
            .filter(|subscriber| subscriber.is_split(&options))
            .map(Subscriber::name)
            .collect();
        let registry =
            (!split.is_empty()).then(|| group_registry::GroupRegistry::new(store.clone(), split));
        let (check_ins, check_in_task) = CheckIns::start(
            store.clone(),
            owner.clone(),
            options.ownership_interval,
            stopped.clone(),
        );
        let mut tasks = vec![check_in_task];
        for subscriber in subscribers {
            let count = if subscriber.is_split(&options) {
                options.reactor_partitions
            } else {
                1
            };
            for member in Member::layout(subscriber.name(), count) {
                let assignment = worker::Assignment {
                    registry: member.partition.and(registry.clone()),
                    subscriber: subscriber.clone(),
                    member,
                    owner: owner.clone(),
                    check_ins: check_ins.clone(),
                };
                tasks.push(tokio::spawn(worker::run(
                    store.clone(),
                    assignment,
                    options.clone(),
                    stopped.clone(),
                )));
            }
        }
        RuntimeHandle {
            stop,
            tasks,
            owner,
            registry,
        }
    }
}

/// Controls a running runtime.
pub struct RuntimeHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    owner: String,
    registry: Option<group_registry::GroupRegistry>,
}

impl RuntimeHandle {
    /// This runtime's owner id, as shown in subscription status.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Stops every worker at a clean checkpoint and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(registry) = self.registry {
            registry.leave().await;
        }
    }

    /// Stops every worker at once, wherever it is, as a crash would (tests).
    pub async fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(registry) = self.registry {
            registry.leave().await;
        }
    }
}
