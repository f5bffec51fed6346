//! [`AppState`]: what every handler shares, and [`ApiConfig`], the API's
//! settings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use commands::CommandExecutor;
use event_store::EventStore;
use http_hardening::{Hardening, HttpLimits, Policy};
use metrics_exporter_prometheus::PrometheusHandle;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The API's configuration. Every field has a default; the binary's
/// `Config` sets them from its command line and environment.
#[derive(Clone)]
pub struct ApiConfig {
    /// The bearer token of the admin endpoints; `None` (or empty) leaves
    /// them closed.
    pub admin_token: Option<String>,
    /// Longest a request may take from its head being read to its
    /// response head, body upload included; then 503.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request head, on a new
    /// connection or an idle kept-alive one; then the connection is closed.
    pub header_read_timeout: Duration,
    /// Requests handled at once (service endpoints apart); more are
    /// answered 503 with `Retry-After` at once instead of queueing.
    pub max_concurrent_requests: usize,
    /// After a shutdown signal, how long requests in flight may still
    /// take; connections still open then are dropped.
    pub shutdown_grace: Duration,
    /// How long an `Idempotency-Key` stands for its order; after that it
    /// is new again, and its row is deleted (see `idempotency.rs`).
    pub idempotency_ttl: Duration,
    /// Where Finance serves its HTTP (`http://host:port`), for the
    /// console's overview; `None`: the console says it is not configured.
    pub finance_url: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            admin_token: None,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_concurrent_requests: 256,
            shutdown_grace: Duration::from_secs(10),
            idempotency_ttl: crate::idempotency::DEFAULT_TTL,
            finance_url: None,
        }
    }
}

/// The token is a secret: never printed.
impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("request_timeout", &self.request_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("idempotency_ttl", &self.idempotency_ttl)
            .field("finance_url", &self.finance_url)
            .finish()
    }
}

/// The admin token as a SHA-256 digest: comparing digests in constant time
/// tells an attacker neither a matching prefix nor the token's length.
pub(crate) struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    fn new(token: &str) -> Self {
        AdminToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Whether `given` is the token.
    pub(crate) fn matches(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        bool::from(given.ct_eq(&self.digest))
    }
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    executor: CommandExecutor,
    admin_token: Option<AdminToken>,
    idempotency_ttl: Duration,
    finance_url: Option<String>,
    metrics: PrometheusHandle,
    hardening: Hardening,
}

/// Answered whatever the load: probes and scrapes must see an overloaded
/// server as alive, and they are cheap.
const UNLIMITED_PATHS: &[&str] = &[
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/asyncapi.json",
];

impl AppState {
    pub fn new(executor: CommandExecutor, config: ApiConfig) -> Self {
        AppState {
            inner: Arc::new(Inner {
                executor,
                admin_token: config
                    .admin_token
                    .filter(|token| !token.is_empty())
                    .map(|token| AdminToken::new(&token)),
                idempotency_ttl: config.idempotency_ttl,
                finance_url: config.finance_url,
                metrics: crate::metrics::handle(),
                hardening: Hardening::new(
                    HttpLimits {
                        request_timeout: config.request_timeout,
                        header_read_timeout: config.header_read_timeout,
                        max_concurrent_requests: config.max_concurrent_requests,
                        shutdown_grace: config.shutdown_grace,
                        body_limit: crate::extract::BODY_LIMIT,
                    },
                    Policy {
                        problem_types: crate::error::PROBLEM_TYPES,
                        unlimited_paths: UNLIMITED_PATHS,
                        timeout_advice: "a command may or may not have taken effect (retry \
                                         with the same Idempotency-Key, or read before \
                                         retrying)",
                        rejected_counter: Some(crate::metrics::REQUESTS_REJECTED),
                    },
                ),
            }),
        }
    }

    pub fn executor(&self) -> &CommandExecutor {
        &self.inner.executor
    }

    pub fn store(&self) -> &EventStore {
        self.inner.executor.store()
    }

    pub(crate) fn admin_token(&self) -> Option<&AdminToken> {
        self.inner.admin_token.as_ref()
    }

    pub(crate) fn finance_url(&self) -> Option<&str> {
        self.inner.finance_url.as_deref()
    }

    pub(crate) fn idempotency_ttl(&self) -> Duration {
        self.inner.idempotency_ttl
    }

    pub(crate) fn metrics(&self) -> &PrometheusHandle {
        &self.inner.metrics
    }

    pub(crate) fn hardening(&self) -> &Hardening {
        &self.inner.hardening
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_matches_only_itself() {
        let token = AdminToken::new("s3cret");
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cret-not"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches(""));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let config = ApiConfig {
            admin_token: Some("s3cret".into()),
            ..ApiConfig::default()
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
