//! Running `rabbitmq-server` under a small shell watchdog tied to this
//! process, waiting until it accepts AMQP connections, and noticing when
//! it has exited.

use crate::client::connect_amqp;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{mpsc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::install::{command_as, filesystem, log_tail};
use crate::node::Node;
use crate::BrokerError;

/// Booting a node takes a few seconds; a loaded CI machine may need more.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// A graceful stop flushes queues to disk; give it as long as a start.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of the node's log quoted in an error.
const TAIL_LINES: usize = 30;
/// One AMQP connection attempt, so a half-open listener cannot eat the deadline.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The watchdog script. It runs `rabbitmq-server` in the background with
/// its output appended to the log, holds our end of its stdin on fd 3, and:
/// - prints `started <pid>` (the server script's pid, which turns SIGTERM
///   into a graceful shutdown of the node);
/// - stops the node (SIGTERM) when stdin reaches end-of-file, i.e. when this
///   process lets go of it, even by dying (SIGKILL included);
/// - prints `exited <status>` as soon as the node has exited, for whatever
///   reason, so a node that fails at start is noticed at once;
/// - then waits for end-of-file (the owner may start the node again on the
///   same directory) and, for a temporary node, stops the node's private
///   epmd and removes the directory.
///
/// SIGPIPE is ignored so that the line to a dead owner cannot kill the
/// script before the clean-up.
const SCRIPT: &str = "trap '' PIPE; exec 3<&0; \
    \"$0\" <&- 3<&- >>\"$1\" 2>&1 & pid=$!; echo \"started $pid\"; \
    { read -r _ <&3 || true; kill -TERM \"$pid\" 2>/dev/null; } & reader=$!; \
    wait \"$pid\"; status=$?; kill \"$reader\" 2>/dev/null; \
    echo \"exited $status\"; read -r _ <&3 || true";
const CLEAN_UP: &str = "; epmd -port \"$ERL_EPMD_PORT\" -kill >/dev/null 2>&1; rm -rf \"$2\"";

/// One run of the node under its watchdog.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    /// The `rabbitmq-server` script's pid.
    server_pid: Option<u32>,
    /// In a Mutex only so that a `Broker` is `Sync` (shareable by the
    /// tests of a process); every use has `&mut self`.
    lines: Mutex<mpsc::Receiver<String>>,
    exited: bool,
    /// Where this run's part of the log starts.
    log_offset: u64,
}

impl Watchdog {
    /// Starts the node; with `clean_up`, the watchdog removes the node's
    /// directory once this process lets go of it.
    pub fn spawn(node: &Node, clean_up: bool) -> Result<Watchdog, BrokerError> {
        let log = node.log();
        let log_offset = std::fs::metadata(&log).map_or(0, |meta| meta.len());
        let mut script = String::from(SCRIPT);
        if clean_up {
            script.push_str(CLEAN_UP);
        }
        let mut command = command_as(node.user, Path::new("/bin/sh"), &node.env());
        command
            .arg("-c")
            .arg(&script)
            .arg(&node.installation.server)
            .arg(&log)
            .arg(&node.dir)
            .current_dir(&node.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().map_err(|source| BrokerError::Spawn {
            command: "rabbitmq-server".into(),
            source,
        })?;
        let Some(stdout) = child.stdout.take() else {
            return Err(filesystem(&log)(std::io::Error::other(
                "the watchdog has no stdout",
            )));
        };
        let (sender, lines) = mpsc::channel();
        // Lives as long as the watchdog's stdout: until the watchdog exits.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        Ok(Watchdog {
            child,
            server_pid: None,
            lines: Mutex::new(lines),
            exited: false,
            log_offset,
        })
    }

    /// Reads what the watchdog said so far; true once the node has exited.
    pub fn node_exited(&mut self) -> bool {
        let lines = self.lines.get_mut().unwrap_or_else(PoisonError::into_inner);
        while let Ok(line) = lines.try_recv() {
            if let Some(pid) = line.strip_prefix("started ") {
                self.server_pid = pid.trim().parse().ok();
            } else if line.starts_with("exited") {
                self.exited = true;
            }
        }
        self.exited || matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Asks the node to shut down gracefully (SIGTERM to the server script),
    /// leaving the watchdog waiting for its owner.
    pub fn terminate(&mut self) -> Result<(), BrokerError> {
        self.node_exited();
        let Some(pid) = self.server_pid else {
            return Ok(());
        };
        signal("TERM", pid)
    }

    /// The tail of the log written during this run.
    pub fn tail(&self, node: &Node) -> String {
        log_tail(&node.log(), self.log_offset, TAIL_LINES)
    }

    /// Lets go of the watchdog: it stops the node (if still running),
    /// cleans up if it was asked to, and exits. Blocks until it has.
    pub fn release(mut self) {
        drop(self.child.stdin.take());
        if let Err(error) = self.child.wait() {
            tracing::warn!(%error, "waiting for RabbitMQ to stop");
        }
    }
}

/// Sends `signal` to `pid` with `kill(1)`: this workspace forbids `unsafe`.
pub(crate) fn signal(signal: &str, pid: u32) -> Result<(), BrokerError> {
    let mut kill = std::process::Command::new("kill");
    kill.arg(format!("-{signal}")).arg(pid.to_string());
    crate::install::run(kill, &format!("kill -{signal} {pid}")).map(drop)
}

/// Waits until the node accepts an AMQP connection as guest; fails as soon
/// as it has exited, quoting the end of its log.
pub(crate) async fn wait_until_ready(
    node: &Node,
    mut watchdog: Watchdog,
) -> Result<Watchdog, BrokerError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let url = node.url();
    loop {
        if watchdog.node_exited() {
            // Read before letting go: the watchdog of a temporary node
            // then removes the directory, log and all.
            let tail = watchdog.tail(node);
            watchdog.release();
            return Err(BrokerError::ExitedEarly {
                log: node.log(),
                tail,
            });
        }
        let last_error = match tokio::time::timeout(ATTEMPT_TIMEOUT, connect(&url)).await {
            Ok(Ok(())) => return Ok(watchdog),
            Ok(Err(error)) => error,
            Err(_) => format!("no answer within {ATTEMPT_TIMEOUT:?}"),
        };
        if Instant::now() > deadline {
            let tail = watchdog.tail(node);
            watchdog.release();
            return Err(BrokerError::NotReady {
                seconds: READY_TIMEOUT.as_secs(),
                last_error,
                log: node.log(),
                tail,
            });
        }
        // A booting node offers nothing to wait on but its listener.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(url: &str) -> Result<(), String> {
    let connection = connect_amqp(url).await.map_err(|error| error.to_string())?;
    // A clean goodbye keeps "client unexpectedly closed" out of the log.
    let _ = connection.close(200, "ready").await;
    Ok(())
}

/// Waits until the watchdog reports that the node has exited.
pub(crate) async fn wait_until_exited(
    node: &Node,
    watchdog: &mut Watchdog,
) -> Result<(), BrokerError> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while !watchdog.node_exited() {
        if Instant::now() > deadline {
            return Err(BrokerError::NotStopped {
                seconds: STOP_TIMEOUT.as_secs(),
                log: node.log(),
                tail: watchdog.tail(node),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
