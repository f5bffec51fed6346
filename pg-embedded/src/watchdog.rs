//! Running `postgres` under a small shell watchdog tied to this process,
//! and waiting until it accepts connections or has failed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::install::{command_as_service_user, filesystem, log_tail, open_log, Layout, SUPERUSER};
use crate::{ClusterOptions, EmbeddedError};

/// The socket is named after the port (`.s.PGSQL.5432`); there is no TCP
/// listener, and the directory is the cluster's own, so any number works.
pub(crate) const PORT: u16 = 5432;
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of the server's log quoted in a start-up error.
const TAIL_LINES: usize = 20;

/// The watchdog script. It runs `postgres` in the background, holds our end
/// of its stdin on fd 3, and:
/// - stops the server (SIGINT: fast shutdown) when stdin reaches
///   end-of-file, i.e. when this process lets go of it, even by dying;
/// - prints `exited` on stdout as soon as the server has exited, for
///   whatever reason, so a server that fails at start is noticed at once;
/// - then waits for end-of-file (a crashed server's owner may start a new
///   one on the same directory) and removes a temporary cluster's directory.
///
/// SIGPIPE is ignored so that the line to a dead owner cannot kill the
/// script before the clean-up.
const SCRIPT_START: &str = "trap '' PIPE; exec 3<&0; \"$0\" -D \"$1\"";
const SCRIPT_END: &str = " <&- 3<&- 1>&2 & pid=$!; \
    { read -r _ <&3 || true; kill -INT \"$pid\" 2>/dev/null; } & reader=$!; \
    wait \"$pid\"; status=$?; kill \"$reader\" 2>/dev/null; \
    echo \"exited $status\"; read -r _ <&3 || true";

/// A server being started: the watchdog, and the news of the server's exit.
pub(crate) struct Starting {
    pub child: Child,
    exited: mpsc::Receiver<String>,
    log_offset: u64,
}

pub(crate) fn spawn_watchdog(
    bin_dir: &Path,
    layout: &Layout,
    options: &ClusterOptions,
    remove_on_exit: Option<&Path>,
) -> Result<Starting, EmbeddedError> {
    let mut settings = vec![
        ("listen_addresses".to_string(), String::new()),
        (
            "unix_socket_directories".to_string(),
            layout.socket_dir.display().to_string(),
        ),
        ("unix_socket_permissions".to_string(), "0700".to_string()),
        ("port".to_string(), PORT.to_string()),
        // The log file is 0600; files the server itself creates too.
        ("log_file_mode".to_string(), "0600".to_string()),
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
    let mut script = String::from(SCRIPT_START);
    let mut args: Vec<String> = vec![
        bin_dir.join("postgres").display().to_string(),
        layout.data_dir.display().to_string(),
    ];
    for (name, value) in settings {
        args.push(format!("{name}={value}"));
        script.push_str(&format!(" -c \"${{{}}}\"", args.len() - 1));
    }
    script.push_str(SCRIPT_END);
    if let Some(dir) = remove_on_exit {
        args.push(dir.display().to_string());
        script.push_str(&format!("; rm -rf \"${{{}}}\"", args.len() - 1));
    }

    let log_file = open_log(&layout.log)?;
    let log_offset = log_file.metadata().map_or(0, |meta| meta.len());
    let mut command = command_as_service_user(Path::new("/bin/sh"));
    command
        .arg("-c")
        .arg(&script)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file);
    let mut child = command.spawn().map_err(|source| EmbeddedError::Spawn {
        command: "postgres".into(),
        source,
    })?;
    let Some(stdout) = child.stdout.take() else {
        return Err(filesystem(&layout.log)(std::io::Error::other(
            "the watchdog has no stdout",
        )));
    };
    let (sender, exited) = mpsc::channel();
    // Lives as long as the watchdog's stdout: until the watchdog exits.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    Ok(Starting {
        child,
        exited,
        log_offset,
    })
}

/// Whether the server on `socket_dir` accepts connections now.
pub(crate) fn accepts_connections(bin_dir: &Path, socket_dir: &Path) -> bool {
    Command::new(bin_dir.join("pg_isready"))
        .arg("-q")
        .arg("-h")
        .arg(socket_dir)
        .args(["-p", &PORT.to_string(), "-U", SUPERUSER])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Waits until the server accepts connections; fails as soon as it has
/// exited, quoting the end of its log.
pub(crate) fn wait_until_ready(
    bin_dir: &Path,
    starting: Starting,
    layout: &Layout,
) -> Result<Child, EmbeddedError> {
    let Starting {
        mut child,
        exited,
        log_offset,
    } = starting;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let gone = exited.try_recv().is_ok() || matches!(child.try_wait(), Ok(Some(_)));
        if gone {
            // Read before letting go: the watchdog of a temporary cluster
            // then removes the directory, log and all.
            let tail = log_tail(&layout.log, log_offset, TAIL_LINES);
            drop(child.stdin.take());
            let _ = child.wait();
            return Err(EmbeddedError::ExitedEarly {
                log: layout.log.clone(),
                tail,
            });
        }
        if accepts_connections(bin_dir, &layout.socket_dir) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let tail = log_tail(&layout.log, log_offset, TAIL_LINES);
            drop(child.stdin.take());
            let _ = child.wait();
            return Err(EmbeddedError::NotReady {
                seconds: READY_TIMEOUT.as_secs(),
                log: layout.log.clone(),
                tail,
            });
        }
        // A starting server offers nothing to wait on but its socket.
        std::thread::sleep(Duration::from_millis(50));
    }
}
