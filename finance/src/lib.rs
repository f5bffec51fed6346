//! Finance: a separate bounded context that books orderstream's integration
//! events (see `contracts`) into a double-entry journal in its own database.

pub mod consumer;
pub mod contracts;
pub mod dead_letters;
pub mod ledger;
pub mod metrics;
mod reconnect;
pub mod rules;
pub mod status;
pub mod topology;

/// Finance's schema, applied to its own database (`FINANCE_DATABASE_URL`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

use std::future::Future;
use std::net::SocketAddr;

use thiserror::Error;

pub use consumer::ConsumerSettings;
pub use http::{router, FinanceHttp};
pub use http_hardening::HttpLimits;
pub use status::ConsumerStatus;
pub use topology::Topology;

pub mod http;

/// Everything `orderstream finance` needs.
#[derive(Debug, Clone)]
pub struct FinanceConfig {
    /// Finance's own database (FINANCE_DATABASE_URL), never orderstream's.
    pub database_url: String,
    pub amqp_url: String,
    pub topology: Topology,
    pub prefetch: u16,
    pub listen: SocketAddr,
    pub admin_token: Option<String>,
    pub http: HttpLimits,
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error("finance database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("finance migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("finance HTTP listener on {listen}: {source}")]
    Listen {
        listen: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs Finance: migrates its database, consumes from the broker and serves
/// its HTTP until `shutdown` completes.
pub async fn run(
    config: FinanceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    // Before the consumer starts, so that its first counts are kept.
    crate::metrics::handle();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(5)
        .connect(&config.database_url)
        .await?;
    MIGRATOR.run(&pool).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| RunError::Listen {
            listen: config.listen,
            source,
        })?;
    let status = ConsumerStatus::default();
    let consumer = tokio::spawn(consumer::run(
        pool.clone(),
        ConsumerSettings {
            amqp_url: config.amqp_url.clone(),
            topology: config.topology.clone(),
            prefetch: config.prefetch,
            status: status.clone(),
        },
    ));
    tracing::info!(listen = %config.listen, "finance: serving HTTP");
    let state = FinanceHttp {
        pool,
        amqp_url: config.amqp_url,
        topology: config.topology,
        admin_token: config.admin_token,
        status,
        limits: config.http,
    };
    let served = serve(listener, state, shutdown)
        .await
        .map_err(|source| RunError::Listen {
            listen: config.listen,
            source,
        });
    // Dropping the consumer closes its connection; unacked deliveries go
    // back to the queue and the inbox makes their redelivery harmless.
    consumer.abort();
    served
}

/// Serves Finance's HTTP on `listener` with its limits (header-read
/// timeout, and after `shutdown` the requests in flight get at most the
/// shutdown grace period) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: FinanceHttp,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    http_hardening::serve(listener, router(state), &limits, shutdown).await
}
