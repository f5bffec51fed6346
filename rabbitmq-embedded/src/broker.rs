//! Starting, restarting and stopping a private RabbitMQ node.

use std::path::{Path, PathBuf};

use crate::install::{filesystem, find_installation, service_user};
use crate::node::{add_vhost, Node};
use crate::watchdog::{signal, wait_until_exited, wait_until_ready, Watchdog};
use crate::BrokerError;

/// A running RabbitMQ node of this process, in a temporary directory of
/// its own, listening for AMQP on a free port of 127.0.0.1.
///
/// The node is tied to this process: it runs under a small shell watchdog
/// that stops it as soon as our end of its stdin closes, which happens when
/// the value is dropped or [`Broker::stop`]ped, or when this process dies
/// in any way, even by SIGKILL. The watchdog then removes the directory.
/// No node is left behind.
#[derive(Debug)]
pub struct Broker {
    node: Node,
    /// One watchdog per run of the node, oldest first; the newest runs it
    /// now. The first removes the directory when let go, so it is let go
    /// last.
    runs: Vec<Watchdog>,
    // Keeps the directory alive as long as the node.
    _temp_dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a node from the installed `rabbitmq-server` (see the crate
    /// documentation for where it is looked for) and returns once it
    /// accepts AMQP connections as guest.
    pub async fn start_temporary() -> Result<Broker, BrokerError> {
        let installation = find_installation()?;
        let user = service_user()?;
        let temp_dir = tempfile::Builder::new()
            .prefix("orderstream-rabbitmq-")
            .tempdir()
            .map_err(filesystem(&std::env::temp_dir()))?;
        let node = Node::create(installation, user, temp_dir.path())?;
        let watchdog = Watchdog::spawn(&node, true)?;
        let watchdog = wait_until_ready(&node, watchdog).await?;
        tracing::info!(node = %node.name, port = node.amqp_port, "private RabbitMQ node started");
        Ok(Broker {
            node,
            runs: vec![watchdog],
            _temp_dir: temp_dir,
        })
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`: the default vhost.
    pub fn url(&self) -> String {
        self.node.url()
    }

    /// The URL of `vhost` on this node (see [`Broker::add_vhost`]).
    pub fn vhost_url(&self, vhost: &str) -> String {
        format!(
            "amqp://guest:guest@127.0.0.1:{}/{}",
            self.node.amqp_port,
            percent_encode(vhost)
        )
    }

    pub fn port(&self) -> u16 {
        self.node.amqp_port
    }

    /// The Erlang node name, e.g. `os-1a2b3c4d5e6f@localhost`.
    pub fn node_name(&self) -> &str {
        &self.node.name
    }

    /// The node's log: start-up output and RabbitMQ's own log, every run.
    pub fn log_path(&self) -> PathBuf {
        self.node.log()
    }

    pub fn dir(&self) -> &Path {
        &self.node.dir
    }

    /// Runs `rabbitmqctl <args>` against this node (as its OS user, with
    /// its cookie and epmd); returns what it printed.
    pub async fn rabbitmqctl(&self, args: &[&str]) -> Result<String, BrokerError> {
        self.node.ctl(args).await
    }

    /// Creates `vhost` (no management plugin needed: `rabbitmqctl`) with
    /// every permission for guest, and returns its URL.
    pub async fn add_vhost(&self, vhost: &str) -> Result<String, BrokerError> {
        add_vhost(&self.node, vhost).await?;
        Ok(self.vhost_url(vhost))
    }

    /// Stops the node gracefully (SIGTERM: connections are closed, queues
    /// flushed) and starts it again on the same data, name and port, for
    /// broker-restart tests. Returns once it accepts connections again.
    pub async fn restart(&mut self) -> Result<(), BrokerError> {
        let Some(current) = self.runs.last_mut() else {
            return Err(not_running());
        };
        current.terminate()?;
        wait_until_exited(&self.node, current).await?;
        self.start_again().await
    }

    /// Kills the node's Erlang VM with SIGKILL (no shutdown at all, as if
    /// the machine had lost it) and starts it again on the same data, name
    /// and port; RabbitMQ recovers from what it had written. Returns once
    /// it accepts connections again.
    pub async fn kill_and_restart(&mut self) -> Result<(), BrokerError> {
        let pid_file = self.node.pid_file();
        let pid = std::fs::read_to_string(&pid_file)
            .map_err(filesystem(&pid_file))?
            .trim()
            .parse::<u32>()
            .map_err(|error| {
                filesystem(&pid_file)(std::io::Error::new(std::io::ErrorKind::InvalidData, error))
            })?;
        let Some(current) = self.runs.last_mut() else {
            return Err(not_running());
        };
        signal("KILL", pid)?;
        wait_until_exited(&self.node, current).await?;
        self.start_again().await
    }

    /// Starts the node again once its last run has exited.
    async fn start_again(&mut self) -> Result<(), BrokerError> {
        // A later run's watchdog has nothing left to do; the first one
        // stays, as it removes the directory at the very end.
        if self.runs.len() > 1 {
            if let Some(previous) = self.runs.pop() {
                previous.release();
            }
        }
        let watchdog = Watchdog::spawn(&self.node, false)?;
        let watchdog = wait_until_ready(&self.node, watchdog).await?;
        self.runs.push(watchdog);
        Ok(())
    }

    /// Stops the node gracefully and removes its directory; blocks until
    /// both are done.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        while let Some(watchdog) = self.runs.pop() {
            watchdog.release();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn not_running() -> BrokerError {
    BrokerError::CommandFailed {
        command: "restart".into(),
        output: "the node is not running".into(),
    }
}

/// `text` with every byte outside the URL-unreserved set percent-encoded,
/// for a vhost in a URL path (`/` is `%2f` there).
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02x}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn a_vhost_is_one_path_segment() {
        assert_eq!(percent_encode("/"), "%2f");
        assert_eq!(percent_encode("os-test_1"), "os-test_1");
        assert_eq!(percent_encode("a b/c"), "a%20b%2fc");
    }
}
