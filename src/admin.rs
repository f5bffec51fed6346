//! The operator commands: subscriptions, projection rebuilds, audit of a
//! stream and stock lookups. Changes are requests that the process owning
//! the subscription (`orderstream serve`) carries out.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use event_store::{AsOf, EventStore, StreamRead};
use indicatif::{ProgressBar, ProgressStyle};
use projections::operations;
use projections::read_models::stock;
use projections::runtime::RequestOutcome;

#[derive(Subcommand)]
pub enum SubscriptionsCommand {
    /// Every subscription with its position, lag, parked events and state.
    List,
    /// Move a subscription's checkpoint: it re-delivers every event after
    /// the position.
    Reset {
        name: String,
        #[arg(long)]
        position: i64,
    },
    /// Replay a subscription's parked events (all of them, or with
    /// `--position` the one parked there, which must be the first parked
    /// event of its stream).
    ReplayParked {
        name: String,
        #[arg(long)]
        position: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum ProjectionsCommand {
    /// Rebuild a read model (orders, stock or payments) from the log, and
    /// wait until it is swapped in.
    Rebuild { name: String },
}

pub async fn subscriptions(
    store: &EventStore,
    command: SubscriptionsCommand,
) -> anyhow::Result<()> {
    match command {
        SubscriptionsCommand::List => {
            let statuses = operations::subscription_statuses(store).await?;
            println!(
                "{:<20} {:>10} {:>10} {:>8} {:>7}  STATE",
                "NAME", "POSITION", "HEAD", "LAG", "PARKED"
            );
            for status in statuses {
                println!(
                    "{:<20} {:>10} {:>10} {:>8} {:>7}  {}",
                    status.name,
                    status.position,
                    status.head,
                    status.lag,
                    status.parked,
                    status.state
                );
            }
        }
        SubscriptionsCommand::Reset { name, position } => {
            if position < 0 {
                bail!("--position must not be negative");
            }
            operations::request_reset(store, &name, position).await?;
            println!(
                "reset of {name} to position {position} requested{}",
                carried_out(store, &name).await?
            );
        }
        SubscriptionsCommand::ReplayParked {
            name,
            position: None,
        } => {
            operations::request_replay_parked(store, &name).await?;
            println!(
                "replay of {name}'s parked events requested{}",
                carried_out(store, &name).await?
            );
        }
        SubscriptionsCommand::ReplayParked {
            name,
            position: Some(position),
        } => {
            operations::request_replay_parked_event(store, &name, position).await?;
            println!(
                "replay of {name}'s event parked at {position} requested{}",
                carried_out(store, &name).await?
            );
        }
    }
    Ok(())
}

/// Who will carry out a request for `name`.
async fn carried_out(store: &EventStore, name: &str) -> anyhow::Result<&'static str> {
    Ok(if is_running(store, name).await? {
        "; the running owner carries it out"
    } else {
        "; no process runs it now: it is carried out when `orderstream serve` starts"
    })
}

async fn is_running(store: &EventStore, name: &str) -> anyhow::Result<bool> {
    Ok(operations::subscription_statuses(store)
        .await?
        .iter()
        .any(|status| status.name == name && status.state.is_active()))
}

pub async fn projections(store: &EventStore, command: ProjectionsCommand) -> anyhow::Result<()> {
    let ProjectionsCommand::Rebuild { name } = command;
    let request = operations::request_rebuild(store, &name).await?;
    if !is_running(store, &name).await? {
        println!(
            "rebuild of {name} requested; no process runs it now: it is carried out when \
             `orderstream serve` starts"
        );
        return Ok(());
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("rebuilding {msg} [{bar:40}] {pos}/{len} events ({eta})")
                .context("progress bar template")?
                .progress_chars("=> "),
        );
        bar.set_message(name.clone());
        Some(bar)
    } else {
        eprintln!("rebuilding {name}...");
        None
    };
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        ticker.tick().await;
        if let (Some(bar), Some((done, total))) =
            (&bar, operations::rebuild_progress(store, &name).await?)
        {
            bar.set_length(u64::try_from(total).unwrap_or(0));
            bar.set_position(u64::try_from(done).unwrap_or(0));
        }
        match operations::request_outcome(store, request).await? {
            None => {}
            Some(RequestOutcome::Done(_)) => break,
            Some(RequestOutcome::Failed(reason)) => {
                if let Some(bar) = bar {
                    bar.abandon();
                }
                bail!("rebuild of {name} failed: {reason}; the old read model stays in service");
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    println!("rebuild of {name} done");
    Ok(())
}

pub async fn audit(
    store: &EventStore,
    stream: &str,
    as_of: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let mut next = 1;
    let mut printed = 0;
    loop {
        let mut read = StreamRead::forward_from(next).limit(1000);
        read.as_of = as_of.map(AsOf::Instant);
        let page = store.read_stream(stream, read).await?;
        for event in &page {
            println!(
                "v{:<5} @{:<8} {} {:<28} {}",
                event.stream_version,
                event.position,
                event.recorded_at.to_rfc3339(),
                event.event_type,
                event.data
            );
            next = event.stream_version + 1;
        }
        printed += page.len();
        if page.len() < 1000 {
            break;
        }
    }
    if printed == 0 {
        match as_of {
            Some(at) => bail!("stream {stream:?} had no events at {}", at.to_rfc3339()),
            None => bail!("no stream {stream:?}"),
        }
    }
    Ok(())
}

pub async fn stock(store: &EventStore, sku: &str, at: Option<DateTime<Utc>>) -> anyhow::Result<()> {
    let view = match at {
        Some(at) => stock::stock_level_at(store.pool(), sku, at).await?,
        None => stock::stock_level(store.pool(), sku).await?,
    };
    let Some(view) = view else {
        bail!("no stock was ever recorded for SKU {sku:?}");
    };
    println!(
        "{}: on hand {}, reserved {}, available {} (position {})",
        view.sku, view.on_hand, view.reserved, view.available, view.position
    );
    for level in view.warehouses {
        println!(
            "  {:<16} on hand {:>6}, reserved {:>6}, available {:>6}",
            level.warehouse, level.on_hand, level.reserved, level.available
        );
    }
    Ok(())
}
