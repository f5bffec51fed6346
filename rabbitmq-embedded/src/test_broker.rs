//! The broker every test of a process shares, and the ways a test keeps
//! its exchanges and queues to itself on it.

use tokio::sync::OnceCell;

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
    /// The private node, when we started one; kept for as long as the
    /// process runs.
    broker: Option<Broker>,
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
        self.broker.is_some()
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
        let Some(broker) = &self.broker else {
            return Ok(self.url.clone());
        };
        broker.add_vhost(&Self::unique_name("os-test")).await
    }
}

async fn start() -> Result<TestBroker, BrokerError> {
    if let Ok(url) = std::env::var(TEST_URL_ENV) {
        return Ok(TestBroker { url, broker: None });
    }
    let broker = Broker::start_temporary().await?;
    Ok(TestBroker {
        url: broker.url(),
        broker: Some(broker),
    })
}

#[cfg(test)]
mod tests {
    use super::TestBroker;

    fn assert_shareable<T: Send + Sync>() {}

    #[test]
    fn the_shared_broker_can_live_in_a_static() {
        assert_shareable::<TestBroker>();
        assert_shareable::<crate::Broker>();
    }

    #[test]
    fn unique_names_differ_and_keep_their_prefix() {
        let (first, second) = (
            TestBroker::unique_name("orders"),
            TestBroker::unique_name("orders"),
        );
        assert_ne!(first, second);
        assert!(first.starts_with("orders-"), "{first}");
    }
}
