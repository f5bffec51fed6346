//! The process's configuration, read once at start-up from the command line
//! and the environment, passed down to what needs it, and printed (with
//! secrets hidden) as one log line.

use std::fmt;
use std::path::PathBuf;

use anyhow::bail;
use api::ApiConfig;
use commands::ExecutorOptions;
use event_store::StoreOptions;
use pg_embedded::ClusterOptions;
use projections::runtime::{Fulfilment, RuntimeOptions};
use relay::RelayConfig;

use crate::redact;

/// Where the embedded cluster keeps its data, relative to the working
/// directory; its socket directory and log sit beside it.
const EMBEDDED_DATA_DIR: &str = ".orderstream/pg";
const EMBEDDED_DATABASE: &str = "orderstream";

/// Settings every command takes.
#[derive(clap::Args)]
pub struct GlobalArgs {
    /// `text` for people, `json` (one object per line) for log shippers.
    #[arg(
        long,
        env = "ORDERSTREAM_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
    /// Longest a database statement may run before the server cancels it
    /// (e.g. 30s, 2m; 0 for no limit). Migrations run without it.
    #[arg(long, global = true, env = "ORDERSTREAM_STATEMENT_TIMEOUT", default_value = "30s", value_parser = crate::duration::parse)]
    pub statement_timeout: std::time::Duration,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings of `orderstream serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ORDERSTREAM_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// `auto` ships every reserved order at once; `manual` waits for
    /// POST /orders/{id}/ship.
    /// (Also read from `ORDERSTREAM_FULFILLMENT`, the spelling of earlier
    /// releases, when `ORDERSTREAM_FULFILMENT` is unset.)
    #[arg(long, alias = "fulfillment", env = "ORDERSTREAM_FULFILMENT")]
    fulfilment: Option<Fulfilment>,
    /// Bearer token of the admin endpoints; unset leaves them closed.
    #[arg(long, env = "ORDERSTREAM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Longest a request may take, body upload included; then 503.
    #[arg(long, env = "ORDERSTREAM_REQUEST_TIMEOUT", default_value = "30s", value_parser = crate::duration::parse_positive)]
    request_timeout: std::time::Duration,
    /// Longest a client may take to send a request head (or stay idle
    /// between requests); then the connection is closed.
    #[arg(long, env = "ORDERSTREAM_HEADER_TIMEOUT", default_value = "10s", value_parser = crate::duration::parse_positive)]
    header_timeout: std::time::Duration,
    /// Requests handled at once (service endpoints apart); more get 503
    /// with Retry-After at once.
    #[arg(long, env = "ORDERSTREAM_MAX_CONCURRENT_REQUESTS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_concurrent_requests: u32,
    /// After SIGTERM or Ctrl-C, how long requests in flight may still take;
    /// connections still open then are dropped.
    #[arg(long, env = "ORDERSTREAM_SHUTDOWN_GRACE", default_value = "10s", value_parser = crate::duration::parse_positive)]
    shutdown_grace: std::time::Duration,
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
    /// Split every reactor into this many members by stream (a consumer
    /// group), shared by the processes that run the subscriptions; give
    /// every such process the same number.
    #[arg(long, env = "ORDERSTREAM_REACTOR_PARTITIONS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(event_store::Partition::MAX_COUNT)))]
    reactor_partitions: u32,
    /// RabbitMQ to publish the integration events to
    /// (`amqp://user:password@host:5672/%2f`); unset, the relay is off.
    #[arg(long, env = "ORDERSTREAM_AMQP_URL", hide_env_values = true)]
    amqp_url: Option<String>,
    /// The durable topic exchange the relay publishes to (declared when missing).
    #[arg(long, env = "ORDERSTREAM_AMQP_EXCHANGE", default_value = relay::RelayConfig::DEFAULT_EXCHANGE)]
    amqp_exchange: String,
    /// Where `orderstream finance serve` answers HTTP (`http://host:port`),
    /// for the console's Finance row; unset, the row says so.
    #[arg(long, env = "ORDERSTREAM_FINANCE_URL")]
    finance_url: Option<String>,
}

/// Which PostgreSQL the process uses.
#[derive(Debug, Clone)]
pub enum DatabaseSource {
    /// `DATABASE_URL`: an existing server; never shown unredacted.
    Url(String),
    /// No `DATABASE_URL`: a private cluster under the working directory.
    Embedded {
        data_dir: PathBuf,
        database: String,
        cluster: ClusterOptions,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseSource,
    pub store: StoreOptions,
    pub log_format: LogFormat,
    /// Only for `serve`.
    pub serve: Option<ServeConfig>,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub bind: String,
    /// Timeouts, limits and the admin token of the HTTP API.
    pub api: ApiConfig,
    pub api_only: bool,
    pub workers_only: bool,
    pub executor: ExecutorOptions,
    pub runtime: RuntimeOptions,
    /// The integration relay's broker; `None`: the relay is off.
    pub relay: Option<RelayConfig>,
}

impl Config {
    /// Reads `DATABASE_URL` from the environment; everything else comes
    /// through `clap` (flags, or their environment variables).
    pub fn load(global: &GlobalArgs, serve: Option<&ServeArgs>) -> anyhow::Result<Config> {
        let database = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => DatabaseSource::Url(url),
            Ok(_) | Err(std::env::VarError::NotPresent) => DatabaseSource::Embedded {
                data_dir: PathBuf::from(EMBEDDED_DATA_DIR),
                database: EMBEDDED_DATABASE.to_owned(),
                cluster: ClusterOptions::default(),
            },
            Err(std::env::VarError::NotUnicode(_)) => bail!("DATABASE_URL is not valid UTF-8"),
        };
        let serve = serve
            .map(|args| -> anyhow::Result<ServeConfig> {
                Ok(ServeConfig {
                    bind: args.bind.clone(),
                    api: ApiConfig {
                        admin_token: args.admin_token.clone(),
                        idempotency_ttl: args.idempotency_ttl,
                        finance_url: finance_url(args.finance_url.as_deref())?,
                        request_timeout: args.request_timeout,
                        header_read_timeout: args.header_timeout,
                        max_concurrent_requests: args.max_concurrent_requests as usize,
                        shutdown_grace: args.shutdown_grace,
                    },
                    api_only: args.api_only,
                    workers_only: args.workers_only,
                    executor: ExecutorOptions::default(),
                    runtime: RuntimeOptions {
                        fulfilment: fulfilment(args.fulfilment)?,
                        reactor_partitions: args.reactor_partitions,
                        ..RuntimeOptions::default()
                    },
                    relay: args
                        .amqp_url
                        .as_deref()
                        .map(str::trim)
                        .filter(|url| !url.is_empty())
                        .map(|url| RelayConfig::parse(url, &args.amqp_exchange))
                        .transpose()
                        .map_err(|error| {
                            anyhow::anyhow!(
                                "ORDERSTREAM_AMQP_URL / ORDERSTREAM_AMQP_EXCHANGE: {error}"
                            )
                        })?,
                })
            })
            .transpose()?;
        Ok(Config {
            database,
            store: StoreOptions {
                statement_timeout: global.statement_timeout,
                ..StoreOptions::default()
            },
            log_format: global.log_format,
            serve,
        })
    }
}

/// The fulfilment mode: the flag or `ORDERSTREAM_FULFILMENT`, else the
/// environment variable of earlier releases, else `auto`.
fn fulfilment(given: Option<Fulfilment>) -> anyhow::Result<Fulfilment> {
    if let Some(mode) = given {
        return Ok(mode);
    }
    match std::env::var(LEGACY_FULFILMENT_VAR) {
        Ok(value) => value
            .parse()
            .map_err(|error| anyhow::anyhow!("{LEGACY_FULFILMENT_VAR}: {error}")),
        Err(_) => Ok(Fulfilment::default()),
    }
}

/// `ORDERSTREAM_FINANCE_URL`: blank is unset; anything but a plain
/// `http://host[:port]` is refused now rather than shown as "unreachable"
/// on the console later (the console's client speaks no TLS).
fn finance_url(given: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(given) = given.map(str::trim).filter(|url| !url.is_empty()) else {
        return Ok(None);
    };
    // The value is not repeated: it may carry a password.
    let refuse = |why: &str| anyhow::anyhow!("ORDERSTREAM_FINANCE_URL: {why}");
    let url = url::Url::parse(given).map_err(|error| refuse(&error.to_string()))?;
    if url.scheme() != "http" {
        return Err(refuse("not an http:// URL"));
    }
    if url.host_str().is_none() {
        return Err(refuse("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("Finance's status endpoints take no credentials"));
    }
    Ok(Some(given.trim_end_matches('/').to_owned()))
}

/// The environment variable's spelling before the project settled on
/// "fulfilment"; still read, so that existing deployments keep their mode.
const LEGACY_FULFILMENT_VAR: &str = "ORDERSTREAM_FULFILLMENT";

impl DatabaseSource {
    /// For logs: the URL with its secrets hidden, or where the embedded
    /// cluster lives.
    pub fn describe(&self) -> String {
        match self {
            DatabaseSource::Url(url) => redact::connection_string(url),
            DatabaseSource::Embedded { data_dir, .. } => {
                format!("embedded PostgreSQL in {}", data_dir.display())
            }
        }
    }
}

/// One line, secrets hidden: what the process runs with.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "database=\"{}\" max_connections={} statement_timeout={:?} log_format={:?}",
            self.database.describe(),
            self.store.max_connections,
            self.store.statement_timeout,
            self.log_format
        )?;
        if let Some(serve) = &self.serve {
            write!(
                f,
                " bind={} fulfilment={:?} admin_token={} api_only={} workers_only={} \
                 reactor_partitions={} request_timeout={:?} header_timeout={:?} max_concurrent_requests={} \
                 shutdown_grace={:?} idempotency_ttl={:?} finance_url={}",
                serve.bind,
                serve.runtime.fulfilment,
                if serve.api.admin_token.is_some() {
                    "set"
                } else {
                    "unset"
                },
                serve.api_only,
                serve.workers_only,
                serve.runtime.reactor_partitions,
                serve.api.request_timeout,
                serve.api.header_read_timeout,
                serve.api.max_concurrent_requests,
                serve.api.shutdown_grace,
                serve.api.idempotency_ttl,
                serve.api.finance_url.as_deref().unwrap_or("unset")
            )?;
            match &serve.relay {
                Some(relay) => write!(
                    f,
                    " amqp_url=\"{}\" amqp_exchange={}",
                    redact::broker_url(&relay.url),
                    relay.exchange
                )?,
                None => write!(f, " amqp_url=unset")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct ServeCommandLine {
        #[command(flatten)]
        global: GlobalArgs,
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn every_serve_setting_given_on_the_command_line_reaches_the_configuration() {
        use clap::Parser;
        let given = ServeCommandLine::try_parse_from([
            "orderstream",
            "--idempotency-ttl",
            "1h",
            "--statement-timeout",
            "5s",
            "--fulfilment",
            "manual",
            "--bind",
            "127.0.0.1:9999",
            "--amqp-url",
            "amqp://relay:pw@127.0.0.1:5672/%2f",
            "--amqp-exchange",
            "estate.events",
            "--finance-url",
            "http://127.0.0.1:8081/",
        ])
        .expect("a valid command line");
        let config = Config::load(&given.global, Some(&given.serve)).expect("a configuration");
        let serve = config.serve.expect("serve settings");
        assert_eq!(
            serve.api.idempotency_ttl,
            std::time::Duration::from_secs(3600)
        );
        assert_eq!(
            config.store.statement_timeout,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(serve.runtime.fulfilment, Fulfilment::Manual);
        assert_eq!(serve.bind, "127.0.0.1:9999");
        let relay = serve.relay.expect("the relay is on");
        assert_eq!(relay.url, "amqp://relay:pw@127.0.0.1:5672/%2f");
        assert_eq!(relay.exchange, "estate.events");
        assert_eq!(
            serve.api.finance_url.as_deref(),
            Some("http://127.0.0.1:8081")
        );
    }

    #[test]
    fn a_finance_url_that_is_not_plain_http_is_refused_at_start_up() {
        use clap::Parser;
        for url in [
            "https://finance:8081",
            "127.0.0.1:8081",
            "http://user:pw@finance:8081",
        ] {
            let given = ServeCommandLine::try_parse_from(["orderstream", "--finance-url", url])
                .expect("a command line");
            let error = Config::load(&given.global, Some(&given.serve)).expect_err(url);
            assert!(
                error.to_string().contains("ORDERSTREAM_FINANCE_URL"),
                "{error}"
            );
        }
        let blank = ServeCommandLine::try_parse_from(["orderstream", "--finance-url", " "])
            .expect("a command line");
        let config = Config::load(&blank.global, Some(&blank.serve)).expect("a configuration");
        let serve = config.serve.expect("serve");
        assert!(serve.api.finance_url.is_none(), "blank: unset");
        assert!(Config {
            serve: Some(serve),
            ..config
        }
        .to_string()
        .contains("finance_url=unset"));
    }

    #[test]
    fn a_broker_url_that_is_not_amqp_is_refused_at_start_up() {
        use clap::Parser;
        let given = ServeCommandLine::try_parse_from([
            "orderstream",
            "--amqp-url",
            "http://user:secret@mq:5672/",
        ])
        .expect("a command line");
        let error = Config::load(&given.global, Some(&given.serve)).expect_err("refused");
        assert!(
            error.to_string().contains("ORDERSTREAM_AMQP_URL"),
            "{error}"
        );
        assert!(!error.to_string().contains("secret"), "{error}");
        let unset = ServeCommandLine::try_parse_from(["orderstream", "--amqp-url", " "])
            .expect("a command line");
        let config = Config::load(&unset.global, Some(&unset.serve)).expect("a configuration");
        assert!(config.serve.expect("serve").relay.is_none(), "blank: off");
    }

    #[test]
    fn reactors_split_into_one_to_sixty_four_members() {
        use clap::Parser;
        let split = ServeCommandLine::try_parse_from(["orderstream", "--reactor-partitions", "4"])
            .expect("a command line");
        let config = Config::load(&split.global, Some(&split.serve)).expect("a configuration");
        assert_eq!(config.serve.expect("serve").runtime.reactor_partitions, 4);
        for refused in ["0", "65", "two"] {
            assert!(
                ServeCommandLine::try_parse_from(["orderstream", "--reactor-partitions", refused])
                    .is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_printed_configuration_hides_the_password_and_the_admin_token() {
        let config = Config {
            database: DatabaseSource::Url("postgres://app:hunter2@db/orders".into()),
            store: StoreOptions::default(),
            log_format: LogFormat::Json,
            serve: Some(ServeConfig {
                bind: "0.0.0.0:8080".into(),
                api: ApiConfig {
                    admin_token: Some("very-secret-token".into()),
                    ..ApiConfig::default()
                },
                api_only: false,
                workers_only: false,
                executor: ExecutorOptions::default(),
                runtime: RuntimeOptions::default(),
                relay: Some(RelayConfig::new(
                    "amqp://relay:broker-secret@mq:5672/%2f",
                    "orderstream.events",
                )),
            }),
        };
        let printed = config.to_string();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("very-secret-token"), "{printed}");
        assert!(
            printed.contains("postgres://app:***@db/orders"),
            "{printed}"
        );
        assert!(printed.contains("admin_token=set"), "{printed}");
        assert!(!printed.contains("broker-secret"), "{printed}");
        assert!(
            printed.contains("amqp://relay:***@mq:5672/%2f"),
            "{printed}"
        );
    }
}
