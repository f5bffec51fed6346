//! `orderstream serve`: the HTTP API and the subscription runtime in one
//! process (or either alone), stopped gracefully on Ctrl-C or SIGTERM.

use anyhow::Context;
use api::{ApiConfig, AppState};
use commands::{CommandExecutor, ExecutorOptions};
use event_store::EventStore;
use projections::runtime::{Fulfilment, RuntimeOptions, SubscriptionRuntime};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ORDERSTREAM_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// `auto` ships every reserved order at once; `manual` waits for
    /// POST /orders/{id}/ship.
    #[arg(long, env = "ORDERSTREAM_FULFILLMENT", default_value = "auto")]
    fulfillment: Fulfilment,
    /// Bearer token of the admin endpoints; unset leaves them closed.
    #[arg(long, env = "ORDERSTREAM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// How long an Idempotency-Key stands for its order (e.g. 24h, 30m);
    /// after that the key is new again and its row is deleted.
    #[arg(long, env = "ORDERSTREAM_IDEMPOTENCY_TTL", default_value = "24h", value_parser = crate::duration::parse)]
    idempotency_ttl: std::time::Duration,
    /// Serve HTTP only; subscriptions run in another process.
    #[arg(long, conflicts_with = "workers_only")]
    api_only: bool,
    /// Run the subscriptions only, with no HTTP listener.
    #[arg(long)]
    workers_only: bool,
}

pub async fn serve(store: &EventStore, database: &str, args: ServeArgs) -> anyhow::Result<()> {
    let executor = CommandExecutor::new(store.clone(), ExecutorOptions::default());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop.send(true);
    });
    // Bind first: a taken port fails before anything else starts.
    let listener = if args.workers_only {
        None
    } else {
        let listener = TcpListener::bind(&args.bind)
            .await
            .with_context(|| format!("could not listen on {} (ORDERSTREAM_BIND)", args.bind))?;
        Some(listener)
    };
    let runtime = (!args.api_only).then(|| {
        SubscriptionRuntime::start(
            executor.clone(),
            RuntimeOptions {
                fulfilment: args.fulfillment,
                ..RuntimeOptions::default()
            },
        )
    });
    let served = match listener {
        Some(listener) => {
            tracing::info!(
                address = %listener.local_addr().map_or_else(|_| args.bind.clone(), |a| a.to_string()),
                %database,
                fulfillment = ?args.fulfillment,
                subscriptions = runtime.is_some(),
                "serving; press Ctrl-C to stop"
            );
            let state = AppState::new(
                executor,
                ApiConfig {
                    admin_token: args.admin_token,
                    idempotency_ttl: args.idempotency_ttl,
                },
            );
            api::serve(listener, state, wait_for(stopped))
                .await
                .context("the HTTP server failed")
        }
        None => {
            tracing::info!(%database, fulfillment = ?args.fulfillment, "running subscriptions only; press Ctrl-C to stop");
            wait_for(stopped).await;
            Ok(())
        }
    };
    if let Some(runtime) = runtime {
        tracing::info!("stopping the subscriptions at a clean checkpoint");
        runtime.shutdown().await;
    }
    served
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone: stop too.
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
