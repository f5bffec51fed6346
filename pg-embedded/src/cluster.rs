//! Starting, reusing and stopping a private PostgreSQL cluster.
//!
//! The cluster is reachable only by its own OS user (and root): it has no
//! TCP listener (`listen_addresses = ''`) and its one unix socket lives in a
//! directory of mode 0700 owned by that user, beside the data directory.
//! `pg_hba.conf` trusts that socket and nothing else. A password would add
//! a secret to store and rotate and still leave the socket as the way in;
//! the file mode is the whole access check, enforced by the kernel.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Instant;

use crate::install::{
    command_as_service_user, filesystem, find_bin_dir, give_to_service_user, init_cluster,
    percent_encode, prepare_socket_dir, run, write_hba, Layout, SUPERUSER,
};
use crate::postmaster::{self, Holder, RunningServer};
use crate::watchdog::{self, accepts_connections, spawn_watchdog, wait_until_ready, PORT};
use crate::EmbeddedError;

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Trade durability for speed (`fsync=off` and friends): for throwaway
    /// test clusters only.
    pub unsafe_fast: bool,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            unsafe_fast: false,
            settings: vec![("max_connections".into(), "200".into())],
        }
    }
}

/// A running PostgreSQL server, listening on a private unix socket only.
///
/// When this process started the server, the server is tied to this process:
/// it runs under a small shell watchdog that shuts it down (fast mode) as
/// soon as our end of its stdin closes, which happens when [`Cluster::stop`]
/// is called, when the value is dropped, or when this process dies in any
/// way, even by SIGKILL. No server is left behind.
#[derive(Debug)]
pub struct Cluster {
    layout: Layout,
    watchdog: Option<Child>,
    /// Watchdogs of servers started again by [`Cluster::crash_and_restart`]
    /// (the newest runs the server now); stopped before the first one,
    /// which may remove the directory.
    restarted: Vec<Child>,
    // Keeps a temporary cluster's directory alive as long as the server.
    _temp_dir: Option<tempfile::TempDir>,
}

impl Cluster {
    /// Starts (or reuses) the cluster whose data lives in `data_dir`,
    /// creating it on first use. Its socket directory is `<data_dir>.sock`
    /// and its log `<data_dir>.log`. A server that another live process of
    /// ours runs on that directory is shared (and left running on exit);
    /// one that nothing supervises any more is stopped and started afresh;
    /// a pid file whose pid is dead or belongs to another program is
    /// removed.
    pub fn start_persistent(
        data_dir: &Path,
        options: &ClusterOptions,
    ) -> Result<Cluster, EmbeddedError> {
        let bin_dir = find_bin_dir()?;
        let data_dir = std::path::absolute(data_dir).map_err(filesystem(data_dir))?;
        let layout = Layout {
            socket_dir: data_dir.with_extension("sock"),
            log: data_dir.with_extension("log"),
            data_dir,
        };
        if let Some(parent) = layout.data_dir.parent() {
            std::fs::create_dir_all(parent).map_err(filesystem(parent))?;
        }
        prepare_socket_dir(&layout.socket_dir)?;
        if reuse_running_server(&bin_dir, &layout)? {
            tracing::info!(data_dir = %layout.data_dir.display(), "reusing the running PostgreSQL of this data directory");
            return Ok(Cluster {
                layout,
                watchdog: None,
                restarted: Vec::new(),
                _temp_dir: None,
            });
        }
        if !layout.data_dir.join("PG_VERSION").exists() {
            init_cluster(&bin_dir, &layout.data_dir, options.unsafe_fast)?;
        }
        write_hba(&layout.data_dir)?;
        let watchdog = start_server(&bin_dir, &layout, options, None)?;
        Ok(Cluster {
            layout,
            watchdog: Some(watchdog),
            restarted: Vec::new(),
            _temp_dir: None,
        })
    }

    /// Starts a throwaway cluster in a temporary directory, removed when
    /// the value is dropped.
    pub fn start_temporary(options: &ClusterOptions) -> Result<Cluster, EmbeddedError> {
        let bin_dir = find_bin_dir()?;
        let temp_dir = tempfile::Builder::new()
            .prefix("orderstream-pg-")
            .tempdir()
            .map_err(filesystem(&std::env::temp_dir()))?;
        // A temp dir is private to its creator (0700); the service user
        // must get in.
        give_to_service_user(temp_dir.path())?;
        let layout = Layout {
            data_dir: temp_dir.path().join("data"),
            socket_dir: temp_dir.path().join("socket"),
            log: temp_dir.path().join("postgres.log"),
        };
        prepare_socket_dir(&layout.socket_dir)?;
        init_cluster(&bin_dir, &layout.data_dir, options.unsafe_fast)?;
        write_hba(&layout.data_dir)?;
        // A value kept in a static is never dropped, so the watchdog removes
        // the directory itself once the server has stopped.
        let watchdog = start_server(&bin_dir, &layout, options, Some(temp_dir.path()))?;
        Ok(Cluster {
            layout,
            watchdog: Some(watchdog),
            restarted: Vec::new(),
            _temp_dir: Some(temp_dir),
        })
    }

    /// The number in the socket's name (`.s.PGSQL.<port>`); there is no
    /// TCP port.
    pub fn port(&self) -> u16 {
        PORT
    }

    pub fn data_dir(&self) -> &Path {
        &self.layout.data_dir
    }

    /// The directory holding the server's unix socket (mode 0700).
    pub fn socket_dir(&self) -> &Path {
        &self.layout.socket_dir
    }

    /// The server's log (mode 0600).
    pub fn log_path(&self) -> &Path {
        &self.layout.log
    }

    /// Connection URL for `database` as the cluster's superuser, through
    /// the socket: `postgres://postgres@localhost/<db>?host=<dir>&port=5432`
    /// (the `host` parameter, a directory, wins over `localhost` in both
    /// sqlx and libpq, so `psql`, `pg_dump` and the service accept it).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@localhost/{database}?host={}&port={PORT}",
            percent_encode(&self.layout.socket_dir.display().to_string())
        )
    }

    /// Shuts the server down (fast mode) if this process started it, and
    /// waits until it has exited.
    pub fn stop(mut self) {
        self.shut_down();
    }

    /// Crashes the server and starts it again, for fault-injection tests:
    /// `pg_ctl stop -m immediate` (no shutdown checkpoint, every session
    /// cut at once, as if the server had died), then a new server on the
    /// same data directory, which recovers from its WAL. Returns once the
    /// new server accepts connections. `options` should be the ones the
    /// cluster was started with. Only for a server this process started.
    pub fn crash_and_restart(&mut self, options: &ClusterOptions) -> Result<(), EmbeddedError> {
        if self.watchdog.is_none() {
            return Err(EmbeddedError::CommandFailed {
                command: "crash_and_restart".into(),
                output: "this process did not start the server".into(),
            });
        }
        let bin_dir = find_bin_dir()?;
        stop_server(&bin_dir, &self.layout.data_dir, "immediate")?;
        // The server of an earlier restart is gone: let its watchdog end
        // (it has no directory to remove).
        for mut watchdog in self.restarted.drain(..) {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
        let starting = spawn_watchdog(&bin_dir, &self.layout, options, None)?;
        let child = wait_until_ready(&bin_dir, starting, &self.layout)?;
        self.restarted.push(child);
        Ok(())
    }

    fn shut_down(&mut self) {
        // A restarted server first; the first watchdog may then remove
        // the directory.
        for mut watchdog in self.restarted.drain(..).rev() {
            drop(watchdog.stdin.take());
            if let Err(error) = watchdog.wait() {
                tracing::warn!(%error, "waiting for PostgreSQL to stop");
            }
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            // Closing stdin is the watchdog's signal to stop the server.
            drop(watchdog.stdin.take());
            if let Err(error) = watchdog.wait() {
                tracing::warn!(%error, "waiting for PostgreSQL to stop");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Decides what to do with whatever holds the data directory: true when a
/// live, supervised server of ours answers on our socket (share it).
/// Otherwise clears the way for a server of our own: removes a stale pid
/// file, stops an orphaned server, waits out one that is shutting down.
fn reuse_running_server(bin_dir: &Path, layout: &Layout) -> Result<bool, EmbeddedError> {
    let deadline = Instant::now() + watchdog::READY_TIMEOUT;
    loop {
        match postmaster::holder(&layout.data_dir) {
            Holder::Nobody => return Ok(false),
            Holder::Stale { pid } => {
                tracing::warn!(
                    pid,
                    data_dir = %layout.data_dir.display(),
                    "removing a stale postmaster.pid: its pid is not a PostgreSQL of this data directory"
                );
                postmaster::remove_leftovers(&layout.data_dir, &layout.socket_dir)?;
                return Ok(false);
            }
            Holder::Server(RunningServer { pid, orphaned, .. }) if orphaned => {
                tracing::warn!(
                    pid,
                    "stopping a PostgreSQL of this data directory that nothing supervises any more"
                );
                if let Err(error) = stop_server(bin_dir, &layout.data_dir, "fast") {
                    // It may have stopped by itself meanwhile (a watchdog's
                    // helper outlives the watchdog); only a survivor is an error.
                    if postmaster::is_postmaster_of(pid, &layout.data_dir) {
                        return Err(error);
                    }
                }
                // Look again: what the stopped server left is dealt with above.
            }
            Holder::Server(RunningServer {
                pid, socket_dir, ..
            }) => {
                if socket_dir.as_deref() != Some(layout.socket_dir.as_path()) {
                    return Err(EmbeddedError::ForeignServer {
                        pid,
                        data_dir: layout.data_dir.clone(),
                        socket_dir: layout.socket_dir.clone(),
                    });
                }
                if accepts_connections(bin_dir, &layout.socket_dir) {
                    return Ok(true);
                }
                // Starting up or shutting down: wait for either outcome.
                if Instant::now() > deadline {
                    return Err(EmbeddedError::NotReady {
                        seconds: watchdog::READY_TIMEOUT.as_secs(),
                        log: layout.log.clone(),
                        tail: format!("(the server with pid {pid} was started by another process)"),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

/// `pg_ctl stop` in `mode` (`fast` or `immediate`), waiting until it is gone.
fn stop_server(bin_dir: &Path, data_dir: &Path, mode: &str) -> Result<(), EmbeddedError> {
    let mut pg_ctl = command_as_service_user(&bin_dir.join("pg_ctl"));
    pg_ctl
        .arg("stop")
        .arg("-D")
        .arg(data_dir)
        .args(["-m", mode, "-w", "-t", "60"]);
    run(
        pg_ctl,
        &format!("pg_ctl stop -m {mode} -D {}", data_dir.display()),
    )
}

/// How long to keep trying when a new server finds the shared memory of
/// its killed predecessor still attached by that one's dying children.
const PREDECESSOR_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

fn start_server(
    bin_dir: &Path,
    layout: &Layout,
    options: &ClusterOptions,
    remove_on_exit: Option<&Path>,
) -> Result<Child, EmbeddedError> {
    let deadline = Instant::now() + PREDECESSOR_GRACE;
    loop {
        let starting = spawn_watchdog(bin_dir, layout, options, remove_on_exit)?;
        match wait_until_ready(bin_dir, starting, layout) {
            Err(EmbeddedError::ExitedEarly { tail, .. })
                if tail.contains("pre-existing shared memory block")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            outcome => return outcome,
        }
    }
}

/// The path of one of the installed PostgreSQL client programs (`pg_dump`,
/// `pg_restore`, `psql`...), from the same directory as the server
/// binaries this crate runs: the same version as the clusters it starts, as
/// `pg_dump` must be at least the server's version.
pub fn client_program(name: &str) -> Result<PathBuf, EmbeddedError> {
    let bin_dir = find_bin_dir()?;
    let program = bin_dir.join(name);
    if program.exists() {
        Ok(program)
    } else {
        Err(EmbeddedError::ProgramNotFound {
            program: name.to_owned(),
            bin_dir,
        })
    }
}
