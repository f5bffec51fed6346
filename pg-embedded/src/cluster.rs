//! Starting, reusing and stopping a private PostgreSQL cluster.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::EmbeddedError;

/// The OS user that owns and runs the cluster when we are root.
const SERVICE_USER: &str = "postgres";
/// The cluster's superuser (initdb `-U`); local connections use trust auth.
const SUPERUSER: &str = "postgres";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

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

/// A running PostgreSQL server on 127.0.0.1.
///
/// When this process started the server, the server is tied to this process:
/// it runs under a small shell watchdog that shuts it down (fast mode) as
/// soon as our end of its stdin closes, which happens when [`Cluster::stop`]
/// is called, when the value is dropped, or when this process dies in any
/// way, even by SIGKILL. No server is left behind.
#[derive(Debug)]
pub struct Cluster {
    port: u16,
    data_dir: PathBuf,
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
    /// creating it on first use. If a server from another process is already
    /// running on that directory, connects to it instead and leaves it
    /// running on exit.
    pub fn start_persistent(
        data_dir: &Path,
        options: &ClusterOptions,
    ) -> Result<Cluster, EmbeddedError> {
        let bin_dir = find_bin_dir()?;
        let data_dir = absolute(data_dir)?;
        if let Some(port) = running_server_port(&data_dir) {
            tracing::info!(port, data_dir = %data_dir.display(), "reusing running PostgreSQL");
            return Ok(Cluster {
                port,
                data_dir,
                watchdog: None,
                restarted: Vec::new(),
                _temp_dir: None,
            });
        }
        if !data_dir.join("PG_VERSION").exists() {
            init_cluster(&bin_dir, &data_dir, options)?;
        }
        let log = data_dir.with_extension("log");
        let (port, watchdog) = start_server(&bin_dir, &data_dir, &log, options, None)?;
        Ok(Cluster {
            port,
            data_dir,
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
            .map_err(|source| EmbeddedError::Filesystem {
                path: std::env::temp_dir(),
                source,
            })?;
        // A temp dir is private to its creator; the service user must get in.
        give_to_service_user(temp_dir.path())?;
        let data_dir = temp_dir.path().join("data");
        init_cluster(&bin_dir, &data_dir, options)?;
        let log = temp_dir.path().join("postgres.log");
        // A value kept in a static is never dropped, so the watchdog removes
        // the directory itself once the server has stopped.
        let (port, watchdog) =
            start_server(&bin_dir, &data_dir, &log, options, Some(temp_dir.path()))?;
        Ok(Cluster {
            port,
            data_dir,
            watchdog: Some(watchdog),
            restarted: Vec::new(),
            _temp_dir: Some(temp_dir),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Connection URL for `database` as the cluster's superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Shuts the server down (fast mode) if this process started it, and
    /// waits until it has exited.
    pub fn stop(mut self) {
        self.shut_down();
    }

    /// Crashes the server and starts it again, for fault-injection tests:
    /// `pg_ctl stop -m immediate` (no shutdown checkpoint, every session
    /// cut at once, as if the server had died), then a new server on the
    /// same data directory and port, which recovers from its WAL. Returns
    /// once the new server accepts connections. `options` should be the
    /// ones the cluster was started with. Only for a server this process
    /// started.
    pub fn crash_and_restart(&mut self, options: &ClusterOptions) -> Result<(), EmbeddedError> {
        if self.watchdog.is_none() {
            return Err(EmbeddedError::CommandFailed {
                command: "crash_and_restart".into(),
                output: "this process did not start the server".into(),
            });
        }
        let bin_dir = find_bin_dir()?;
        let output = command_as_service_user(&bin_dir.join("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "-t", "60"])
            .output()
            .map_err(|source| EmbeddedError::Spawn {
                command: "pg_ctl stop".into(),
                source,
            })?;
        if !output.status.success() {
            return Err(EmbeddedError::CommandFailed {
                command: format!("pg_ctl stop -m immediate -D {}", self.data_dir.display()),
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        // The server of an earlier restart is gone: let its watchdog end
        // (it has no directory to remove).
        for mut watchdog in self.restarted.drain(..) {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
        let log = match &self._temp_dir {
            Some(temp_dir) => temp_dir.path().join("postgres.log"),
            None => self.data_dir.with_extension("log"),
        };
        let child = spawn_watchdog(&bin_dir, &self.data_dir, &log, self.port, options, None)?;
        let child = wait_until_ready(&bin_dir, child, self.port, &log)?;
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

fn absolute(path: &Path) -> Result<PathBuf, EmbeddedError> {
    std::path::absolute(path).map_err(|source| EmbeddedError::Filesystem {
        path: path.to_path_buf(),
        source,
    })
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// `initdb`, `postgres` and `pg_ctl` live together; prefer `pg_config`'s
/// answer, then the newest version under /usr/lib/postgresql.
fn find_bin_dir() -> Result<PathBuf, EmbeddedError> {
    let has_server = |dir: &Path| dir.join("initdb").exists() && dir.join("postgres").exists();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        if output.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|(_, dir)| dir)
        .ok_or(EmbeddedError::BinariesNotFound)
}

/// A server another process started on this data directory, if it is alive.
fn running_server_port(data_dir: &Path) -> Option<u16> {
    let pid_file = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let mut lines = pid_file.lines();
    let pid = lines.next()?.trim();
    let port = lines.nth(2)?.trim().parse().ok()?;
    Path::new("/proc").join(pid).exists().then_some(port)
}

/// A command that runs `program` as the service user when we are root.
fn command_as_service_user(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", SERVICE_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn give_to_service_user(path: &Path) -> Result<(), EmbeddedError> {
    if !running_as_root() {
        return Ok(());
    }
    let output = Command::new("chown")
        .args(["-R", &format!("{SERVICE_USER}:")])
        .arg(path)
        .output()
        .map_err(|source| EmbeddedError::Spawn {
            command: "chown".into(),
            source,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EmbeddedError::CommandFailed {
            command: format!("chown -R {SERVICE_USER}: {}", path.display()),
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

fn init_cluster(
    bin_dir: &Path,
    data_dir: &Path,
    options: &ClusterOptions,
) -> Result<(), EmbeddedError> {
    let filesystem = |source| EmbeddedError::Filesystem {
        path: data_dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(data_dir).map_err(filesystem)?;
    give_to_service_user(data_dir)?;
    let mut initdb = command_as_service_user(&bin_dir.join("initdb"));
    initdb.arg("-D").arg(data_dir).args([
        "-U",
        SUPERUSER,
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    if options.unsafe_fast {
        initdb.arg("--no-sync");
    }
    let output = initdb.output().map_err(|source| EmbeddedError::Spawn {
        command: "initdb".into(),
        source,
    })?;
    if !output.status.success() {
        return Err(EmbeddedError::CommandFailed {
            command: format!("initdb -D {}", data_dir.display()),
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(())
}

fn free_loopback_port() -> Result<u16, EmbeddedError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| EmbeddedError::Spawn {
        command: "bind 127.0.0.1:0".into(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| EmbeddedError::Spawn {
            command: "bind 127.0.0.1:0".into(),
            source,
        })?
        .port();
    Ok(port)
}

fn start_server(
    bin_dir: &Path,
    data_dir: &Path,
    log: &Path,
    options: &ClusterOptions,
    remove_on_exit: Option<&Path>,
) -> Result<(u16, Child), EmbeddedError> {
    // A port freed by the kernel can be taken by someone else before the
    // server binds it; try a few.
    let mut last_error = None;
    for _ in 0..5 {
        let port = free_loopback_port()?;
        match spawn_watchdog(bin_dir, data_dir, log, port, options, remove_on_exit)
            .and_then(|child| wait_until_ready(bin_dir, child, port, log))
        {
            Ok(child) => return Ok((port, child)),
            Err(error @ EmbeddedError::ExitedEarly { .. }) => last_error = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or(EmbeddedError::ExitedEarly {
        log: log.to_path_buf(),
    }))
}

/// Runs `postgres` under `sh`, which stops it (SIGINT: fast shutdown) when
/// its stdin reaches end-of-file, i.e. when this process lets go of it.
fn spawn_watchdog(
    bin_dir: &Path,
    data_dir: &Path,
    log: &Path,
    port: u16,
    options: &ClusterOptions,
    remove_on_exit: Option<&Path>,
) -> Result<Child, EmbeddedError> {
    let mut settings = vec![
        ("listen_addresses".to_string(), "127.0.0.1".to_string()),
        ("unix_socket_directories".to_string(), String::new()),
        ("port".to_string(), port.to_string()),
    ];
    if options.unsafe_fast {
        for (name, value) in [
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
        ] {
            settings.push((name.into(), value.into()));
        }
    }
    settings.extend(options.settings.iter().cloned());
    let mut script = String::from("\"$0\" -D \"$1\"");
    let mut args: Vec<String> = vec![
        bin_dir.join("postgres").display().to_string(),
        data_dir.display().to_string(),
    ];
    for (name, value) in settings {
        args.push(format!("{name}={value}"));
        script.push_str(&format!(" -c \"${{{}}}\"", args.len() - 1));
    }
    script.push_str(" <&- & pid=$!; read -r _ || true; kill -INT \"$pid\"; wait \"$pid\"");
    if let Some(dir) = remove_on_exit {
        args.push(dir.display().to_string());
        script.push_str(&format!("; rm -rf \"${{{}}}\"", args.len() - 1));
    }

    let log_file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|source| EmbeddedError::Filesystem {
            path: log.to_path_buf(),
            source,
        })?;
    let log_err = log_file
        .try_clone()
        .map_err(|source| EmbeddedError::Filesystem {
            path: log.to_path_buf(),
            source,
        })?;
    let mut command = command_as_service_user(Path::new("/bin/sh"));
    command
        .arg("-c")
        .arg(&script)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(log_file)
        .stderr(log_err);
    command.spawn().map_err(|source| EmbeddedError::Spawn {
        command: "postgres".into(),
        source,
    })
}

fn wait_until_ready(
    bin_dir: &Path,
    mut child: Child,
    port: u16,
    log: &Path,
) -> Result<Child, EmbeddedError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return Err(EmbeddedError::ExitedEarly {
                log: log.to_path_buf(),
            });
        }
        let ready = Command::new(bin_dir.join("pg_isready"))
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                SUPERUSER,
            ])
            .status()
            .is_ok_and(|status| status.success());
        if ready {
            return Ok(child);
        }
        if Instant::now() > deadline {
            drop(child.stdin.take());
            let _ = child.wait();
            return Err(EmbeddedError::NotReady {
                seconds: READY_TIMEOUT.as_secs(),
                log: log.to_path_buf(),
            });
        }
        // A starting server offers nothing to wait on but its port.
        std::thread::sleep(Duration::from_millis(50));
    }
}
