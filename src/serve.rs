//! `orderstream serve`: the HTTP API and the subscription runtime in one
//! process (or either alone), stopped gracefully on Ctrl-C or SIGTERM.

use anyhow::Context;
use api::AppState;
use commands::CommandExecutor;
use event_store::EventStore;
use projections::runtime::{standard_subscribers, SubscriptionRuntime};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ServeConfig;

pub async fn serve(store: &EventStore, database: &str, args: ServeConfig) -> anyhow::Result<()> {
    let executor = CommandExecutor::new(store.clone(), args.executor.clone());
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
    let fulfilment = args.runtime.fulfilment;
    let runtime = (!args.api_only).then(|| {
        let mut subscribers = standard_subscribers(&executor, &args.runtime);
        match &args.relay {
            Some(config) => subscribers.push(relay::IntegrationRelay::subscriber(
                store.clone(),
                config.clone(),
            )),
            None => tracing::info!("{}", relay::OFF_MESSAGE),
        }
        SubscriptionRuntime::start_with(store.clone(), subscribers, args.runtime)
    });
    let served = match listener {
        Some(listener) => {
            tracing::info!(
                address = %listener.local_addr().map_or_else(|_| args.bind.clone(), |a| a.to_string()),
                %database,
                ?fulfilment,
                subscriptions = runtime.is_some(),
                "serving; press Ctrl-C to stop"
            );
            let state = AppState::new(executor, args.api.clone());
            api::serve(listener, state, wait_for(stopped))
                .await
                .context("the HTTP server failed")
        }
        None => {
            tracing::info!(%database, ?fulfilment, "running subscriptions only; press Ctrl-C to stop");
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
pub(crate) async fn shutdown_signal() {
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
