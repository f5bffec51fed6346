//! The broker every test of a process shares, and the ways a test keeps
//! its exchanges and queues to itself on it.

use std::sync::Mutex;

use tokio::sync::OnceCell;

use crate::node::{add_vhost, Node};
use crate::{Broker, BrokerError};

/// The environment variable naming an existing broker for the tests
/// (`amqp://user:password@host:port/vhost`); unset, each test process
/// starts a private node.
pub const TEST_URL_ENV: &str = "ORDERSTREAM_TEST_AMQP_URL";

/// The broker the tests of this process share: `ORDERSTREAM_TEST_AMQP_URL`
/// when set, else a private node started on first use and stopped (its
/// directory removed) when the process exits.
///
/// Tests share it, so each keeps to its own names
/// ([`TestBroker::unique_name`]) or, better, to a vhost of its own
/// ([`TestBroker::fresh_vhost`]). A test that restarts or kills the broker
/// starts its own [`Broker`] instead.
#[derive(Debug)]
pub struct TestBroker {
    url: String,
    /// The private node, when we started one (for `rabbitmqctl`).
    node: Option<Node>,
    // Kept for as long as the process runs; the Mutex only makes the value
    // shareable across test threads (nothing locks it).
    _broker: Option<Mutex<Broker>>,
}

static SHARED: OnceCell<TestBroker> = OnceCell::const_new();

impl TestBroker {
    /// The shared broker, started on first use.
    pub async fn shared() -> Result<&'static TestBroker, BrokerError> {
        SHARED.get_or_try_init(start).await
    }

    /// The URL of the broker's default vhost (or of the vhost in
    /// `ORDERSTREAM_TEST_AMQP_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the broker is a node this process started (and so can
    /// administer); false for `ORDERSTREAM_TEST_AMQP_URL`.
    pub fn is_private(&self) -> bool {
        self.node.is_some()
    }

    /// `<prefix>-<12 random hex digits>`: an exchange or queue name no
    /// other test (or run) uses.
    pub fn unique_name(prefix: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}-{}", &id[..12])
    }

    /// A new, empty vhost for one test, with every permission for guest;
    /// returns its URL. Nothing another test declares is visible in it.
    ///
    /// On a broker from `ORDERSTREAM_TEST_AMQP_URL` (which this process
    /// cannot administer without the management plugin) this returns that
    /// URL unchanged: tests must therefore still use unique names.
    pub async fn fresh_vhost(&self) -> Result<String, BrokerError> {
        let Some(node) = &self.node else {
            return Ok(self.url.clone());
        };
        let vhost = Self::unique_name("os-test");
        add_vhost(node, &vhost).await?;
        Ok(format!(
            "amqp://guest:guest@127.0.0.1:{}/{vhost}",
            node.amqp_port
        ))
    }
}

async fn start() -> Result<TestBroker, BrokerError> {
    if let Ok(url) = std::env::var(TEST_URL_ENV) {
        return Ok(TestBroker {
            url,
            node: None,
            _broker: None,
        });
    }
    let broker = Broker::start_temporary().await?;
    Ok(TestBroker {
        url: broker.url(),
        node: Some(broker.node().clone()),
        _broker: Some(Mutex::new(broker)),
    })
}
