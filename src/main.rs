//! The `orderstream` binary: parses the command line, sets up telemetry,
//! finds or starts the database, and runs the chosen command. Logic lives
//! in the library crates; this file only wires them.

mod database;
mod telemetry;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "orderstream",
    version,
    about = "Event-sourced order fulfilment on PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service. Without DATABASE_URL, starts an embedded PostgreSQL
    /// under ./.orderstream/.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let database = database::Database::from_environment()
        .await
        .context("could not get a database")?;
    let outcome = match command {
        Command::Serve => serve(&database).await,
        Command::Migrate => database.migrate().await,
    };
    database.shut_down().await;
    outcome
}

async fn serve(database: &database::Database) -> anyhow::Result<()> {
    database.migrate().await?;
    let store = database.store();
    let head = store.head().await.context("could not read the event log")?;
    tracing::info!(
        database = %database.description(),
        head_position = head.position,
        "event store ready; press Ctrl-C to stop"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    Ok(())
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
