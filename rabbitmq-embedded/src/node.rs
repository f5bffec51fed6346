//! One node's private world: its directory, ports, name, cookie and
//! configuration, and the environment that points RabbitMQ (and
//! `rabbitmqctl`) at them instead of the machine's RabbitMQ.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::install::{command_as, filesystem, free_port, give_to, run, Installation};
use crate::BrokerError;

/// Everything a node of ours lives in. Nothing is shared with the
/// machine's RabbitMQ: not the data, logs, configuration, cookie, AMQP
/// port, distribution port, nor epmd (each node has its own on a free
/// port, bound to 127.0.0.1).
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub installation: Installation,
    pub user: Option<&'static str>,
    pub dir: PathBuf,
    pub name: String,
    pub amqp_port: u16,
    pub dist_port: u16,
    pub epmd_port: u16,
}

/// Only guest, only from loopback (RabbitMQ's default, stated so that no
/// one loosens it by accident): the node listens on 127.0.0.1 anyway. The
/// disk alarm threshold is RabbitMQ's default, made explicit because a
/// full test machine otherwise blocks publishers with no hint why.
const CONFIG: &str = "\
# Written by orderstream's rabbitmq-embedded for a private node.
loopback_users.guest = true
disk_free_limit.absolute = 50MB
log.console = true
log.console.level = info
";

impl Node {
    /// Picks a name and free ports for a node living in `dir`, and writes
    /// its files there (owned by the service user).
    pub fn create(
        installation: Installation,
        user: Option<&'static str>,
        dir: &Path,
    ) -> Result<Node, BrokerError> {
        let short = uuid::Uuid::new_v4().simple().to_string();
        let node = Node {
            installation,
            user,
            dir: dir.to_path_buf(),
            name: format!("os-{}@localhost", &short[..12]),
            amqp_port: free_port()?,
            dist_port: free_port()?,
            epmd_port: free_port()?,
        };
        write_file(&node.config_file(), CONFIG, 0o600)?;
        // No plugins: the management plugin would open its own HTTP port.
        write_file(&node.dir.join("enabled_plugins"), "[].\n", 0o600)?;
        // Keeps /etc/rabbitmq/rabbitmq-env.conf (the system node's name,
        // ports...) out of ours.
        write_file(&node.dir.join("rabbitmq-env.conf"), "", 0o600)?;
        // Erlang refuses a cookie others can read.
        let cookie = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        write_file(&node.dir.join(".erlang.cookie"), &cookie, 0o400)?;
        give_to(user, &node.dir)?;
        Ok(node)
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("rabbit.log")
    }

    /// Written by the node once it has booted: the Erlang VM's pid.
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("rabbit.pid")
    }

    fn config_file(&self) -> PathBuf {
        self.dir.join("rabbitmq.conf")
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    /// The environment of the node and of `rabbitmqctl` talking to it.
    pub fn env(&self) -> Vec<(String, String)> {
        let dir = |name: &str| self.dir.join(name).display().to_string();
        [
            // Erlang reads the cookie from $HOME/.erlang.cookie.
            ("HOME", self.dir.display().to_string()),
            ("RABBITMQ_NODENAME", self.name.clone()),
            ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT", self.amqp_port.to_string()),
            ("RABBITMQ_DIST_PORT", self.dist_port.to_string()),
            ("ERL_EPMD_PORT", self.epmd_port.to_string()),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
            ("RABBITMQ_MNESIA_BASE", dir("mnesia")),
            ("RABBITMQ_LOG_BASE", dir("log")),
            // The log goes to the node's stdout, which is our log file.
            ("RABBITMQ_LOGS", "-".into()),
            (
                "RABBITMQ_CONFIG_FILE",
                self.config_file().display().to_string(),
            ),
            ("RABBITMQ_ADVANCED_CONFIG_FILE", dir("advanced.config")),
            ("RABBITMQ_CONF_ENV_FILE", dir("rabbitmq-env.conf")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE", dir("enabled_plugins")),
            ("RABBITMQ_PLUGINS_EXPAND_DIR", dir("plugins-expand")),
            ("RABBITMQ_PID_FILE", self.pid_file().display().to_string()),
            (
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}".into(),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// Runs `rabbitmqctl <args>` against this node; returns its stdout.
    pub async fn ctl(&self, args: &[&str]) -> Result<String, BrokerError> {
        let mut command = command_as(self.user, &self.installation.ctl, &self.env());
        command.arg("-n").arg(&self.name).args(args);
        command.current_dir(&self.dir);
        let what = format!("rabbitmqctl {}", args.join(" "));
        tokio::task::spawn_blocking(move || run(command, &what))
            .await
            .map_err(|join| BrokerError::Spawn {
                command: "rabbitmqctl".into(),
                source: std::io::Error::other(join.to_string()),
            })?
    }
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), BrokerError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(filesystem(path))?;
    file.write_all(contents.as_bytes())
        .map_err(filesystem(path))?;
    drop(file);
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(filesystem(path))
}

/// Creates the vhost `name` and gives guest every permission on it.
pub(crate) async fn add_vhost(node: &Node, name: &str) -> Result<(), BrokerError> {
    node.ctl(&["add_vhost", name]).await?;
    node.ctl(&["set_permissions", "-p", name, "guest", ".*", ".*", ".*"])
        .await
        .map(drop)
}
