//! [`AppState`]: what every handler shares.

use std::sync::Arc;
use std::time::Duration;

use commands::CommandExecutor;
use event_store::EventStore;
use metrics_exporter_prometheus::PrometheusHandle;

/// The API's configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The bearer token of the admin endpoints; `None` (or empty) leaves
    /// them closed.
    pub admin_token: Option<String>,
    /// How long an `Idempotency-Key` stands for its order; after that it
    /// is new again, and its row is deleted (see `idempotency.rs`).
    pub idempotency_ttl: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            admin_token: None,
            idempotency_ttl: crate::idempotency::DEFAULT_TTL,
        }
    }
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    executor: CommandExecutor,
    admin_token: Option<String>,
    idempotency_ttl: Duration,
    metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(executor: CommandExecutor, config: ApiConfig) -> Self {
        AppState {
            inner: Arc::new(Inner {
                executor,
                admin_token: config.admin_token.filter(|token| !token.is_empty()),
                idempotency_ttl: config.idempotency_ttl,
                metrics: crate::metrics::handle(),
            }),
        }
    }

    pub fn executor(&self) -> &CommandExecutor {
        &self.inner.executor
    }

    pub fn store(&self) -> &EventStore {
        self.inner.executor.store()
    }

    pub(crate) fn admin_token(&self) -> Option<&str> {
        self.inner.admin_token.as_deref()
    }

    pub(crate) fn idempotency_ttl(&self) -> Duration {
        self.inner.idempotency_ttl
    }

    pub(crate) fn metrics(&self) -> &PrometheusHandle {
        &self.inner.metrics
    }
}
