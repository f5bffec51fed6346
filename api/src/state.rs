//! [`AppState`]: what every handler shares.

use std::sync::Arc;

use commands::CommandExecutor;
use event_store::EventStore;
use metrics_exporter_prometheus::PrometheusHandle;

/// The API's configuration.
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    /// The bearer token of the admin endpoints; `None` (or empty) leaves
    /// them closed.
    pub admin_token: Option<String>,
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    executor: CommandExecutor,
    admin_token: Option<String>,
    metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(executor: CommandExecutor, config: ApiConfig) -> Self {
        AppState {
            inner: Arc::new(Inner {
                executor,
                admin_token: config.admin_token.filter(|token| !token.is_empty()),
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

    pub(crate) fn metrics(&self) -> &PrometheusHandle {
        &self.inner.metrics
    }
}
