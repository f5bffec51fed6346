//! The `orderstream` binary: parses the command line, sets up telemetry,
//! finds or starts the database, and runs the chosen command. Logic lives
//! in the library crates; this file only wires them.

mod admin;
mod config;
mod database;
mod duration;
mod finance_command;
mod redact;
mod serve;
mod telemetry;

use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "orderstream",
    version,
    about = "Event-sourced order fulfilment on PostgreSQL"
)]
struct Cli {
    #[command(flatten)]
    global: config::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and the subscription runtime. Without DATABASE_URL,
    /// starts an embedded PostgreSQL under ./.orderstream/. Applies pending
    /// migrations when it may; a role without DDL rights needs
    /// `orderstream migrate` run by the owner first.
    Serve(config::ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect and steer subscriptions (carried out by the serving process).
    Subscriptions {
        #[command(subcommand)]
        command: admin::SubscriptionsCommand,
    },
    /// Rebuild read models.
    Projections {
        #[command(subcommand)]
        command: admin::ProjectionsCommand,
    },
    /// Print a stream's events.
    Audit {
        /// e.g. order-<uuid> or inventory-SKU-1
        stream: String,
        /// Only events recorded at or before this RFC 3339 instant.
        #[arg(long)]
        as_of: Option<DateTime<Utc>>,
    },
    /// The Finance service and its dead letters (its own database and
    /// broker queues; see README, "Finance").
    Finance {
        #[command(subcommand)]
        command: finance_command::FinanceCommand,
    },
    /// Print the AsyncAPI 3.0.0 document of the integration events (as
    /// served at /asyncapi.json) and exit. Needs no database.
    Asyncapi,
    /// Print a SKU's stock, now or at an instant.
    Stock {
        sku: String,
        /// RFC 3339 instant: the stock as it was then.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before configuration and telemetry: stdout is the document alone.
    if let Command::Asyncapi = cli.command {
        return print_asyncapi();
    }
    let serve_args = match &cli.command {
        Command::Serve(args) => Some(args),
        _ => None,
    };
    let config = match config::Config::load(&cli.global, serve_args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    // Only the services trace; one-shot commands only log.
    let service = match &cli.command {
        Command::Serve(_) => Some(telemetry::ORDERSTREAM),
        Command::Finance {
            command: finance_command::FinanceCommand::Serve(_),
        } => Some(telemetry::FINANCE),
        _ => None,
    };
    let telemetry = match telemetry::init(config.log_format, service) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%config, "configuration");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let log_format = config.log_format;
    let outcome = runtime.block_on(run(cli.command, config));
    // After the graceful shutdown, before exiting: the last spans.
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            match log_format {
                config::LogFormat::Text => eprintln!("error: {error:#}"),
                config::LogFormat::Json => tracing::error!("{error:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn print_asyncapi() -> ExitCode {
    let document = contracts::asyncapi_document(env!("CARGO_PKG_VERSION"));
    match serde_json::to_string_pretty(&document) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: could not encode the AsyncAPI document: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: config::Config) -> anyhow::Result<()> {
    // Finance is another bounded context: it never opens orderstream's
    // database (nor starts the embedded one).
    let command = match command {
        Command::Finance { command } => return finance_command::run(command).await,
        other => other,
    };
    let database = database::Database::open(&config)
        .await
        .context("could not get a database")?;
    let store = database.store().clone();
    let outcome = match command {
        Command::Serve(_) => match (database.ensure_migrated().await, config.serve) {
            (Ok(()), Some(serve)) => serve::serve(&store, &config.database.describe(), serve).await,
            (Ok(()), None) => Err(anyhow::anyhow!("serve without its settings")),
            (Err(error), _) => Err(error),
        },
        Command::Migrate => database.migrate().await,
        Command::Subscriptions { command } => admin::subscriptions(&store, command).await,
        Command::Projections { command } => admin::projections(&store, command).await,
        Command::Audit { stream, as_of } => admin::audit(&store, &stream, as_of).await,
        Command::Stock { sku, at } => admin::stock(&store, &sku, at).await,
        Command::Finance { .. } => Err(anyhow::anyhow!(
            "finance runs without orderstream's database"
        )),
        Command::Asyncapi => Err(anyhow::anyhow!("asyncapi needs no database")),
    };
    database.shut_down().await;
    outcome
}
